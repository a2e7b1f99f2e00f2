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
from bastion.store.alerts import AlertRepo
from bastion.store.db import AsyncDatabase

log = logging.getLogger("bastion")


class AlertSink:
    def __init__(
        self, db: AsyncDatabase, detector: AlertDetector, webhook: Webhook | None = None
    ) -> None:
        self._db = db
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
        task = asyncio.ensure_future(self._db.run(lambda db: AlertRepo(db).add(**alert.to_json())))
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
        """The audit log's listener: bursts, streaks, rule alerts, masking-off."""
        self.watch(lambda: self.detector.audited(entry.fields()))

    def output(
        self, identity: str, session_id: str | None, target: str | None, what: str, size: int
    ) -> None:
        self.watch(lambda: self.detector.output(identity, session_id, target, what, size))

    def _stored(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("storing an alert failed: %s", task.exception())
