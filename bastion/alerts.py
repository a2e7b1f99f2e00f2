"""Alerts: patterns in what agents do that a person should look at.

The detector is fed every audited event (decisions on commands, lines and
SFTP requests, refusals, session ends) by `Bastion.audit`, so no protocol
code knows about it. Denial streaks and bursts are counted in the store
(`Store.count_command`), so an identity's commands add up whichever nodes
they reach; without counts (the store unreachable) this node's own memory
counts. It raises:

- `rule`: a rule with `action = "alert"` matched (allowed, but flagged);
- `denied-streak`: N denials in a row for one identity;
- `burst`: more than N commands from one identity within a window;
- `forward-refused`: a port forward to a destination no role opens;
- `output-volume`: a command or session sent more than N bytes to the agent;
- `masking-off`: output masking was switched off for a channel (binary output
  passed through, or a file transfer), which could carry secrets unmasked.

Each alert is stored (`bastion alerts`), logged, and POSTed to the optional
`[alerts] webhook`. Repeats of the same kind for the same identity are held
back for a cooldown, so a loop does not become an alert storm.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bastion.store.records import CommandCounts

COOLDOWN = 60.0
MAX_TRACKED = 10000  # identities tracked at once; the oldest are forgotten


@dataclass(frozen=True)
class AlertThresholds:
    denied_streak: int = 5
    burst_commands: int = 30
    burst_seconds: float = 10.0
    output_bytes: int = 100 * 1024 * 1024


@dataclass(frozen=True)
class Alert:
    kind: str
    identity: str | None
    detail: str
    session_id: str | None = None
    target: str | None = None
    rule: str | None = None
    command: str | None = None
    time: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "identity": self.identity,
            "detail": self.detail,
            "session_id": self.session_id,
            "target": self.target,
            "rule": self.rule,
            "command": self.command,
            "time": self.time,
        }


_DECIDED = ("exec", "line", "sftp", "subsystem", "shell")


class AlertDetector:
    def __init__(self, thresholds: AlertThresholds | None = None) -> None:
        self.thresholds = thresholds or AlertThresholds()
        self._denied: dict[str, int] = {}
        self._recent: dict[str, deque[float]] = {}
        self._last: dict[tuple[str, str], float] = {}

    @staticmethod
    def outcome(fields: Mapping[str, Any]) -> str | None:
        """How a row counts towards streaks and bursts: deny, allow, other; None: not a command."""
        if fields.get("kind") not in _DECIDED or fields.get("decision") is None:
            return None
        decision = fields["decision"]
        return (
            "deny" if decision == "deny" else "allow" if decision in ("allow", "alert") else "other"
        )

    def audited(
        self, fields: Mapping[str, Any], counts: CommandCounts | None = None
    ) -> list[Alert]:
        """Alerts raised by one audit row (as given to Bastion.audit); `counts`, if given,
        are the identity's streak and burst window as the store counted them (all nodes)."""
        kind, decision = fields.get("kind"), fields.get("decision")
        identity = fields.get("identity") or "-"
        stamp = fields.get("time")
        now = float(stamp) if isinstance(stamp, (int, float)) else time.time()
        context = {
            "identity": identity,
            "session_id": fields.get("session_id"),
            "target": fields.get("target"),
            "command": fields.get("command"),
            "time": now,
        }
        if kind == "masking-off":
            detail = f"output masking off: {fields.get('detail') or 'no reason given'}"
            return self._once(Alert("masking-off", detail=detail, **context))
        if kind not in _DECIDED or decision is None:
            return []
        alerts: list[Alert] = []
        if decision == "alert":
            rule = fields.get("rule")
            alerts.append(Alert("rule", detail=f"rule {rule} matched", rule=rule, **context))
        if decision == "deny":
            if counts is not None:
                streak = counts.denied_streak
                due = streak > 0 and streak % self.thresholds.denied_streak == 0
            else:
                streak = self._denied.get(identity, 0) + 1
                self._denied[identity] = streak
                due = streak >= self.thresholds.denied_streak
                if due:
                    self._denied[identity] = 0
            if due:
                alerts += self._once(
                    Alert("denied-streak", detail=f"{streak} denials in a row", **context)
                )
        elif decision in ("allow", "alert") and counts is None:
            self._denied.pop(identity, None)
        if counts is not None:
            alerts += self._burst_counted(counts.in_window, context)
        else:
            alerts += self._burst(identity, now, context)
        self._forget_if_too_many()
        return alerts

    def output(
        self, identity: str, session_id: str | None, target: str | None, what: str, bytes_out: int
    ) -> list[Alert]:
        if bytes_out <= self.thresholds.output_bytes:
            return []
        return self._once(
            Alert(
                "output-volume",
                identity=identity,
                session_id=session_id,
                target=target,
                detail=f"{what} sent {bytes_out} bytes to the agent",
            )
        )

    def forward_refused(self, identity: str, destination: str, reason: str) -> list[Alert]:
        return self._once(
            Alert("forward-refused", identity=identity, target=destination, detail=reason)
        )

    def _burst(self, identity: str, now: float, context: dict[str, Any]) -> list[Alert]:
        window = self._recent.setdefault(identity, deque())
        window.append(now)
        while window and window[0] < now - self.thresholds.burst_seconds:
            window.popleft()
        if len(window) <= self.thresholds.burst_commands:
            return []
        detail = f"{len(window)} commands within {self.thresholds.burst_seconds:g} s"
        return self._once(Alert("burst", detail=detail, **context))

    def _burst_counted(self, in_window: int, context: dict[str, Any]) -> list[Alert]:
        if in_window <= self.thresholds.burst_commands:
            return []
        detail = f"{in_window} commands within {self.thresholds.burst_seconds:g} s"
        return self._once(Alert("burst", detail=detail, **context))

    def _once(self, alert: Alert) -> list[Alert]:
        """The alert, unless the same kind fired for this identity within the cooldown."""
        key = (alert.kind, alert.identity or "-")
        if alert.time - self._last.get(key, float("-inf")) < COOLDOWN:
            return []
        self._last[key] = alert.time
        return [alert]

    def _forget_if_too_many(self) -> None:
        for table in (self._denied, self._recent):
            while len(table) > MAX_TRACKED:
                table.pop(next(iter(table)))  # dicts keep insertion order: the oldest goes
