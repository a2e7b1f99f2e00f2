"""Every Prometheus metric the bastion exports, behind a small typed API.

Code that observes something calls one function here (`decision(...)`,
`upstream_connected(...)`); nothing else imports prometheus_client, so metric
names, labels and buckets live in one file. Label values come from small
fixed sets (actions, sources, alert kinds, rule names from the loaded
policies), never from agent input, so a hostile agent cannot grow the
registry. `render()` is what /metrics serves (bastion/ops_http.py).

>>> decision("exec", "deny", "credential-read", 0.002)
>>> b"bastion_decisions_total" in render()
True
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401 (re-exported)
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

disable_created_metrics()  # no `_created` twin of every counter
REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

MAX_RULE_LABEL = 64  # rule names are policy data; bounded all the same
_SOURCES = frozenset({"exec", "line", "sftp", "subsystem", "shell"})
_ACTIONS = frozenset({"allow", "alert", "review", "deny"})

_build = Info("bastion_build", "The running bastion's version.", registry=REGISTRY)
_connections_open = Gauge(
    "bastion_connections_open", "Authenticated agent connections now open.", registry=REGISTRY
)
_connections_refused = Counter(
    "bastion_connections_refused",
    "Agent connections refused after their certificate checked out, by reason.",
    ["reason"],
    registry=REGISTRY,
)
_sessions_open = Gauge(
    "bastion_sessions_open", "Relayed channels now open, by kind.", ["kind"], registry=REGISTRY
)
_sessions_started = Counter(
    "bastion_sessions_started",
    "Relayed channels started (exec, shell, subsystem), by kind.",
    ["kind"],
    registry=REGISTRY,
)
_decisions = Counter(
    "bastion_decisions",
    "Commands, shell lines and SFTP requests decided, by source, action and rule.",
    ["source", "action", "rule"],
    registry=REGISTRY,
)
_decision_seconds = Histogram(
    "bastion_decision_seconds",
    "Time to decide one command, line or SFTP request (rules engine included).",
    ["source"],
    buckets=(0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
_requests_pending = Gauge(
    "bastion_requests_pending",
    "Review requests waiting for a reviewer (read from the store at scrape time).",
    registry=REGISTRY,
)
_alerts = Counter("bastion_alerts", "Alerts raised, by kind.", ["kind"], registry=REGISTRY)
_refusals = Counter(
    "bastion_refusals",
    "Refusals audited (unknown targets, forbidden logins and forwards, rejected tokens...).",
    registry=REGISTRY,
)
_bytes = Counter(
    "bastion_relayed_bytes",
    "Bytes relayed: in = agent to target, out = target to agent.",
    ["direction"],
    registry=REGISTRY,
)
_upstream_seconds = Histogram(
    "bastion_upstream_connect_seconds",
    "Time to open a target's SSH connection (TCP, handshake, certificate login).",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)
_upstream_failures = Counter(
    "bastion_upstream_failures",
    "Target connections that failed, by reason.",
    ["reason"],
    registry=REGISTRY,
)
_log_errors = Counter(
    "bastion_log_errors",
    "Log records at ERROR or above (a traceback is logged once per kind; this counts all).",
    registry=REGISTRY,
)
UPSTREAM_FAILURE_REASONS = ("host-key", "login", "ssh", "unreachable", "timeout")
_session_kinds: dict[str, str] = {}  # open session id -> kind, for the open gauge


def set_version(version: str) -> None:
    _build.info({"version": version})


def connections_open(count: int) -> None:
    """Set at scrape time from the bastion's table of live connections."""
    _connections_open.set(count)


def connection_refused(reason: str) -> None:
    """`reason` is one of a fixed set: per-identity-limit, unknown-serial, revoked, no-role."""
    _connections_refused.labels(reason).inc()


def session_started(session_id: str, kind: str) -> None:
    kind = kind if kind in _SOURCES else "other"
    if session_id in _session_kinds:
        return
    _session_kinds[session_id] = kind
    _sessions_open.labels(kind).inc()
    _sessions_started.labels(kind).inc()


def session_finished(session_id: str, bytes_in: int | None, bytes_out: int | None) -> None:
    """A channel ended. Its bytes are counted here, at the end, until the relay counts
    them as they pass (then pass None for both: see bytes_relayed)."""
    kind = _session_kinds.pop(session_id, None)
    if kind is not None:
        _sessions_open.labels(kind).dec()
    bytes_relayed("in", bytes_in or 0)
    bytes_relayed("out", bytes_out or 0)


def decision(source: str, action: str, rule: str | None, seconds: float) -> None:
    source = source if source in _SOURCES else "other"
    action = action if action in _ACTIONS else "deny"
    _decisions.labels(source, action, (rule or "")[:MAX_RULE_LABEL]).inc()
    _decision_seconds.labels(source).observe(seconds)


def decision_counted(source: str, action: str, rule: str | None) -> None:
    """A decision made without the engine (refused shells, history expansion): no latency."""
    source = source if source in _SOURCES else "other"
    action = action if action in _ACTIONS else "deny"
    _decisions.labels(source, action, (rule or "")[:MAX_RULE_LABEL]).inc()


def requests_pending(count: int) -> None:
    _requests_pending.set(count)


def alert_raised(kind: str) -> None:
    _alerts.labels(kind[:MAX_RULE_LABEL]).inc()


def refusal() -> None:
    _refusals.inc()


def bytes_relayed(direction: str, count: int) -> None:
    """`direction` is "in" (agent to target) or "out" (target to agent)."""
    if count > 0:
        _bytes.labels("in" if direction == "in" else "out").inc(count)


def upstream_connected(seconds: float) -> None:
    _upstream_seconds.observe(seconds)


def upstream_failed(reason: str, seconds: float) -> None:
    """`reason` is one of UPSTREAM_FAILURE_REASONS."""
    _upstream_seconds.observe(seconds)
    _upstream_failures.labels(reason if reason in UPSTREAM_FAILURE_REASONS else "ssh").inc()


def log_error() -> None:
    _log_errors.inc()


def render() -> bytes:
    """The text exposition format, as /metrics serves it."""
    return generate_latest(REGISTRY)
