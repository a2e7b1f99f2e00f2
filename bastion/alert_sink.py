"""Where alerts go: the store, the serve log and the optional webhook.

The detector (bastion/alerts.py) decides *whether* something is an alert;
this sink only delivers. A failing detector is logged and never breaks the
session that fed it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from bastion import logs, metrics
from bastion.alerts import Alert, AlertDetector
from bastion.audit import AuditEntry
from bastion.notify import Webhook
from bastion.store import Store
from bastion.store.records import AlertRecord

log = logging.getLogger("bastion")


class AlertSink:
    def __init__(
        self, store: Store, detector: AlertDetector, webhook: Webhook | None = None
    ) -> None:
        self._store = store
        self.detector = detector
        self.webhook = webhook
        self._tasks: set[asyncio.Future[Any]] = set()

    def raise_alert(self, alert: Alert) -> None:
        """Store, log and announce one alert."""
        metrics.alert_raised(alert.kind)
        log.warning(
            "ALERT %s: %s (identity %s, session %s)",
            alert.kind,
            alert.detail,
            alert.identity,
            alert.session_id,
            extra=logs.fields("alert", alert.identity, alert.session_id, alert.target),
        )
        task = asyncio.ensure_future(self._store.add_alert(AlertRecord(**alert.to_json())))
        self._tasks.add(task)
        task.add_done_callback(self._stored)
        if self.webhook is not None:
            self.webhook.announce({"event": "alert.raised", "alert": alert.to_json()})

    def watch(self, detect: Callable[[], list[Alert]]) -> None:
        """Run one detector call and raise what it finds."""
        try:
            alerts = detect()
        except Exception:
            log.exception("alert detection failed")
            return
        for alert in alerts:
            self.raise_alert(alert)

    def audited(self, entry: AuditEntry) -> None:
        """The audit log's listener: bursts, streaks, rule alerts, masking-off.

        A decided command is counted in the store first, so bursts and denial
        streaks see the identity's commands on every node.
        """
        fields = entry.fields()
        outcome = self.detector.outcome(fields)
        if outcome is None:
            self.watch(lambda: self.detector.audited(fields))
            return
        task = asyncio.ensure_future(self._count(fields, outcome))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _count(self, fields: dict[str, Any], outcome: str) -> None:
        identity = fields.get("identity") or "-"
        try:
            counts = await self._store.count_command(
                identity,
                float(fields["time"]),
                outcome=outcome,
                window=self.detector.thresholds.burst_seconds,
                window_key=f"{identity}\x1f{fields.get('kind')}",  # bursts are per kind
            )
        except Exception as exc:  # the store is down: this node's own counts
            log.warning("alert counters unavailable (%s); counting locally", exc)
            counts = None
        self.watch(lambda: self.detector.audited(fields, counts))

    async def drain(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def output(
        self, identity: str, session_id: str | None, target: str | None, what: str, size: int
    ) -> None:
        self.watch(lambda: self.detector.output(identity, session_id, target, what, size))

    def _stored(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("storing an alert failed: %s", task.exception())
