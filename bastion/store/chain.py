"""A hash chain over every write to the tables that matter, so edits and deletions show.

Rows are written in steps (a command's audit row is inserted when it is
decided and updated with its exit status when it ends; a certificate is
recorded, later revoked), so the chain does not hash rows: it journals each
write. Entry n holds the table, the row's key, the operation (insert, update
or delete), the fields written, and

    hash_n = sha256(hash_{n-1} "\\n" op "\\n" ref "\\n" canonical_json(fields))

where `ref` is the row id for the audit table (as the chain has always been)
and `TABLE:KEY` for the others. Entries take their sequence number and the
previous hash from a one-row head (`audit_head`) that the writer locks, so
several writers on several nodes never fork the chain.

`verify` checks the links, then replays the journal and compares the result
with the tables: an edited row, a deleted row, or a row slipped in behind the
bastion's back is reported. A cut of the newest entries together with their
rows, or a middle row deleted and the chain recomputed after it, is shown by
checking against a head kept elsewhere (`bastion audit anchor`, then
`bastion audit verify --head HASH`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64
MAX_PROBLEMS = 100


@dataclass(frozen=True)
class ChainedTable:
    name: str
    key: str
    columns: tuple[str, ...]


AUDIT_COLUMNS = (
    "time", "kind", "session_id", "identity", "target", "login", "command", "certain",
    "decision", "rule", "started", "ended", "exit_status", "bytes_in", "bytes_out", "detail",
)  # fmt: skip

CHAINED: dict[str, ChainedTable] = {
    t.name: t
    for t in (
        ChainedTable("audit", "id", AUDIT_COLUMNS),
        ChainedTable(
            "sessions",
            "id",
            (
                "identity", "serial", "login", "target", "kind", "command", "peer", "started",
                "ended", "exit_status", "exit_signal", "bytes_in", "bytes_out", "recording",
                "error", "node",
            ),
        ),
        ChainedTable(
            "alerts",
            "id",
            ("time", "kind", "identity", "session_id", "target", "rule", "command", "detail"),
        ),
        ChainedTable(
            "certificates",
            "serial",
            (
                "identity", "principals", "groups", "key_fingerprint", "valid_after",
                "valid_before", "issued", "source", "revoked", "key_id", "revoked_by",
            ),
        ),
        ChainedTable("targets", "name", ("host", "port", "host_key", "host_ca", "labels")),
        ChainedTable(
            "identity_revocations", "identity", ("time", "by_whom", "lifted", "lifted_by")
        ),
        ChainedTable("config_changes", "id", ("time", "node", "sha256", "detail")),
        ChainedTable("recordings", "session_id", ("location", "node", "completed", "sha256", "size")),
    )
}  # fmt: skip


def canonical(fields: dict[str, Any]) -> str:
    return json.dumps(normalise(fields), sort_keys=True, separators=(",", ":"))


def normalise(fields: dict[str, Any]) -> dict[str, Any]:
    """The values as the databases give them back (booleans are integers there)."""
    return {k: int(v) if isinstance(v, bool) else v for k, v in fields.items()}


def ref(table: str, key: str) -> str:
    return key if table == "audit" else f"{table}:{key}"


def entry_hash(prev: str, op: str, reference: str, fields_json: str) -> str:
    return hashlib.sha256(f"{prev}\n{op}\n{reference}\n{fields_json}".encode()).hexdigest()


@dataclass
class Verification:
    entries: int = 0
    rows: int = 0
    head: str = GENESIS
    seq: int = 0
    unchained: int = 0  # audit rows older than the chain (written before it existed)
    problems: list[str] = field(default_factory=list)
    anchored: bool | None = None  # given --head: does the chain end at or extend it?

    @property
    def intact(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def to_json(self) -> dict[str, Any]:
        return {
            "intact": self.intact,
            "entries": self.entries,
            "rows": self.rows,
            "head": self.head,
            "seq": self.seq,
            "unchained_rows": self.unchained,
            "anchored": self.anchored,
            "problems": self.problems,
        }


class Replay:
    """Feeds chain entries in order; then compare() each table's rows against them."""

    def __init__(self, anchor: str | None = None) -> None:
        self.result = Verification()
        self.expected: dict[tuple[str, str], dict[str, Any]] = {}
        self.deleted: set[tuple[str, str]] = set()
        self.first_audit: int | None = None
        self.anchor = anchor
        self._prev = GENESIS

    def entry(
        self, seq: int, table: str, key: str, op: str, fields_json: str, prev: str, digest: str
    ) -> None:
        result = self.result
        result.entries += 1
        if prev != self._prev:
            result.problem(f"chain entry {seq}: does not follow entry before it (entries removed?)")
        if entry_hash(prev, op, ref(table, key), fields_json) != digest:
            result.problem(f"chain entry {seq}: hash does not match its content (edited)")
        self._prev = digest
        result.head, result.seq = digest, seq
        if self.anchor is not None and digest == self.anchor:
            result.anchored = True
        spec = CHAINED.get(table)
        try:
            values = json.loads(fields_json)
        except ValueError:
            result.problem(f"chain entry {seq}: unreadable")
            return
        if spec is None or not isinstance(values, dict):
            result.problem(f"chain entry {seq}: unknown table {table!r}")
            return
        where = (table, key)
        if op == "insert":
            self.expected[where] = {name: None for name in spec.columns} | values
            self.deleted.discard(where)
            if table == "audit" and key.isdigit():
                row_id = int(key)
                self.first_audit = (
                    row_id if self.first_audit is None else min(self.first_audit, row_id)
                )
        elif op == "update" and where in self.expected:
            self.expected[where].update(values)
        elif op == "delete" and where in self.expected:
            del self.expected[where]
            self.deleted.add(where)
        else:
            result.problem(
                f"chain entry {seq}: {op} of {_name(table, key)} with no insert before it"
            )

    def row(self, table: str, key: str, values: dict[str, Any]) -> None:
        """One row as the table holds it now."""
        result = self.result
        result.rows += 1
        where = (table, key)
        expected = self.expected.pop(where, None)
        if expected is None:
            if table == "audit" and (self.first_audit is None or int(key) < self.first_audit):
                result.unchained += 1
            elif where in self.deleted:
                result.problem(f"{_name(table, key)}: deleted in the chain but still present")
            else:
                result.problem(f"{_name(table, key)}: not in the chain (added behind the bastion)")
            return
        changed = sorted(k for k, v in normalise(values).items() if v != expected.get(k))
        if changed:
            result.problem(f"{_name(table, key)}: {', '.join(changed)} edited")

    def finish(self, head: tuple[int, str] | None) -> Verification:
        """Rows the chain expects but the tables lack; and the head row against the last entry."""
        result = self.result
        for table, key in sorted(self.expected):
            result.problem(f"{_name(table, key)}: deleted")
        if head is not None and (head[0], head[1]) != (result.seq, result.head):
            result.problem(
                f"chain head says entry {head[0]} but the chain ends at entry {result.seq}"
                " (entries removed?)"
            )
        if self.anchor is not None and not result.anchored:
            result.anchored = False
            result.problem(
                f"the chain neither ends at nor extends head {self.anchor[:16]}…"
                " (rows and their entries removed, or the chain recomputed)"
            )
        return result


def _name(table: str, key: str) -> str:
    singular = {
        "audit": "audit row",
        "sessions": "session",
        "alerts": "alert",
        "certificates": "certificate",
        "targets": "target",
        "identity_revocations": "identity revocation",
        "config_changes": "config change",
        "recordings": "recording of session",
    }
    return f"{singular.get(table, table)} {key}"
