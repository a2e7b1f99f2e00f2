"""The audit log: typed entries, hash-chained in the store.

Two ways to write. `record` is durable: it returns once the row is
committed, and raises AuditUnavailable if the store cannot take it; the
relay awaits it before a command may run, so nothing runs without its row.
`note` queues a row for things that already happened (a refusal, a
masking count): it never blocks the data path, and a failed write is
logged. A row's later update waits for its insert.
Every entry is also shown to `on_entry` (the alert detector).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

from bastion.errors import BastionError
from bastion.store import Store
from bastion.store.records import AuditEvent

log = logging.getLogger("bastion.audit")

AUDIT_UNAVAILABLE = "bastion: audit unavailable, command not run"


class AuditUnavailable(BastionError):
    """The store could not commit an audit row; whatever needed it must not happen."""


@dataclass(frozen=True)
class AuditEntry:
    kind: str
    identity: str | None = None
    session_id: str | None = None
    target: str | None = None
    login: str | None = None
    command: str | None = None
    decision: str | None = None
    rule: str | None = None
    detail: str | None = None
    certain: bool | None = None
    started: float | None = None
    time: float = field(default_factory=time.time)

    def fields(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


@dataclass
class AuditHandle:
    """A written (or queued) entry; its row id arrives when the write is done."""

    entry: AuditEntry
    row_id: int | None = None
    written: asyncio.Future[Any] | None = None  # the queued insert, which an update waits for


@dataclass(frozen=True)
class AuditOutcome:
    """What a command's row learns when it ends."""

    ended: float
    exit_status: int | None
    bytes_in: int
    bytes_out: int


class StoreHealth:
    """Whether the last state write failed; the first success after a failure is announced."""

    def __init__(self) -> None:
        self.failing = False
        self.on_recovered: Callable[[], None] | None = None

    def failed(self, exc: BaseException) -> None:
        if not self.failing:
            log.error("state write failed: %s", exc)
        self.failing = True

    def succeeded(self) -> None:
        if self.failing:
            self.failing = False
            log.warning("state writes succeed again")
            if self.on_recovered is not None:
                self.on_recovered()


class AuditLog:
    def __init__(
        self,
        store: Store,
        on_entry: Callable[[AuditEntry], None] | None = None,
        health: StoreHealth | None = None,
    ) -> None:
        self._store = store
        self._on_entry = on_entry
        self.health = health or StoreHealth()
        self._tasks: set[asyncio.Future[Any]] = set()

    async def record(self, entry: AuditEntry) -> AuditHandle:
        """Write `entry` and wait for the commit; AuditUnavailable if it did not happen."""
        handle = AuditHandle(entry)
        try:
            handle.row_id = await self._store.append_audit(AuditEvent(**entry.fields()))
        except Exception as exc:  # any store failure: the caller must not go on
            self.health.failed(exc)
            raise AuditUnavailable(AUDIT_UNAVAILABLE) from None
        self.health.succeeded()
        self._show(entry)
        return handle

    def note(self, entry: AuditEntry) -> AuditHandle:
        """Queue `entry`; the relay does not wait for it."""
        handle = AuditHandle(entry)

        async def insert() -> None:
            handle.row_id = await self._store.append_audit(AuditEvent(**entry.fields()))

        handle.written = self._submit(insert())
        self._show(entry)
        return handle

    def finish(self, handle: AuditHandle, outcome: AuditOutcome) -> None:
        """A command's end, exit status and byte counts, on its row."""

        async def update() -> None:
            if handle.written is not None:  # the insert first, on any backend
                await asyncio.wait([handle.written])
            if handle.row_id is not None:
                await self._store.update_audit(
                    handle.row_id,
                    ended=outcome.ended,
                    exit_status=outcome.exit_status,
                    bytes_in=outcome.bytes_in,
                    bytes_out=outcome.bytes_out,
                )

        self._submit(update())

    async def drain(self) -> None:
        """Wait for every queued write (shutdown, tests)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _show(self, entry: AuditEntry) -> None:
        if self._on_entry is None:
            return
        try:
            self._on_entry(entry)
        except Exception:  # a detector bug never breaks the session
            log.exception("audit listener failed")

    def _submit(self, write: Coroutine[Any, Any, None]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(write)
        self._tasks.add(task)
        task.add_done_callback(self._written)
        return task

    def _written(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.health.failed(exc)
        else:
            self.health.succeeded()
