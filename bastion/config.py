"""bastion.toml -> frozen dataclasses, validated once at the edge.

Tables: [server], [rules], [approvals], [masking], [[issuer]] (OIDC issuers)
and [[role]]. tomllib
keeps no positions, so errors in [[role]] and [[issuer]] tables name the line
of the table's header, found by scanning the text.
"""

from __future__ import annotations

import re
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bastion.alerts import AlertThresholds
from bastion.errors import BastionError, ConfigError
from bastion.identity.oidc import IssuerConfig
from bastion.identity.roles import Role, parse_roles
from bastion.masking import MaskingConfig, parse_masking
from bastion.notify import check_webhook_url

MAX_CONFIG_BYTES = 1 << 20

DEFAULT_CONFIG = """\
# bastion configuration; see README.md.
[server]
listen = "127.0.0.1:2222"
# Names agents use to reach the bastion itself; its host certificate lists them.
host_names = ["localhost", "127.0.0.1"]
# Seconds the bastion waits for a target's SSH handshake.
upstream_timeout = 10

[rules]
# "default" is the built-in guardrail pack; other names are TOML files beside this one.
policy = ["default"]
# What happens to a command no rule matches: allow, alert, review or deny.
default_action = "allow"
# What happens to a command the bastion does not understand: review (held for a
# human, who sees why), deny, or alert (runs, and raises an alert).
unknown_action = "review"

[approvals]
# A JSON POST announcing each new review request (https, or http on loopback).
# webhook = "https://hooks.example.com/bastion"

[alerts]
# Stored (`bastion alerts`), logged, and POSTed here if set.
# webhook = "https://hooks.example.com/bastion-alerts"
# denied_streak = 5          # denials in a row for one identity
# burst_commands = 30        # commands from one identity within burst_seconds
# burst_seconds = 10
# output_bytes = 104857600   # bytes one command or session sends to the agent

[masking]
# Secrets and personal data in exec and shell output are masked before the
# agent (and the recording) sees them. `bastion mask --list` names the detectors.
enabled = true
detectors = ["all"]
# Extra regexes; a group named `secret` limits what is masked:
# patterns = ['internal-token=(?P<secret>[A-Za-z0-9]{32})']
# Binary output of exec channels: pass (untouched, audited), mask, or close.
binary = "pass"
# How long a partial line may wait for the rest of a secret (milliseconds).
holdback_ms = 40

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


@dataclass(frozen=True)
class ServerConfig:
    listen_host: str = "127.0.0.1"
    listen_port: int = 2222
    host_names: tuple[str, ...] = ("localhost", "127.0.0.1")
    upstream_timeout: float = 10.0


@dataclass(frozen=True)
class RulesConfig:
    policy: tuple[str, ...] = ("default",)
    default_action: str = "allow"
    unknown_action: str = "review"


@dataclass(frozen=True)
class ApprovalsConfig:
    webhook: str | None = None  # JSON POST for each new request


@dataclass(frozen=True)
class AlertsConfig:
    webhook: str | None = None  # JSON POST for each alert
    thresholds: AlertThresholds = AlertThresholds()


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    rules: RulesConfig = RulesConfig()
    approvals: ApprovalsConfig = ApprovalsConfig()
    alerts: AlertsConfig = AlertsConfig()
    masking: MaskingConfig = MaskingConfig()
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
        if key not in ("server", "rules", "role", "issuer", "approvals", "alerts", "masking")
    ]
    server = data.get("server", {})
    if not isinstance(server, dict):
        raise ConfigError(f"{path}: [server] must be a table")
    known = {"listen", "host_names", "upstream_timeout"}
    warnings += [f"{path}: unknown key server.{key} ignored" for key in server if key not in known]
    host, port = parse_listen(str(server.get("listen", "127.0.0.1:2222")))
    names = server.get("host_names", ["localhost", "127.0.0.1", socket.gethostname()])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ConfigError(f"{path}: server.host_names must be a list of strings")
    timeout = server.get("upstream_timeout", 10)
    if not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
        raise ConfigError(f"{path}: server.upstream_timeout must be a number of seconds (1-300)")
    rules = data.get("rules", {})
    if not isinstance(rules, dict):
        raise ConfigError(f"{path}: [rules] must be a table")
    warnings += [
        f"{path}: unknown key rules.{key} ignored"
        for key in rules
        if key not in ("policy", "default_action", "unknown_action")
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
    return Config(
        server=ServerConfig(host, port, tuple(names), float(timeout)),
        rules=RulesConfig(tuple(policy), default_action, unknown_action),
        approvals=approvals,
        alerts=alerts,
        masking=masking,
        roles=tuple(roles),
        issuers=tuple(issuers),
        warnings=tuple(warnings),
    )


def _approvals(table: Any, path: Path, warnings: list[str]) -> ApprovalsConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [approvals] must be a table")
    warnings += [
        f"{path}: unknown key approvals.{key} ignored" for key in table if key != "webhook"
    ]
    webhook = table.get("webhook")
    if webhook is None:
        return ApprovalsConfig()
    if not isinstance(webhook, str):
        raise ConfigError(f"{path}: approvals.webhook must be a URL")
    try:
        check_webhook_url(webhook)
    except ConfigError as exc:
        raise ConfigError(f"{path}: approvals.{exc}") from None
    return ApprovalsConfig(webhook)


_ALERT_LIMITS = {
    "denied_streak": (2, 1000),
    "burst_commands": (2, 100000),
    "burst_seconds": (1, 3600),
    "output_bytes": (1024, 1 << 50),
}


def _alerts(table: Any, path: Path, warnings: list[str]) -> AlertsConfig:
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [alerts] must be a table")
    known = {"webhook", *_ALERT_LIMITS}
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
            )
            issuer.validate()
        except KeyError as exc:
            raise ConfigError(f"{where}: [[issuer]] needs {exc.args[0]}") from None
        except (BastionError, TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None
        issuers.append(issuer)
    return issuers
