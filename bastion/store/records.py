"""Plain rows the store hands out; no SQL here."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class CertificateRecord:
    serial: int
    identity: str
    principals: tuple[str, ...]
    groups: tuple[str, ...]
    key_fingerprint: str
    valid_after: float
    valid_before: float
    issued: float
    source: str
    revoked: float | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["serial"] = str(self.serial)
        return data


@dataclass(frozen=True)
class SessionRecord:
    id: str
    identity: str
    serial: int | None
    login: str
    target: str
    kind: str
    command: str | None
    peer: str | None
    started: float
    ended: float | None
    exit_status: int | None
    exit_signal: str | None
    bytes_in: int
    bytes_out: int
    error: str | None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["serial"] = None if self.serial is None else str(self.serial)
        return data


@dataclass(frozen=True)
class AuditRecord:
    id: int
    time: float
    kind: str
    session_id: str | None
    identity: str | None
    target: str | None
    login: str | None
    command: str | None
    certain: bool | None
    decision: str | None
    rule: str | None
    started: float | None
    ended: float | None
    exit_status: int | None
    bytes_in: int | None
    bytes_out: int | None
    detail: str | None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
