"""The audit log, alerts, and the per-identity counters alerts are raised from."""

from __future__ import annotations

import time
from typing import Any

from bastion.store.records import (
    AUDIT_FIELDS,
    AlertRecord,
    AuditEvent,
    AuditRecord,
    CommandCounts,
)
from bastion.store.sql.core import SqlCore
from bastion.store.sql.tx import Row, Tx

_ALERT_FIELDS = ("time", "kind", "identity", "session_id", "target", "rule", "command", "detail")


class AuditOps(SqlCore):
    async def append_audit(self, event: AuditEvent) -> int:
        """Write one audit row and its chain entry; returns the row id."""
        async with self.transaction() as tx:
            return await self._append_audit(tx, event)

    async def _append_audit(self, tx: Tx, event: AuditEvent) -> int:
        fields = event.columns()
        fields.setdefault("time", time.time())
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        row = await tx.one(
            f"INSERT INTO audit ({columns}) VALUES ({marks}) RETURNING id", tuple(fields.values())
        )
        assert row is not None
        row_id = int(row["id"])
        await self._chain(tx, "audit", row_id, "insert", fields)
        return row_id

    async def update_audit(self, row_id: int, **fields: Any) -> None:
        """Complete an audit row (its end, exit status, byte counts...)."""
        unknown = set(fields) - set(AUDIT_FIELDS)
        if unknown or "kind" in fields:
            raise ValueError(
                f"cannot update audit fields: {sorted(unknown | {'kind'} & set(fields))}"
            )
        if not fields:
            return
        assignments = ", ".join(f"{name} = ?" for name in fields)
        async with self.transaction() as tx:
            changed = await tx.execute(
                f"UPDATE audit SET {assignments} WHERE id = ?", (*fields.values(), row_id)
            )
            if changed:
                await self._chain(tx, "audit", row_id, "update", fields)

    async def list_audit(
        self, session_id: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        """The newest `limit` rows (of one session, if given), oldest first."""
        if session_id:
            rows = await self._all(
                "SELECT * FROM audit WHERE session_id = ? ORDER BY id DESC LIMIT ?",
                (session_id, limit),
            )
        else:
            rows = await self._all("SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))
        return [_audit(row) for row in reversed(rows)]

    # --- alerts ---------------------------------------------------------------------

    async def add_alert(self, alert: AlertRecord) -> int:
        values = {name: getattr(alert, name) for name in _ALERT_FIELDS}
        marks = ", ".join("?" for _ in values)
        async with self.transaction() as tx:
            row = await tx.one(
                f"INSERT INTO alerts ({', '.join(values)}) VALUES ({marks}) RETURNING id",
                tuple(values.values()),
            )
            assert row is not None
            await self._chain(tx, "alerts", row["id"], "insert", values)
            await self._publish(tx, "alert.raised", row["id"], {"kind": alert.kind})
        return int(row["id"])

    async def list_alerts(
        self, *, identity: str | None = None, kind: str | None = None, limit: int = 1000
    ) -> list[AlertRecord]:
        where, params = [], []
        if identity:
            where.append("identity = ?")
            params.append(identity)
        if kind:
            where.append("kind = ?")
            params.append(kind)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = await self._all(
            f"SELECT * FROM alerts {clause} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [AlertRecord(**row) for row in reversed(rows)]

    async def count_command(
        self,
        identity: str,
        now: float,
        *,
        outcome: str,
        window: float,
        window_key: str | None = None,
    ) -> CommandCounts:
        """Count one decided command of `identity`, whichever node saw it.

        `outcome` "deny" extends the identity's denial streak, "allow" ends
        it, anything else leaves it; the burst window counts every command
        within the last `window` seconds under `window_key` (default: the
        identity; the alert detector keys it by identity and kind, since an
        SFTP batch and typed shell lines have different thresholds).
        """
        key = window_key or identity
        async with self.transaction() as tx:
            step = {"deny": "alert_streaks.denied + 1", "allow": "0"}.get(
                outcome, "alert_streaks.denied"
            )
            first = 1 if outcome == "deny" else 0
            row = await tx.one(
                "INSERT INTO alert_streaks (identity, denied) VALUES (?, ?)"
                f" ON CONFLICT (identity) DO UPDATE SET denied = {step} RETURNING denied",
                (identity, first),
            )
            await tx.execute("INSERT INTO alert_window (identity, time) VALUES (?, ?)", (key, now))
            await tx.execute(
                "DELETE FROM alert_window WHERE identity = ? AND time < ?", (key, now - window)
            )
            count = await tx.one(
                "SELECT COUNT(*) AS n FROM alert_window WHERE identity = ?", (key,)
            )
        return CommandCounts(int(row["denied"]) if row else 0, int(count["n"]) if count else 0)


def _audit(row: Row) -> AuditRecord:
    data = dict(row)
    if data["certain"] is not None:
        data["certain"] = bool(data["certain"])
    return AuditRecord(**data)
