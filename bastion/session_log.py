"""The sessions table: a row when a channel opens, its end when it closes.

`opened` is durable (a session the store cannot record does not open);
`closed` is queued. The end of a session also feeds the output-volume
alert and hands the recording to the search indexer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from bastion import metrics
from bastion.alert_sink import AlertSink
from bastion.audit import AUDIT_UNAVAILABLE, AuditUnavailable, StoreHealth
from bastion.store import Store
from bastion.store.records import SessionEnd, SessionRecord

log = logging.getLogger("bastion")


@dataclass(frozen=True)
class SessionOpened:
    id: str
    identity: str
    serial: int
    login: str
    target: str
    kind: str
    command: str | None
    peer: str | None
    started: float
    recording: str | None  # the recording store's location (opaque here)


@dataclass(frozen=True)
class SessionClosed:
    ended: float
    exit_status: int | None
    exit_signal: str | None
    bytes_in: int
    bytes_out: int
    error: str | None


class SessionLog:
    def __init__(
        self,
        store: Store,
        alerts: AlertSink,
        on_closed: Callable[[str], None] | None = None,
        health: StoreHealth | None = None,
    ) -> None:
        self._store = store
        self._health = health or StoreHealth()
        self._alerts = alerts
        self._on_closed = on_closed  # the search indexer
        self._open: dict[str, SessionOpened] = {}
        self._tasks: set[asyncio.Future[Any]] = set()

    @property
    def open_count(self) -> int:
        return len(self._open)

    async def opened(self, row: SessionOpened) -> None:
        """Write the session's row; AuditUnavailable if the store cannot."""
        try:
            await self._store.start_session(SessionRecord(**asdict(row)))
        except Exception as exc:
            self._health.failed(exc)
            raise AuditUnavailable(AUDIT_UNAVAILABLE) from None
        self._health.succeeded()
        self._open[row.id] = row
        metrics.session_started(row.id, row.kind)

    def closed(self, session_id: str, end: SessionClosed) -> None:
        row = self._open.pop(session_id, None)
        if row is None:
            return  # never opened (its row could not be written)
        metrics.session_finished(session_id, None, None)  # bytes counted as they passed
        task = asyncio.ensure_future(self._finish(session_id, SessionEnd(**asdict(end))))
        self._tasks.add(task)
        task.add_done_callback(self._written)
        if end.bytes_out:
            self._alerts.output(row.identity, session_id, row.target, "the session", end.bytes_out)

    async def _finish(self, session_id: str, end: SessionEnd) -> None:
        await self._store.finish_session(session_id, end)
        if self._on_closed is not None:  # after the row says it ended
            self._on_closed(session_id)

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _written(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        if task.exception() is not None:
            self._health.failed(task.exception())  # type: ignore[arg-type]
        else:
            self._health.succeeded()
