"""Targets, certificates, revocations and used tokens."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from bastion.errors import NotFound, UsageError
from bastion.store.errors import Conflict
from bastion.store.records import CertificateRecord, IdentityRevocation
from bastion.store.sql.core import SqlCore
from bastion.store.sql.tx import Row
from bastion.targets import Target

_CERT_COLUMNS = (
    "serial", "identity", "principals", "groups", "key_fingerprint", "valid_after",
    "valid_before", "issued", "source", "revoked", "key_id", "revoked_by",
)  # fmt: skip


class IdentityOps(SqlCore):
    # --- targets ----------------------------------------------------------------------

    async def add_target(self, target: Target) -> None:
        values = {
            "host": target.host,
            "port": target.port,
            "host_key": target.host_key,
            "host_ca": target.host_ca,
            "labels": json.dumps(target.labels, sort_keys=True),
        }
        try:
            async with self.transaction() as tx:
                await tx.execute(
                    "INSERT INTO targets (name, host, port, host_key, host_ca, labels, created)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (target.name, *values.values(), time.time()),
                )
                await self._chain(tx, "targets", target.name, "insert", values)
        except Conflict:
            raise UsageError(f"target {target.name!r} already exists") from None

    async def get_target(self, name: str) -> Target | None:
        row = await self._one("SELECT * FROM targets WHERE name = ?", (name,))
        return _target(row) if row else None

    async def list_targets(self) -> list[Target]:
        return [_target(row) for row in await self._all("SELECT * FROM targets ORDER BY name")]

    async def remove_target(self, name: str) -> None:
        async with self.transaction() as tx:
            if await tx.execute("DELETE FROM targets WHERE name = ?", (name,)) == 0:
                raise NotFound(f"no target named {name!r}")
            await self._chain(tx, "targets", name, "delete", {})

    # --- certificates -----------------------------------------------------------------

    async def record_certificate(self, cert: CertificateRecord) -> None:
        values = _cert_values(cert)
        async with self.transaction() as tx:
            marks = ", ".join("?" for _ in _CERT_COLUMNS)
            await tx.execute(
                f"INSERT INTO certificates ({', '.join(_CERT_COLUMNS)}) VALUES ({marks})",
                tuple(values.values()),
            )
            fields = {k: v for k, v in values.items() if k != "serial"}
            await self._chain(tx, "certificates", cert.serial, "insert", fields)

    async def get_certificate(self, serial: int) -> CertificateRecord | None:
        row = await self._one("SELECT * FROM certificates WHERE serial = ?", (serial,))
        return _certificate(row) if row else None

    async def list_certificates(self, identity: str | None = None) -> list[CertificateRecord]:
        if identity is None:
            rows = await self._all("SELECT * FROM certificates ORDER BY issued")
        else:
            rows = await self._all(
                "SELECT * FROM certificates WHERE identity = ? ORDER BY issued", (identity,)
            )
        return [_certificate(row) for row in rows]

    async def revoke_serial(self, serial: int, by: str | None = None) -> bool:
        """Revoke one certificate; False if it was revoked already."""
        now = time.time()
        async with self.transaction() as tx:
            if await tx.one("SELECT serial FROM certificates WHERE serial = ?", (serial,)) is None:
                raise NotFound(f"no certificate with serial {serial}")
            row = await tx.one(
                "UPDATE certificates SET revoked = ?, revoked_by = ?"
                " WHERE serial = ? AND revoked IS NULL RETURNING serial",
                (now, by, serial),
            )
            if row is None:
                return False
            await self._chain(
                tx, "certificates", serial, "update", {"revoked": now, "revoked_by": by}
            )
            await self._publish(tx, "certificate.revoked", serial, {"serials": [str(serial)]})
        return True

    async def revoke_identity(self, identity: str, by: str | None = None) -> int:
        """Revoke every certificate of `identity` and the identity itself (no new ones
        are issued to it until `lift_identity_revocation`); returns how many certificates."""
        now = time.time()
        async with self.transaction() as tx:
            rows = await tx.all(
                "UPDATE certificates SET revoked = ?, revoked_by = ?"
                " WHERE identity = ? AND revoked IS NULL RETURNING serial",
                (now, by, identity),
            )
            serials = sorted(int(r["serial"]) for r in rows)
            for serial in serials:
                await self._chain(
                    tx, "certificates", serial, "update", {"revoked": now, "revoked_by": by}
                )
            values = {"time": now, "by_whom": by, "lifted": None, "lifted_by": None}
            existing = await tx.one(
                "SELECT identity FROM identity_revocations WHERE identity = ?", (identity,)
            )
            if existing is None:
                await tx.execute(
                    "INSERT INTO identity_revocations (identity, time, by_whom) VALUES (?, ?, ?)",
                    (identity, now, by),
                )
                await self._chain(tx, "identity_revocations", identity, "insert", values)
            else:
                await tx.execute(
                    "UPDATE identity_revocations SET time = ?, by_whom = ?, lifted = NULL,"
                    " lifted_by = NULL WHERE identity = ?",
                    (now, by, identity),
                )
                await self._chain(tx, "identity_revocations", identity, "update", values)
            await self._publish(
                tx,
                "certificate.revoked",
                identity,
                {"identity": identity, "serials": [str(s) for s in serials]},
            )
        return len(serials)

    async def identity_revocation(self, identity: str) -> IdentityRevocation | None:
        """The identity's revocation if it is in force (not lifted)."""
        row = await self._one(
            "SELECT * FROM identity_revocations WHERE identity = ? AND lifted IS NULL", (identity,)
        )
        if row is None:
            return None
        return IdentityRevocation(row["identity"], row["time"], row["by_whom"])

    async def lift_identity_revocation(self, identity: str, by: str | None = None) -> bool:
        now = time.time()
        async with self.transaction() as tx:
            changed = await tx.execute(
                "UPDATE identity_revocations SET lifted = ?, lifted_by = ?"
                " WHERE identity = ? AND lifted IS NULL",
                (now, by, identity),
            )
            if changed:
                await self._chain(
                    tx, "identity_revocations", identity, "update", {"lifted": now, "lifted_by": by}
                )
        return bool(changed)

    async def revoked_among(self, serials: Sequence[int]) -> set[int]:
        found: set[int] = set()
        async with self.transaction(write=False) as tx:
            for start in range(0, len(serials), 500):
                chunk = list(serials[start : start + 500])
                marks = ", ".join("?" for _ in chunk)
                rows = await tx.all(
                    "SELECT serial FROM certificates WHERE revoked IS NOT NULL"
                    f" AND serial IN ({marks})",
                    chunk,
                )
                found.update(int(row["serial"]) for row in rows)
        return found

    # --- token uses (one exchange per token) ----------------------------------------

    async def use_token_once(self, key: str, identity: str, expires: float) -> bool:
        """Record that the token `key` (its jti, or a hash of it) was exchanged.

        True the first time, False on every later call, whichever node makes
        it: the insert is the check. Rows of tokens past their expiry are
        dropped on the way (a token past `expires` is refused anyway).
        """
        now = time.time()
        async with self.transaction() as tx:
            await tx.execute("DELETE FROM token_uses WHERE expires < ?", (now - 3600,))
            row = await tx.one(
                "INSERT INTO token_uses (token, identity, expires, used, node)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (token) DO NOTHING RETURNING token",
                (key, identity, expires, now, self.node),
            )
        return row is not None


def _target(row: Row) -> Target:
    return Target(
        name=row["name"],
        host=row["host"],
        port=row["port"],
        host_key=row["host_key"],
        host_ca=row["host_ca"],
        labels=json.loads(row["labels"]),
    )


def _cert_values(cert: CertificateRecord) -> dict[str, Any]:
    return {
        "serial": cert.serial,
        "identity": cert.identity,
        "principals": json.dumps(list(cert.principals)),
        "groups": json.dumps(list(cert.groups)),
        "key_fingerprint": cert.key_fingerprint,
        "valid_after": cert.valid_after,
        "valid_before": cert.valid_before,
        "issued": cert.issued,
        "source": cert.source,
        "revoked": cert.revoked,
        "key_id": cert.key_id,
        "revoked_by": cert.revoked_by,
    }


def _certificate(row: Row) -> CertificateRecord:
    return CertificateRecord(
        serial=int(row["serial"]),
        identity=row["identity"],
        principals=tuple(json.loads(row["principals"])),
        groups=tuple(json.loads(row["groups"])),
        key_fingerprint=row["key_fingerprint"],
        valid_after=row["valid_after"],
        valid_before=row["valid_before"],
        issued=row["issued"],
        source=row["source"],
        revoked=row["revoked"],
        key_id=row.get("key_id"),
        revoked_by=row.get("revoked_by"),
    )
