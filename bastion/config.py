"""bastion.toml -> frozen dataclasses, validated once at the edge.

Tables: [server], [store], [rules], [approvals], [alerts], [audit], [masking],
[recordings], [[issuer]] (OIDC issuers) and [[role]]. tomllib
keeps no positions, so errors in [[role]] and [[issuer]] tables name the line
of the table's header, found by scanning the text.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.alerts import AlertThresholds
from bastion.errors import BastionError, ConfigError, UsageError
from bastion.identity.oidc import IssuerConfig
from bastion.identity.roles import Role, parse_roles
from bastion.masking import MaskingConfig, parse_masking
from bastion.notify import check_webhook_url
from bastion.recordings.config import RecordingsConfig, parse_recordings

MAX_CONFIG_BYTES = 1 << 20
MAX_PENDING_CAP = 10000

DEFAULT_CONFIG = """\
# bastion configuration; see README.md.
[server]
listen = "127.0.0.1:2222"
# Names agents use to reach the bastion itself; its host certificate lists them.
host_names = ["localhost", "127.0.0.1"]
# Seconds the bastion waits for a target's SSH handshake.
upstream_timeout = 10
# Live agent connections one identity may hold at once; more are refused and audited.
max_connections_per_identity = 100
# Prometheus /metrics, /healthz and /readyz on this HOST:PORT (off unless set).
# metrics = "127.0.0.1:9120"
# This node's name in the sessions table (default: the host name). Nodes sharing
# one store need different names; a restarted node ends its own open sessions.
# node = "bastion-1"
# Balancers (addresses) whose connections start with a PROXY protocol v2 header
# (haproxy `send-proxy-v2`), so sessions keep the agent's real address.
# proxy_protocol = ["127.0.0.1"]

[store]
# Where state lives: the state dir's bastion.db (SQLite) unless set. Several
# nodes share one PostgreSQL database: url = "postgresql://bastion@db/bastion"
# url = "sqlite:///var/lib/bastion/bastion.db"

[rules]
# "default" is the built-in guardrail pack; other names are TOML files beside this one.
policy = ["default"]
# What happens to a command no rule matches: allow, alert, review or deny.
default_action = "allow"
# What happens to a command the bastion does not understand: review (held for a
# human, who sees why), deny, or alert (runs, and raises an alert).
unknown_action = "review"
# Rules are evaluated in worker processes, never on the relay's event loop: how many
# (0: one per core) and the CPU time one decision may take before it is not understood.
# decision_workers = 0
# decision_budget_ms = 500

[approvals]
# A JSON POST announcing each new review request (https, or http on loopback).
# webhook = "https://hooks.example.com/bastion"
# Requests one identity may have pending at once; the next is denied until one is decided.
# max_pending_per_identity = 5

[alerts]
# Stored (`bastion alerts`), logged, and POSTed here if set.
# webhook = "https://hooks.example.com/bastion-alerts"
# denied_streak = 5          # denials in a row for one identity
# Bursts: decisions of one kind from one identity within burst_seconds.
# burst_commands = 30        # shell lines
# burst_exec = 100           # exec commands (an Ansible task makes several per host)
# burst_sftp = 1000          # SFTP requests (an sftp batch makes one per file operation)
# burst_channels = 100       # shells and subsystems opened
# burst_seconds = 10
# alert_on_transfers = false # scp/rsync/git/sftp transfers are audited, not alerted
# output_bytes = 104857600   # bytes one command or session sends to the agent

[masking]
# Secrets and personal data in exec and shell output are masked before the
# agent (and the recording) sees them. `bastion mask --list` names the detectors.
enabled = true
detectors = ["all"]
# Extra regexes; a group named `secret` limits what is masked:
# patterns = ['internal-token=(?P<secret>[A-Za-z0-9]{32})']
# A secret in binary exec output: mask (overwritten, same length), pass (left
# as it is, alerted), or close (the channel). File transfers are never changed.
binary = "mask"
# How long a partial line that could be a secret's start waits for the rest,
# and how long any other partial line (typed echo) waits (milliseconds).
holdback_ms = 40
echo_ms = 5

[recordings]
# Where session recordings (asciicast v2) go: "local" (<state dir>/recordings), or
# S3-compatible storage, written through a local spool uploaded as sessions run:
# url = "s3://bucket/prefix"
# endpoint = "https://s3.example.com"   # else $AWS_ENDPOINT_URL; keys else $AWS_ACCESS_KEY_ID...
# A recording that cannot be written raises an alert; "close" also ends the session.
on_failure = "continue"
# Exec stdin recorded as input events per session (bytes); past this only counted.
max_input_bytes = 1048576

# Roles: with at least one [[role]], an identity needs a matching role to reach
# anything (its certificate's groups, or its token's claims, are matched).
# Without any, certificate principals alone decide. Example:
#
# [[role]]
# name = "deployers"
# match = { groups = ["deployers"] }
# targets = ["web*", "env=staging"]     # target names (globs) or label selectors
# logins = ["deploy"]
# cert_ttl = "10m"
# forward = ["db1:5432"]
# policy = ["deploy.toml"]              # rules added to [rules].policy for this role
# default_action = "deny"               # for commands no rule matches (else [rules]'s)
# unknown_action = "review"             # for commands not understood (else [rules]'s)
# shell = false                         # exec only (recommended for agents)
# approve = true                        # may approve requests on these targets
# mask_patterns = ['ACME-[0-9]{8}']     # extra masking for these identities
"""


MAX_CONNECTIONS_PER_IDENTITY = 100


@dataclass(frozen=True)
class ServerConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 2222
    host_names: tuple[str, ...] = ("localhost", "127.0.0.1")
    upstream_timeout: float = 10.0
    metrics: tuple[str, int] | None = None  # (host, port) of the operations listener
    max_connections_per_identity: int = MAX_CONNECTIONS_PER_IDENTITY
    node: str | None = None  # None: the host name
    proxy_protocol: tuple[str, ...] = ()  # balancer addresses that send PROXY v2 headers


@dataclass(frozen=True)
class StoreConfig:
    url: str | None = None  # None: sqlite:/// the state dir's bastion.db


@dataclass(frozen=True)
class SearchConfig:
    # The share of one core that indexing ended sessions' screen text may use.
    index_cpu_share: float = 0.25


@dataclass(frozen=True)
class AuditConfig:
    anchor_key: str | None = None  # an OpenSSH private key file that signs anchors


@dataclass(frozen=True)
class RulesConfig:
    policy: tuple[str, ...] = ("default",)
    default_action: str = "allow"
    unknown_action: str = "review"
    decision_workers: int = 0  # worker processes that evaluate rules; 0: one per core
    decision_budget: float = 0.5  # CPU seconds one decision may take; past it, not understood


@dataclass(frozen=True)
class ApprovalsConfig:
    webhook: str | None = None  # JSON POST for each new request
    max_pending_per_identity: int = 5  # a further review request is denied


@dataclass(frozen=True)
class AlertsConfig:
    webhook: str | None = None  # JSON POST for each alert
    thresholds: AlertThresholds = AlertThresholds()


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    store: StoreConfig = StoreConfig()
    audit: AuditConfig = AuditConfig()
    search: SearchConfig = SearchConfig()
    rules: RulesConfig = RulesConfig()
    approvals: ApprovalsConfig = ApprovalsConfig()
    alerts: AlertsConfig = AlertsConfig()
    masking: MaskingConfig = MaskingConfig()
    recordings: RecordingsConfig = RecordingsConfig()
    roles: tuple[Role, ...] = ()
    issuers: tuple[IssuerConfig, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def roles_enforced(self) -> bool:
        """With no [[role]] table, certificate principals alone decide (see README)."""
        return bool(self.roles)


def parse_listen(text: str) -> tuple[str, int]:
    """`HOST:PORT` (IPv6 as `[::1]:2222`) to a (host, port) pair."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ConfigError(f"invalid listen address {text!r}: expected HOST:PORT")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ConfigError(f"invalid listen port in {text!r}")
    return host.strip("[]"), port


_HOST_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$")


def validate_host_name(name: str) -> str:
    """A name (or address) agents reach the bastion by: a principal of its host certificate."""
    if not _HOST_NAME.match(name) and not _is_ip_address(name):
        raise UsageError(f"invalid host name {name!r}: expected a DNS name or an IP address")
    return name


def _is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def parse_bastion_address(text: str) -> tuple[str, int]:
    """`HOST[:PORT]` (port 22 by default; IPv6 as `[::1]:2222`)."""
    host, port = text, "22"
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                host = ""
            port = rest[1:]
    elif text.count(":") == 1:
        host, port = text.split(":")
    elif ":" in text:  # a bare IPv6 address
        host = text
    try:
        validate_host_name(host)
    except UsageError:
        host = ""
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise UsageError(f"invalid bastion address {text!r}: expected HOST[:PORT]")
    return host, int(port)


def load_config(path: Path) -> Config:
    if not path.is_file():
        raise ConfigError(f"no configuration at {path}: run `bastion init` first")
    raw = path.read_bytes()
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    warnings = [
        f"{path}: unknown table or key {key!r} ignored"
        for key in data
        if key
        not in (
            "server",
            "store",
            "audit",
            "search",
            "rules",
            "role",
            "issuer",
            "approvals",
            "alerts",
            "masking",
            "recordings",
        )
    ]
    server = data.get("server", {})
    if not isinstance(server, dict):
        raise ConfigError(f"{path}: [server] must be a table")
    server_config = _server(server, path, warnings)
    rules = data.get("rules", {})
    if not isinstance(rules, dict):
        raise ConfigError(f"{path}: [rules] must be a table")
    warnings += [
        f"{path}: unknown key rules.{key} ignored"
        for key in rules
        if key
        not in (
            "policy",
            "default_action",
            "unknown_action",
            "decision_workers",
            "decision_budget_ms",
        )
    ]
    policy = rules.get("policy", ["default"])
    if not isinstance(policy, list) or not all(isinstance(p, str) and p for p in policy):
        raise ConfigError(f"{path}: rules.policy must be a list of policy names or files")
    default_action = rules.get("default_action", "allow")
    if default_action not in ("allow", "alert", "review", "deny"):
        raise ConfigError(f"{path}: rules.default_action must be allow, alert, review or deny")
    unknown_action = rules.get("unknown_action", "review")
    if unknown_action not in ("review", "deny", "alert"):
        raise ConfigError(f"{path}: rules.unknown_action must be review, deny or alert")
    workers = rules.get("decision_workers", 0)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 0 <= workers <= 64:
        raise ConfigError(f"{path}: rules.decision_workers must be 0 (one per core) to 64")
    budget_ms = rules.get("decision_budget_ms", 500)
    if (
        isinstance(budget_ms, bool)
        or not isinstance(budget_ms, int)
        or not 10 <= budget_ms <= 10_000
    ):
        raise ConfigError(f"{path}: rules.decision_budget_ms must be 10 to 10000 (milliseconds)")
    approvals = _approvals(data.get("approvals", {}), path, warnings)
    alerts = _alerts(data.get("alerts", {}), path, warnings)
    text = raw.decode("utf-8")
    roles = parse_roles(data.get("role"), str(path), _table_lines(text, "role"))
    issuers = _issuers(data.get("issuer"), str(path), _table_lines(text, "issuer"))
    masking = parse_masking(
        data.get("masking", {}),
        str(path),
        warnings,
        {role.name: role.mask_patterns for role in roles if role.mask_patterns},
    )
    recordings = parse_recordings(data.get("recordings", {}), str(path), warnings)
    return Config(
        server=server_config,
        store=_store(data.get("store", {}), path, warnings),
        audit=_audit(data.get("audit", {}), path, warnings),
        search=_search(data.get("search", {}), path, warnings),
        rules=RulesConfig(tuple(policy), default_action, unknown_action, workers, budget_ms / 1000),
        approvals=approvals,
        alerts=alerts,
        masking=masking,
        recordings=recordings,
        roles=tuple(roles),
        issuers=tuple(issuers),
        warnings=tuple(warnings),
    )


def _server(server: dict[str, Any], path: Path, warnings: list[str]) -> ServerConfig:
    known = {"listen", "host_names", "upstream_timeout", "node", "proxy_protocol"}
    known |= {"metrics", "max_connections_per_identity"}
    warnings += [f"{path}: unknown key server.{key} ignored" for key in server if key not in known]
    host, port = parse_listen(str(server.get("listen", "127.0.0.1:2222")))
    names = server.get("host_names", ["localhost", "127.0.0.1", socket.gethostname()])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{path}: server.host_names must be a list of strings")
    for name in names:
        try:
            validate_host_name(name)
        except UsageError as exc:
            raise ConfigError(f"{path}: server.host_names: {exc}") from None
    timeout = server.get("upstream_timeout", 10)
    if not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
        raise ConfigError(f"{path}: server.upstream_timeout must be a number of seconds (1-300)")
    metrics = server.get("metrics")
    if metrics is not None:
        if not isinstance(metrics, str):
            raise ConfigError(f"{path}: server.metrics must be a HOST:PORT string")
        try:
            metrics = parse_listen(metrics)
        except ConfigError as exc:
            raise ConfigError(f"{path}: server.metrics: {exc}") from None
    cap = server.get("max_connections_per_identity", MAX_CONNECTIONS_PER_IDENTITY)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= 100000:
        raise ConfigError(
            f"{path}: server.max_connections_per_identity must be a whole number from 1 to 100000"
        )
    return ServerConfig(
        host,
        port,
        tuple(names),
        float(timeout),
        node=check_node_name(server.get("node"), path),
        proxy_protocol=_proxy_addresses(server.get("proxy_protocol", []), path),
        metrics=metrics,
        max_connections_per_identity=cap,
    )


_NODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def check_node_name(value: Any, path: Path) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NODE.match(value):
        raise ConfigError(f"{path}: server.node must be a name of letters, digits, '.', '_', '-'")
    return value


def _proxy_addresses(value: Any, path: Path) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > 64:
        raise ConfigError(f"{path}: server.proxy_protocol must be a list of balancer addresses")
    addresses = []
    for item in value:
        try:
            addresses.append(str(ipaddress.ip_address(item)))
        except (TypeError, ValueError):
            raise ConfigError(
                f"{path}: server.proxy_protocol: {item!r} is not an IP address"
            ) from None
    return tuple(addresses)


def _store(table: Any, path: Path, warnings: list[str]) -> StoreConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [store] must be a table")
    warnings += [f"{path}: unknown key store.{key} ignored" for key in table if key != "url"]
    url = table.get("url")
    if url is None:
        return StoreConfig()
    if not isinstance(url, str) or not url.startswith(("sqlite:", "postgresql:", "postgres:")):
        raise ConfigError(f"{path}: store.url must be sqlite:///PATH or postgresql://...")
    return StoreConfig(url)


def _search(table: Any, path: Path, warnings: list[str]) -> SearchConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [search] must be a table")
    warnings += [
        f"{path}: unknown key search.{key} ignored" for key in table if key != "index_cpu_share"
    ]
    share = table.get("index_cpu_share", SearchConfig.index_cpu_share)
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0.01 <= share <= 1:
        raise ConfigError(f"{path}: search.index_cpu_share must be a number from 0.01 to 1")
    return SearchConfig(float(share))


def _audit(table: Any, path: Path, warnings: list[str]) -> AuditConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [audit] must be a table")
    warnings += [f"{path}: unknown key audit.{key} ignored" for key in table if key != "anchor_key"]
    key = table.get("anchor_key")
    if key is not None and (not isinstance(key, str) or not key):
        raise ConfigError(f"{path}: audit.anchor_key must be a file name")
    return AuditConfig(key)


def _approvals(table: Any, path: Path, warnings: list[str]) -> ApprovalsConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [approvals] must be a table")
    known = ("webhook", "max_pending_per_identity")
    warnings += [
        f"{path}: unknown key approvals.{key} ignored" for key in table if key not in known
    ]
    cap = table.get("max_pending_per_identity", ApprovalsConfig.max_pending_per_identity)
    if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_PENDING_CAP:
        raise ConfigError(
            f"{path}: approvals.max_pending_per_identity must be a whole number"
            f" from 1 to {MAX_PENDING_CAP}"
        )
    webhook = table.get("webhook")
    if webhook is None:
        return ApprovalsConfig(max_pending_per_identity=cap)
    if not isinstance(webhook, str):
        raise ConfigError(f"{path}: approvals.webhook must be a URL")
    try:
        check_webhook_url(webhook)
    except ConfigError as exc:
        raise ConfigError(f"{path}: approvals.{exc}") from None
    return ApprovalsConfig(webhook, cap)


_ALERT_LIMITS = {
    "denied_streak": (2, 1000),
    "burst_commands": (2, 100000),
    "burst_exec": (2, 1000000),
    "burst_sftp": (2, 1000000),
    "burst_channels": (2, 1000000),
    "burst_seconds": (1, 3600),
    "output_bytes": (1024, 1 << 50),
}
_ALERT_SWITCHES = ("alert_on_transfers",)


def _alerts(table: Any, path: Path, warnings: list[str]) -> AlertsConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [alerts] must be a table")
    known = {"webhook", *_ALERT_LIMITS, *_ALERT_SWITCHES}
    warnings += [f"{path}: unknown key alerts.{key} ignored" for key in table if key not in known]
    webhook = table.get("webhook")
    if webhook is not None:
        if not isinstance(webhook, str):
            raise ConfigError(f"{path}: alerts.webhook must be a URL")
        try:
            check_webhook_url(webhook)
        except ConfigError as exc:
            raise ConfigError(f"{path}: alerts.{exc}") from None
    values: dict[str, Any] = {}
    for key, (low, high) in _ALERT_LIMITS.items():
        if key in table:
            value = table[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigError(
                    f"{path}: alerts.{key} must be a whole number from {low} to {high}"
                )
            values[key] = value
    for key in _ALERT_SWITCHES:
        if key in table:
            if not isinstance(table[key], bool):
                raise ConfigError(f"{path}: alerts.{key} must be true or false")
            values[key] = table[key]
    return AlertsConfig(webhook, AlertThresholds(**values))


def _table_lines(text: str, name: str) -> list[int]:
    pattern = re.compile(rf"^\s*\[\[\s*{name}\s*\]\]")
    return [number for number, line in enumerate(text.splitlines(), 1) if pattern.match(line)]


_ISSUER_KEYS = {
    "name",
    "url",
    "audience",
    "identity_claim",
    "groups_claim",
    "algorithms",
    "jwks_uri",
    "leeway",
    "replay",
}


def _issuers(items: Any, source: str, lines: list[int]) -> list[IssuerConfig]:
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"{source}: `issuer` must be an array of tables ([[issuer]])")
    issuers = []
    for index, item in enumerate(items):
        where = f"{source}:{lines[index]}" if index < len(lines) else source
        if not isinstance(item, dict) or set(item) - _ISSUER_KEYS:
            raise ConfigError(f"{where}: [[issuer]] takes only {', '.join(sorted(_ISSUER_KEYS))}")
        try:
            issuer = IssuerConfig(
                name=str(item["name"]),
                url=str(item["url"]),
                audience=str(item["audience"]),
                identity_claim=str(item.get("identity_claim", "sub")),
                groups_claim=str(item.get("groups_claim", "groups")),
                algorithms=tuple(item.get("algorithms", ("RS256", "ES256"))),
                jwks_uri=item.get("jwks_uri"),
                leeway=int(item.get("leeway", 30)),
                replay=item.get("replay", "once"),
            )
            issuer.validate()
        except KeyError as exc:
            raise ConfigError(f"{where}: [[issuer]] needs {exc.args[0]}") from None
        except (BastionError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
        issuers.append(issuer)
    return issuers
