"""Roles: which claims (or certificate groups) grant which targets, logins and forwards.

An identity gets the union of every role that matches it; no role, no access.
Pure values and functions: config.py parses `[[role]]` tables into Role, the
server asks Grants what an identity may do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from bastion.durations import parse_duration
from bastion.errors import ConfigError, UsageError

DEFAULT_TTL = 600
MAX_TTL = 12 * 3600
_ACTIONS = ("allow", "alert", "review", "deny")
_UNKNOWN_ACTIONS = ("review", "deny", "alert")  # a command not understood is never simply allowed
_KEYS = {
    "name",
    "issuer",
    "match",
    "targets",
    "logins",
    "policy",
    "default_action",
    "unknown_action",
    "cert_ttl",
    "forward",
    "approve",
    "shell",
    "mask_patterns",
    "env",
}


@dataclass(frozen=True)
class Role:
    name: str
    match: Mapping[str, tuple[str, ...]]  # claim -> globs; "groups" matches any group
    targets: tuple[str, ...] = ()  # name globs, or label selectors "key=value"
    logins: tuple[str, ...] = ()
    issuer: str | None = None
    policy: tuple[str, ...] = ()  # added to [rules].policy for this role's commands
    default_action: str | None = None  # None: [rules].default_action
    unknown_action: str | None = None  # commands not understood; None: [rules].unknown_action
    cert_ttl: int = DEFAULT_TTL
    forward: tuple[str, ...] = ()  # "host:port" globs
    approve: bool = False
    shell: bool = True
    where: str = ""  # file:line of the [[role]] table, for error messages

    def reaches(self, target: str, labels: Mapping[str, str]) -> bool:
        return any(_target_matches(p, target, labels) for p in self.targets)

    mask_patterns: tuple[str, ...] = ()  # extra output-masking regexes (compiled by config.py)
    env: tuple[str, ...] | None = None  # environment names (globs) forwarded; None: the default

    def matches(self, claims: Mapping[str, Any], groups: Sequence[str], issuer: str | None) -> bool:
        if self.issuer is not None and issuer != self.issuer:
            return False
        if not self.match:
            return False  # a role must say whom it is for
        for claim, patterns in self.match.items():
            values = list(groups) if claim == "groups" else _claim_values(claims.get(claim))
            if not any(fnmatchcase(v, p) for v in values for p in patterns):
                return False
        return True


@dataclass(frozen=True)
class Grants:
    """The union of an identity's roles."""

    roles: tuple[Role, ...] = field(default_factory=tuple)

    @property
    def any(self) -> bool:
        return bool(self.roles)

    def may_reach(self, target: str, labels: Mapping[str, str]) -> bool:
        return any(_target_matches(p, target, labels) for role in self.roles for p in role.targets)

    def may_login(self, target: str, labels: Mapping[str, str], login: str) -> bool:
        return any(
            any(_target_matches(p, target, labels) for p in role.targets)
            and any(fnmatchcase(login, g) for g in role.logins)
            for role in self.roles
        )

    def roles_for(self, target: str, labels: Mapping[str, str], login: str) -> tuple[Role, ...]:
        """The roles under which this identity acts as `login` on `target`: their rules apply."""
        return tuple(
            role
            for role in self.roles
            if role.reaches(target, labels) and any(fnmatchcase(login, g) for g in role.logins)
        )

    def may_forward(self, host: str, port: int) -> bool:
        wanted = f"{host}:{port}"
        return any(fnmatchcase(wanted, p) for role in self.roles for p in role.forward)

    def may_approve(self, target: str, labels: Mapping[str, str]) -> bool:
        return any(
            role.approve and any(_target_matches(p, target, labels) for p in role.targets)
            for role in self.roles
        )

    def shell_allowed(self, target: str, labels: Mapping[str, str]) -> bool:
        """Interactive shells need every matching role to allow them (a `shell = false` wins)."""
        reaching = [
            r for r in self.roles if any(_target_matches(p, target, labels) for p in r.targets)
        ]
        return bool(reaching) and all(r.shell for r in reaching)

    def cert_ttl(self, token_expires_in: float | None = None) -> int:
        """The longest TTL any role grants, capped, and never past the token's own expiry."""
        ttl = min(MAX_TTL, max((r.cert_ttl for r in self.roles), default=0))
        if token_expires_in is not None:
            ttl = min(ttl, int(token_expires_in))
        return max(0, ttl)

    def env_names(
        self, target: str, labels: Mapping[str, str], login: str
    ) -> tuple[str, ...] | None:
        """Environment globs the roles acting here forward (None: none of them says)."""
        lists = [r.env for r in self.roles_for(target, labels, login) if r.env is not None]
        if not lists:
            return None
        return tuple(dict.fromkeys(name for names in lists for name in names))

    @property
    def logins(self) -> tuple[str, ...]:
        """Exact login names for certificate principals (globs cannot be principals)."""
        names = {g for r in self.roles for g in r.logins if not any(ch in g for ch in "*?[")}
        return tuple(sorted(names))


def grants_for(
    roles: Sequence[Role], claims: Mapping[str, Any], groups: Sequence[str], issuer: str | None
) -> Grants:
    return Grants(tuple(role for role in roles if role.matches(claims, groups, issuer)))


def _claim_values(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    if isinstance(value, (int, float, bool)):
        return [str(value).lower() if isinstance(value, bool) else str(value)]
    return []


def _target_matches(pattern: str, target: str, labels: Mapping[str, str]) -> bool:
    if "=" in pattern:
        key, _, value = pattern.partition("=")
        return key in labels and fnmatchcase(labels[key], value)
    return fnmatchcase(target, pattern)


def parse_roles(items: Any, source: str, lines: Sequence[int] = ()) -> list[Role]:
    """`[[role]]` tables -> Roles; each error names the file and the table's line."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"{source}: `role` must be an array of tables ([[role]])")
    roles, names = [], set()
    for index, item in enumerate(items):
        where = f"{source}:{lines[index]}" if index < len(lines) else source
        role = _role(item, where)
        if role.name in names:
            raise ConfigError(f"{where}: duplicate role name {role.name!r}")
        names.add(role.name)
        roles.append(role)
    return roles


def _role(item: Any, where: str) -> Role:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: each [[role]] must be a table")
    unknown = set(item) - _KEYS
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)} in role {item.get('name', '?')!r}"
        )
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: every role needs a name")

    def strings(key: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = item.get(key, list(default))
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise ConfigError(f"{where}: role {name!r}: {key} must be a list of strings")
        return tuple(value)

    match = item.get("match", {})
    if not isinstance(match, dict) or not match:
        raise ConfigError(
            f'{where}: role {name!r}: match must be a table such as {{ groups = ["ops"] }}'
        )
    parsed_match: dict[str, tuple[str, ...]] = {}
    for claim, patterns in match.items():
        if isinstance(patterns, str):
            patterns = [patterns]
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            raise ConfigError(f"{where}: role {name!r}: match.{claim} must be a list of globs")
        parsed_match[claim] = tuple(patterns)
    default_action = item.get("default_action")
    if default_action is not None and default_action not in _ACTIONS:
        raise ConfigError(
            f"{where}: role {name!r}: default_action must be one of {', '.join(_ACTIONS)}"
        )
    unknown_action = item.get("unknown_action")
    if unknown_action is not None and unknown_action not in _UNKNOWN_ACTIONS:
        raise ConfigError(
            f"{where}: role {name!r}: unknown_action must be one of {', '.join(_UNKNOWN_ACTIONS)}"
        )
    ttl = _ttl(item.get("cert_ttl", DEFAULT_TTL), where, name)
    for key in ("approve", "shell"):
        if key in item and not isinstance(item[key], bool):
            raise ConfigError(f"{where}: role {name!r}: {key} must be true or false")
    issuer = item.get("issuer")
    if issuer is not None and not isinstance(issuer, str):
        raise ConfigError(f"{where}: role {name!r}: issuer must be a string")
    return Role(
        name=name,
        match=parsed_match,
        targets=strings("targets"),
        logins=strings("logins"),
        issuer=issuer,
        policy=strings("policy"),
        default_action=default_action,
        unknown_action=unknown_action,
        cert_ttl=ttl,
        forward=strings("forward"),
        approve=bool(item.get("approve", False)),
        shell=bool(item.get("shell", True)),
        where=where,
        mask_patterns=strings("mask_patterns"),
        env=strings("env") if "env" in item else None,
    )


def _ttl(value: Any, where: str, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        seconds = value
    elif isinstance(value, str):
        try:
            seconds = parse_duration(value)
        except UsageError:
            raise ConfigError(
                f"{where}: role {name!r}: cert_ttl {value!r} is not a duration like 10m"
            ) from None
    else:
        raise ConfigError(f"{where}: role {name!r}: cert_ttl must be a duration like 10m")
    if not 0 < seconds <= MAX_TTL:
        raise ConfigError(
            f"{where}: role {name!r}: cert_ttl must be between 1s and {MAX_TTL // 3600}h"
        )
    return seconds
