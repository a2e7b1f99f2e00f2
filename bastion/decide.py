"""The one place where a command is decided before it reaches a target.

Exec strings, lines typed in shells and SFTP requests all come here. The
decision is the rules engine's (rules/), over the policies named in
bastion.toml's [rules] table. Anything that goes wrong denies: an exception
while deciding is a deny with a logged reason, never an allow.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from bastion.errors import ConfigError
from bastion.identity.model import Identity
from bastion.targets import Target
from rules import Action, Policy, PolicyError, Request, default_policy, evaluate, load_policy

log = logging.getLogger(__name__)

DEFAULT_REVIEW_TIMEOUT = 300.0
# Bash expands these in interactive shells before running the line: !!, !-2, !rm, !$, ^a^b.
_HISTORY_EXPANSION = re.compile(r"(^|[^\\'])!([!$^*#:?]|-?\d|[A-Za-z_])|^\s*\^")


@dataclass(frozen=True)
class Verdict:
    action: str  # allow | alert | review | deny
    rule: str | None
    reason: str
    timeout: float | None = None
    approvers: int = 1

    @property
    def allowed(self) -> bool:
        return self.action in ("allow", "alert")


class Decider:
    def __init__(self, policies: list[Policy], default_action: Action = Action.ALLOW) -> None:
        self.policies = policies
        self.default_action = default_action

    @classmethod
    def from_names(cls, names: tuple[str, ...], default_action: str, base: Path) -> Decider:
        """`default` is the built-in pack; other names are files beside bastion.toml."""
        policies = []
        for name in names:
            try:
                policies.append(default_policy() if name == "default" else load_policy(base / name))
            except PolicyError as exc:
                raise ConfigError(str(exc)) from None
        try:
            action = Action(default_action)
        except ValueError:
            raise ConfigError(
                f"rules.default_action must be allow, alert, review or deny, not {default_action!r}"
            ) from None
        return cls(policies, action)

    def command(
        self, identity: Identity, target: Target, login: str, command: str, *, source: str
    ) -> Verdict:
        """Decide one command line; `source` is exec, line or sftp."""
        try:
            decision = evaluate(
                self.policies,
                Request(command, identity.name, identity.groups, (), target.name, login),
                default_action=self.default_action,
            )
            timeout = decision.review_timeout or DEFAULT_REVIEW_TIMEOUT
            return Verdict(
                decision.action.value, decision.rule, decision.reason, timeout, decision.approvers
            )
        except Exception:  # fail closed: an internal error denies, never allows
            log.exception("decision failed for %s on %s; denying", identity.name, target.name)
            return Verdict("deny", "internal-error", "the bastion could not evaluate this command")

    def line(
        self,
        identity: Identity,
        target: Target,
        login: str,
        line: str,
        *,
        certain: bool,
        reason: str | None,
    ) -> Verdict:
        """A line read off the terminal model; one it could not read is opaque, never allowed."""
        if _HISTORY_EXPANSION.search(line):
            return Verdict(
                "deny",
                "history-expansion",
                "interactive history expansion (!, ^) would run text the bastion cannot see; "
                "spell the command out",
            )
        verdict = self.command(identity, target, login, line, source="line")
        if certain or not verdict.allowed:
            return verdict
        return Verdict(
            "deny",
            "unreadable-line",
            f"the bastion could not read this line reliably ({reason or 'unknown'}); use exec or retype it",
        )
