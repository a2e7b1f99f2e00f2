"""The values that cross the store interface: frozen dataclasses, no SQL, no rows."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

REQUEST_STATES = ("pending", "approved", "denied", "expired", "cancelled")


@dataclass(frozen=True)
class CertificateRecord:
    """What the bastion signed; a presented certificate must match all of it."""

    serial: int
    identity: str
    principals: tuple[str, ...]
    groups: tuple[str, ...]
    key_fingerprint: str
    valid_after: float
    valid_before: float
    issued: float
    source: str  # "cli", "oidc:<issuer url>", "test"
    revoked: float | None = None
    key_id: str | None = None  # the certificate's key id (None: recorded before it was kept)
    revoked_by: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["serial"] = str(self.serial)
        data["principals"] = list(self.principals)
        data["groups"] = list(self.groups)
        return data


@dataclass(frozen=True)
class IdentityRevocation:
    identity: str
    time: float
    by: str | None
    lifted: float | None = None
    lifted_by: str | None = None


@dataclass(frozen=True)
class SessionRecord:
    id: str
    identity: str
    serial: int | None
    login: str
    target: str
    kind: str  # exec | shell | subsystem
    command: str | None
    peer: str | None
    started: float
    ended: float | None = None
    exit_status: int | None = None
    exit_signal: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    recording: str | None = None
    error: str | None = None
    node: str | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["serial"] = None if self.serial is None else str(self.serial)
        return data


@dataclass(frozen=True)
class SessionEnd:
    ended: float
    exit_status: int | None = None
    exit_signal: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    error: str | None = None


@dataclass(frozen=True)
class AuditEvent:
    """One audit row as written; `time` defaults to now when the store writes it."""

    kind: str
    time: float | None = None
    session_id: str | None = None
    identity: str | None = None
    target: str | None = None
    login: str | None = None
    command: str | None = None
    certain: bool | None = None
    decision: str | None = None
    rule: str | None = None
    started: float | None = None
    ended: float | None = None
    exit_status: int | None = None
    bytes_in: int | None = None
    bytes_out: int | None = None
    detail: str | None = None

    @classmethod
    def of(cls, **values: Any) -> AuditEvent:
        """From keyword fields, refusing names an audit row does not have."""
        unknown = set(values) - set(AUDIT_FIELDS) - {"kind"}
        if unknown:
            raise ValueError(f"unknown audit fields: {sorted(unknown)}")
        return cls(**values)

    def columns(self) -> dict[str, Any]:
        """The fields that are set (None left out), as the chain journals them."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }


@dataclass(frozen=True)
class AuditRecord(AuditEvent):
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


AUDIT_FIELDS = tuple(f.name for f in fields(AuditEvent))
AUDIT_UPDATABLE = ("ended", "exit_status", "bytes_in", "bytes_out", "certain", "detail")


@dataclass(frozen=True)
class NewRequest:
    identity: str
    target: str
    login: str
    command: str
    rule: str | None
    session_id: str | None
    created: float
    expires: float
    approvals_needed: int = 1
    explanation: str | None = None  # why it was held, for the reviewer (MAX_EXPLANATION)


@dataclass(frozen=True)
class Approval:
    reviewer: str
    decided: float
    reason: str | None


@dataclass(frozen=True)
class RequestRecord:
    id: int
    identity: str
    target: str
    login: str
    command: str
    rule: str | None
    session_id: str | None
    created: float
    expires: float
    state: str
    decided: float | None
    reviewer: str | None
    reason: str | None
    approvals_needed: int
    heartbeat: float | None
    node: str | None = None
    explanation: str | None = None
    approvals: tuple[Approval, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["approvals"] = [asdict(a) for a in self.approvals]
        data["approval_count"] = len(self.approvals)
        return data


@dataclass(frozen=True)
class RequestState:
    state: str
    reviewer: str | None
    reason: str | None


@dataclass(frozen=True)
class ApprovalOutcome:
    state: str  # "approved", or "pending" while more approvers are needed
    approvals: int
    needed: int


@dataclass(frozen=True)
class ExpiredRequest:
    id: int
    reason: str


@dataclass(frozen=True)
class Grant:
    id: int
    request_id: int
    identity: str
    target: str
    login: str
    command: str
    granted_by: str
    created: float
    expires: float


@dataclass(frozen=True)
class AlertRecord:
    kind: str
    identity: str | None
    detail: str
    time: float
    session_id: str | None = None
    target: str | None = None
    rule: str | None = None
    command: str | None = None
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CommandCounts:
    """An identity's recent commands as every node saw them (for burst and streak alerts)."""

    denied_streak: int  # denials in a row, this one included
    in_window: int  # commands within the burst window, this one included


@dataclass(frozen=True)
class SearchHit:
    session_id: str
    at: float
    snippet: str
    identity: str
    target: str
    login: str
    kind: str
    command: str | None
    started: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ScreenIndexState:
    session_id: str
    indexed: float
    lines: int
    skipped_chars: int  # output past the indexing budget, not indexed
    error: str | None


@dataclass(frozen=True)
class UnindexedSession:
    session_id: str
    recording: str
    kind: str


@dataclass(frozen=True)
class NodeRecord:
    name: str
    host: str
    pid: int
    started: float
    heartbeat: float
    address: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Event:
    """One entry of the ordered event feed (the outbox), written with the change it announces."""

    id: int
    time: float
    kind: str  # request.created | request.decided | certificate.revoked | ...
    ref: str | None
    node: str | None
    payload: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def load_payload(text: str | None) -> dict[str, Any]:
        value = json.loads(text) if text else {}
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True)
class ChainHead:
    seq: int
    hash: str


@dataclass(frozen=True)
class RecordingRecord:
    """Where a session's recording lives and whether it was completed (joined, hashed)."""

    session_id: str
    location: str | None
    node: str | None
    ended: float | None
    completed: float | None = None
    sha256: str | None = None
    size: int | None = None
    chunks: int = 0


@dataclass(frozen=True)
class RecordingChunk:
    session_id: str
    seq: int
    key: str
    size: int
    sha256: str | None
    uploaded: float
