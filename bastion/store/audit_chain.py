"""A hash chain over every write to the audit table, so edits and deletions show.

Audit rows are written in two steps (a command's row is inserted when it is
decided and updated with its exit status when it ends), so the chain does not
hash rows: it journals each write. Entry n holds the row id, the operation
(insert or update), the fields written, and

    hash_n = sha256(hash_{n-1} "\\n" op "\\n" row_id "\\n" canonical_json(fields))

`verify` checks the links, then replays the journal and compares the result
with the audit table: an edited row, a deleted row, or a row slipped in
behind the bastion's back is reported. What a chain alone cannot show is a
cut of its newest entries together with their rows; the head hash printed by
`bastion audit verify` is what an operator copies elsewhere to pin it.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from dataclasses import dataclass, field
from typing import Any

GENESIS = "0" * 64
MAX_PROBLEMS = 100


def canonical(fields: dict[str, Any]) -> str:
    return json.dumps(normalise(fields), sort_keys=True, separators=(",", ":"))


def normalise(fields: dict[str, Any]) -> dict[str, Any]:
    """The values as SQLite gives them back (booleans are integers there)."""
    return {k: int(v) if isinstance(v, bool) else v for k, v in fields.items()}


def entry_hash(prev: str, op: str, row_id: int, fields_json: str) -> str:
    return hashlib.sha256(f"{prev}\n{op}\n{row_id}\n{fields_json}".encode()).hexdigest()


def append(conn: sqlite3.Connection, op: str, row_id: int, fields: dict[str, Any]) -> str:
    """Journal one write; the caller holds the write transaction that made it."""
    row = conn.execute("SELECT hash FROM audit_chain ORDER BY seq DESC LIMIT 1").fetchone()
    prev = row[0] if row is not None else GENESIS
    fields_json = canonical(fields)
    digest = entry_hash(prev, op, row_id, fields_json)
    conn.execute(
        "INSERT INTO audit_chain (audit_id, op, fields, prev, hash) VALUES (?, ?, ?, ?, ?)",
        (row_id, op, fields_json, prev, digest),
    )
    return digest


@dataclass
class Verification:
    entries: int = 0
    rows: int = 0
    head: str = GENESIS
    unchained: int = 0  # rows older than the chain (written before it existed)
    problems: list[str] = field(default_factory=list)

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
            "unchained_rows": self.unchained,
            "problems": self.problems,
        }


def verify(conn: sqlite3.Connection, columns: tuple[str, ...]) -> Verification:
    result = Verification()
    expected: dict[int, dict[str, Any]] = {}
    prev = GENESIS
    first_chained: int | None = None
    for seq, row_id, op, fields_json, stored_prev, digest in conn.execute(
        "SELECT seq, audit_id, op, fields, prev, hash FROM audit_chain ORDER BY seq"
    ):
        result.entries += 1
        if stored_prev != prev:
            result.problem(f"chain entry {seq}: does not follow entry before it (entries removed?)")
        if entry_hash(stored_prev, op, row_id, fields_json) != digest:
            result.problem(f"chain entry {seq}: hash does not match its content (edited)")
        prev = digest
        try:
            fields = json.loads(fields_json)
        except ValueError:
            result.problem(f"chain entry {seq}: unreadable")
            continue
        if op == "insert":
            expected[row_id] = {name: None for name in columns} | fields
            first_chained = row_id if first_chained is None else min(first_chained, row_id)
        elif op == "update" and row_id in expected:
            expected[row_id].update(fields)
        else:
            result.problem(f"chain entry {seq}: {op} of row {row_id} with no insert before it")
    result.head = prev
    seen: set[int] = set()
    names = ", ".join(columns)
    for row in conn.execute(f"SELECT id, {names} FROM audit ORDER BY id"):
        row_id, values = row[0], dict(zip(columns, row[1:], strict=True))
        result.rows += 1
        if row_id not in expected:
            if first_chained is None or row_id < first_chained:
                result.unchained += 1
            else:
                result.problem(f"audit row {row_id}: not in the chain (added behind the bastion)")
            continue
        seen.add(row_id)
        changed = sorted(k for k in columns if values[k] != expected[row_id].get(k))
        if changed:
            result.problem(f"audit row {row_id}: {', '.join(changed)} edited")
    for row_id in sorted(set(expected) - seen):
        result.problem(f"audit row {row_id}: deleted")
    return result
