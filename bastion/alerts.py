"""Alerts: patterns in what agents do that a person should look at.

The detector is fed every audited event (decisions on commands, lines and
SFTP requests, refusals, session ends) by `Bastion.audit`, so no protocol
code knows about it. Denial streaks and bursts are counted in the store
(`Store.count_command`), so an identity's commands add up whichever nodes
they reach; without counts (the store unreachable) this node's own memory
counts. It raises:

- `rule`: a rule with `action = "alert"` matched (allowed, but flagged);
- `denied-streak`: N denials in a row for one identity;
- `burst`: more than N decisions of one kind (exec commands, shell lines,
  SFTP requests) from one identity within a window; each kind has its own N,
  because an Ansible task or an `sftp -b` batch makes dozens of execs or
  SFTP requests in a second where a person types a line every few;
- `forward-refused`: a port forward to a destination no role opens;
- `output-volume`: a command or session sent more than N bytes to the agent;
- `masking-off`: binary output passed a channel's masker unmasked. A file
  transfer (scp, rsync, git, sftp serving a file) is never masked, by design:
  it is audited as a `transfer` and raises no alert unless
  `[alerts] alert_on_transfers = true`.

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

from bastion.masking import transfer_protocol
from bastion.store.records import CommandCounts

COOLDOWN = 60.0
MAX_TRACKED = 10000  # identities tracked at once; the oldest are forgotten


# Decisions of each kind one identity may make within burst_seconds before a
# `burst` alert. Counted in tests/e2e/test_integrations.py: `ansible -m copy` on
# one host makes 8 execs, 3 SFTP channels and 9 SFTP requests in about 2 s
# (ping, command and copy together 15, 5 and 15), a forks=5 run five times
# that; a 60-file `sftp -b` batch 69 SFTP requests in under a second.
BURST_DEFAULTS = {"exec": 100, "line": 30, "sftp": 1000, "subsystem": 100, "shell": 100}


@dataclass(frozen=True)
class AlertThresholds:
    denied_streak: int = 5
    burst_commands: int = BURST_DEFAULTS["line"]  # shell lines (the kind people type)
    burst_seconds: float = 10.0
    output_bytes: int = 100 * 1024 * 1024
    burst_exec: int = BURST_DEFAULTS["exec"]
    burst_sftp: int = BURST_DEFAULTS["sftp"]
    burst_channels: int = BURST_DEFAULTS["shell"]  # shells and subsystems opened
    alert_on_transfers: bool = False

    def burst_limit(self, kind: str) -> int:
        if kind == "exec":
            return self.burst_exec
        if kind == "sftp":
            return self.burst_sftp
        if kind in ("shell", "subsystem"):
            return self.burst_channels
        return self.burst_commands


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
_BURST_NAMES = {
    "exec": "exec commands",
    "line": "shell lines",
    "sftp": "SFTP requests",
    "shell": "shells opened",
    "subsystem": "subsystems opened",
}


class AlertDetector:
    def __init__(self, thresholds: AlertThresholds | None = None) -> None:
        self.thresholds = thresholds or AlertThresholds()
        self._denied: dict[str, int] = {}
        self._recent: dict[tuple[str, str], deque[float]] = {}
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
        if kind in ("masking-off", "transfer"):
            return self._masking_off(kind, fields, context)
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
            alerts += self._burst_counted(counts.in_window, kind, context)
        else:
            alerts += self._burst(identity, kind, now, context)
        self._forget_if_too_many()
        return alerts

    def _masking_off(
        self, kind: str, fields: Mapping[str, Any], context: dict[str, Any]
    ) -> list[Alert]:
        """Binary output passed unmasked: an alert. A file transfer: one only if asked for."""
        transfer = kind == "transfer" or transfer_protocol(fields.get("command")) is not None
        if transfer and not self.thresholds.alert_on_transfers:
            return []
        detail = f"output masking off: {fields.get('detail') or 'no reason given'}"
        return self._once(Alert("masking-off", detail=detail, **context))

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

    def _burst(self, identity: str, kind: str, now: float, context: dict[str, Any]) -> list[Alert]:
        limit = self.thresholds.burst_limit(kind)
        window = self._recent.setdefault((identity, kind), deque())
        window.append(now)
        while window and window[0] < now - self.thresholds.burst_seconds:
            window.popleft()
        while len(window) > limit + 1:  # bounded: only "more than the limit" matters
            window.popleft()
        if len(window) <= limit:
            return []
        return self._once(Alert("burst", detail=self._burst_detail(kind, limit), **context))

    def _burst_counted(self, in_window: int, kind: str, context: dict[str, Any]) -> list[Alert]:
        """A burst as the store counted it: this kind's decisions on every node."""
        limit = self.thresholds.burst_limit(kind)
        if in_window <= limit:
            return []
        return self._once(Alert("burst", detail=self._burst_detail(kind, limit), **context))

    def _burst_detail(self, kind: str, limit: int) -> str:
        what = _BURST_NAMES.get(kind, f"{kind} decisions")
        return f"more than {limit} {what} within {self.thresholds.burst_seconds:g} s"

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
