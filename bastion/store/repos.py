"""One repository per table. Each takes a `Database` and speaks plain values."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from bastion.errors import NotFound, UsageError
from bastion.store import audit_chain
from bastion.store.db import Database
from bastion.store.records import AuditRecord, CertificateRecord, SessionRecord
from bastion.targets import Target


class TargetRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, target: Target) -> None:
        try:
            self.db.conn.execute(
                "INSERT INTO targets (name, host, port, host_key, host_ca, labels, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    target.name,
                    target.host,
                    target.port,
                    target.host_key,
                    target.host_ca,
                    json.dumps(target.labels, sort_keys=True),
                    time.time(),
                ),
            )
        except sqlite3.IntegrityError:
            raise UsageError(f"target {target.name!r} already exists") from None

    def get(self, name: str) -> Target | None:
        row = self.db.conn.execute("SELECT * FROM targets WHERE name = ?", (name,)).fetchone()
        return _target(row) if row else None

    def list(self) -> list[Target]:
        rows = self.db.conn.execute("SELECT * FROM targets ORDER BY name").fetchall()
        return [_target(row) for row in rows]

    def remove(self, name: str) -> None:
        cur = self.db.conn.execute("DELETE FROM targets WHERE name = ?", (name,))
        if cur.rowcount == 0:
            raise NotFound(f"no target named {name!r}")


def _target(row: sqlite3.Row) -> Target:
    return Target(
        name=row["name"],
        host=row["host"],
        port=row["port"],
        host_key=row["host_key"],
        host_ca=row["host_ca"],
        labels=json.loads(row["labels"]),
    )


class CertificateRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, cert: CertificateRecord) -> None:
        self.db.conn.execute(
            "INSERT INTO certificates (serial, identity, principals, groups, key_fingerprint,"
            " valid_after, valid_before, issued, source, revoked)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cert.serial,
                cert.identity,
                json.dumps(cert.principals),
                json.dumps(cert.groups),
                cert.key_fingerprint,
                cert.valid_after,
                cert.valid_before,
                cert.issued,
                cert.source,
                cert.revoked,
            ),
        )

    def get(self, serial: int) -> CertificateRecord | None:
        row = self.db.conn.execute(
            "SELECT * FROM certificates WHERE serial = ?", (serial,)
        ).fetchone()
        return _certificate(row) if row else None

    def list(self) -> list[CertificateRecord]:
        rows = self.db.conn.execute("SELECT * FROM certificates ORDER BY issued").fetchall()
        return [_certificate(row) for row in rows]

    def revoke_serial(self, serial: int) -> int:
        """Mark one certificate revoked; returns how many rows changed (0 if already revoked)."""
        if self.get(serial) is None:
            raise NotFound(f"no certificate with serial {serial}")
        cur = self.db.conn.execute(
            "UPDATE certificates SET revoked = ? WHERE serial = ? AND revoked IS NULL",
            (time.time(), serial),
        )
        return cur.rowcount

    def revoke_identity(self, identity: str) -> int:
        """Revoke every certificate issued to `identity`; returns how many were revoked now."""
        known = self.db.conn.execute(
            "SELECT 1 FROM certificates WHERE identity = ? LIMIT 1", (identity,)
        ).fetchone()
        if known is None:
            raise NotFound(f"no certificate was ever issued to {identity!r}")
        cur = self.db.conn.execute(
            "UPDATE certificates SET revoked = ? WHERE identity = ? AND revoked IS NULL",
            (time.time(), identity),
        )
        return cur.rowcount

    def revoked_among(self, serials: Sequence[int]) -> set[int]:
        found: set[int] = set()
        for start in range(0, len(serials), 500):
            chunk = serials[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            rows = self.db.conn.execute(
                f"SELECT serial FROM certificates WHERE revoked IS NOT NULL AND serial IN ({marks})",
                chunk,
            ).fetchall()
            found.update(row[0] for row in rows)
        return found


def _certificate(row: sqlite3.Row) -> CertificateRecord:
    return CertificateRecord(
        serial=row["serial"],
        identity=row["identity"],
        principals=tuple(json.loads(row["principals"])),
        groups=tuple(json.loads(row["groups"])),
        key_fingerprint=row["key_fingerprint"],
        valid_after=row["valid_after"],
        valid_before=row["valid_before"],
        issued=row["issued"],
        source=row["source"],
        revoked=row["revoked"],
    )


class SessionRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def start(self, **fields: Any) -> None:
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        self.db.conn.execute(
            f"INSERT INTO sessions ({columns}) VALUES ({marks})", tuple(fields.values())
        )

    def finish(self, session_id: str, **fields: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        self.db.conn.execute(
            f"UPDATE sessions SET {assignments} WHERE id = ?", (*fields.values(), session_id)
        )

    def get(self, session_id: str) -> SessionRecord:
        row = self.db.conn.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        return SessionRecord(**dict(row))

    def list(self, limit: int = 1000) -> list[SessionRecord]:
        rows = self.db.conn.execute(
            "SELECT * FROM sessions ORDER BY started DESC LIMIT ?", (limit,)
        ).fetchall()
        return [SessionRecord(**dict(row)) for row in reversed(rows)]


_AUDIT_FIELDS = (
    "time",
    "kind",
    "session_id",
    "identity",
    "target",
    "login",
    "command",
    "certain",
    "decision",
    "rule",
    "started",
    "ended",
    "exit_status",
    "bytes_in",
    "bytes_out",
    "detail",
)


class AuditRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, **fields: Any) -> int:
        unknown = set(fields) - set(_AUDIT_FIELDS)
        if unknown:
            raise ValueError(f"unknown audit fields: {sorted(unknown)}")
        fields.setdefault("time", time.time())
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        with self._write() as conn:
            cur = conn.execute(
                f"INSERT INTO audit ({columns}) VALUES ({marks})", tuple(fields.values())
            )
            row_id = int(cur.lastrowid or 0)
            audit_chain.append(conn, "insert", row_id, fields)
        return row_id

    def update(self, row_id: int, **fields: Any) -> None:
        unknown = set(fields) - set(_AUDIT_FIELDS)
        if unknown:
            raise ValueError(f"unknown audit fields: {sorted(unknown)}")
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._write() as conn:
            conn.execute(f"UPDATE audit SET {assignments} WHERE id = ?", (*fields.values(), row_id))
            audit_chain.append(conn, "update", row_id, fields)

    def verify(self) -> audit_chain.Verification:
        """Replay the hash chain against the table (bastion/store/audit_chain.py)."""
        return audit_chain.verify(self.db.conn, _AUDIT_FIELDS)

    def _write(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """The row and its chain entry in one transaction (joining the caller's, if any)."""
        if self.db.conn.in_transaction:
            return contextlib.nullcontext(self.db.conn)
        return self.db.transaction()

    def list(self, session_id: str | None = None, limit: int = 1000) -> list[AuditRecord]:
        if session_id:
            rows = self.db.conn.execute(
                "SELECT * FROM audit WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                (session_id, limit),
            ).fetchall()
        else:
            rows = self.db.conn.execute(
                "SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_audit(row) for row in reversed(rows)]


def _audit(row: sqlite3.Row) -> AuditRecord:
    data = dict(row)
    if data["certain"] is not None:
        data["certain"] = bool(data["certain"])
    return AuditRecord(**data)
