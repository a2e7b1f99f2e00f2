"""The alerts table."""

from __future__ import annotations

from typing import Any

from bastion.store.db import Database

_FIELDS = ("time", "kind", "identity", "session_id", "target", "rule", "command", "detail")


class AlertRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, **fields: Any) -> int:
        unknown = set(fields) - set(_FIELDS)
        if unknown:
            raise ValueError(f"unknown alert fields: {sorted(unknown)}")
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cur = self.db.conn.execute(
            f"INSERT INTO alerts ({columns}) VALUES ({marks})", tuple(fields.values())
        )
        return int(cur.lastrowid or 0)

    def list(
        self, *, identity: str | None = None, kind: str | None = None, limit: int = 1000
    ) -> list[dict[str, Any]]:
        where, params = [], []
        if identity:
            where.append("identity = ?")
            params.append(identity)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.conn.execute(
            f"SELECT * FROM alerts {clause} ORDER BY id DESC LIMIT ?", (*params, limit)
        ).fetchall()
        return [dict(row) for row in reversed(rows)]
