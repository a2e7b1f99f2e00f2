"""The one place where a command is decided before it reaches a target.

Exec strings, lines typed in shells and SFTP requests all come here. The
decision is the rules engine's (rules/), over the policies bastion.toml
names for the identity's roles (see Decider). Anything that goes wrong denies: an exception
while deciding is a deny with a logged reason, never an allow.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bastion.errors import ConfigError
from bastion.identity.model import Identity
from bastion.identity.roles import Role
from bastion.targets import Target
from rules import (
    Action,
    Context,
    Decision,
    Policy,
    PolicyError,
    Request,
    default_policy,
    evaluate,
    load_policy,
)

if TYPE_CHECKING:
    from bastion.config import Config

log = logging.getLogger(__name__)

DEFAULT_REVIEW_TIMEOUT = 300.0
MAX_EXPLANATION = 4000  # characters of a verdict's explanation kept (it names words of the line)
# Bash expands these in interactive shells before running the line: !!, !-2, !rm, !$, ^a^b.
_HISTORY_EXPANSION = re.compile(r"(^|[^\\'])!([!$^*#:?]|-?\d|[A-Za-z_])|^\s*\^")


@dataclass(frozen=True)
class Verdict:
    action: str  # allow | alert | review | deny
    rule: str | None
    reason: str
    timeout: float | None = None
    approvers: int = 1
    end_session: bool = False  # the rule ends the session: the command does not run
    commands: tuple[Any, ...] = ()  # the simple commands the engine read (program, argv)
    understood: bool = True
    explanation: str | None = None  # for a reviewer: what was not understood, or what it does
    context: Context | None = None  # the shell's state after this line (for the next one)

    @property
    def allowed(self) -> bool:
        return self.action in ("allow", "alert") and not self.end_session

    @property
    def severity(self) -> int:
        return Action(self.action).severity


class Decider:
    """Chooses the rule set and default action for who is asking, then asks the engine.

    Without any [[role]], everyone gets `[rules]`: its policies and default
    action. With roles, the roles that apply are those of the identity that
    grant this target and login. Their rules are `[rules].policy` (the
    baseline for everyone) plus each role's own `policy` list; the most
    severe match wins, as always. A command no rule matches gets the least
    severe `default_action` among those roles (a role without one inherits
    `[rules].default_action`): roles are a union of grants, so an allow-list
    role (`default_action = "deny"` and allow rules) restricts an identity
    only when it holds no broader role for that target. A command the
    bastion does not understand gets `unknown_action` the same way: the
    least severe among the roles (else `[rules].unknown_action`, review by
    default), so a role that trusts its holders (`alert`) lets theirs run.
    """

    def __init__(
        self,
        policies: list[Policy],
        default_action: Action = Action.ALLOW,
        *,
        named: dict[str, Policy] | None = None,
        unknown_action: Action = Action.REVIEW,
    ) -> None:
        self.policies = policies
        self.default_action = default_action
        self.unknown_action = unknown_action
        self._named = named or {}  # role policy name -> loaded policy
        self._by_roles: dict[tuple[str, ...], tuple[list[Policy], Action, Action]] = {}

    @classmethod
    def from_names(
        cls,
        names: tuple[str, ...],
        default_action: str,
        base: Path,
        roles: tuple[Role, ...] = (),
        *,
        unknown_action: str = "review",
    ) -> Decider:
        """`default` is the built-in pack; other names are files beside bastion.toml."""
        try:
            action = Action(default_action)
        except ValueError:
            raise ConfigError(
                f"rules.default_action must be allow, alert, review or deny, not {default_action!r}"
            ) from None
        if unknown_action not in ("review", "deny", "alert"):
            raise ConfigError(
                f"rules.unknown_action must be review, deny or alert, not {unknown_action!r}"
            )
        named: dict[str, Policy] = {}
        for name in names:
            named[name] = _load(name, base, "rules.policy")
        for role in roles:
            for name in role.policy:
                if name not in named:
                    named[name] = _load(name, base, f"{role.where}: role {role.name!r}")
        return cls(
            [named[name] for name in names],
            action,
            named=named,
            unknown_action=Action(unknown_action),
        )

    @classmethod
    def from_config(cls, config: Config, base: Path) -> Decider:
        """The Decider a loaded bastion.toml describes (server, workers and CLI alike)."""
        return cls.from_names(
            config.rules.policy,
            config.rules.default_action,
            base,
            config.roles,
            unknown_action=config.rules.unknown_action,
        )

    def command(
        self,
        identity: Identity,
        target: Target,
        login: str,
        command: str,
        *,
        source: str,
        context: Context | None = None,
    ) -> Verdict:
        """Decide one command line; `source` is exec, line or sftp. `context` is what earlier
        lines of the same shell set up (rules.Context); the verdict carries the one after."""
        try:
            decision = self.explain(identity, target, login, command, context=context)
            timeout = decision.review_timeout or DEFAULT_REVIEW_TIMEOUT
            rule, reason = decision.rule, decision.reason
            if rule is None and decision.action is not Action.ALLOW:
                rule = "default-action"
                reason = f"no rule allows this command, and the default action here is {decision.action.value}"
            explanation = decision.explanation()[:MAX_EXPLANATION]
            return Verdict(
                decision.action.value,
                rule,
                reason,
                timeout,
                decision.approvers,
                decision.end_session,
                tuple(decision.commands),
                decision.understood,
                explanation,
                decision.context,
            )
        except Exception as exc:  # fail closed: an internal error denies, never allows
            log.error(
                "decision failed for %s on %s (%s: %s); denying",
                identity.name,
                target.name,
                type(exc).__name__,
                str(exc)[:200],
            )
            return Verdict(
                "deny",
                "internal-error",
                "the bastion could not evaluate this command",
                understood=False,
            )

    def explain(
        self,
        identity: Identity,
        target: Target,
        login: str,
        command: str,
        *,
        context: Context | None = None,
    ) -> Decision:
        """The engine's decision, with the simple commands it saw (for `bastion rules test`)."""
        policies, default_action, unknown_action, roles = self._for(identity, target, login)
        return evaluate(
            policies,
            Request(command, identity.name, identity.groups, roles, target.name, login),
            default_action=default_action,
            unknown_action=unknown_action,
            context=context,
        )

    def _for(
        self, identity: Identity, target: Target, login: str
    ) -> tuple[list[Policy], Action, Action, tuple[str, ...]]:
        """(policies, default action, unknown action, role names) for this identity on this
        target and login."""
        if identity.grants is None:
            return self.policies, self.default_action, self.unknown_action, ()
        roles = identity.grants.roles_for(target.name, target.labels, login)
        if not roles:  # the connection checks should have refused it already
            return self.policies, Action.DENY, Action.DENY, ()
        names = tuple(role.name for role in roles)
        cached = self._by_roles.get(names)
        if cached is None:
            policies = list(self.policies)
            for role in roles:
                for name in role.policy:
                    if all(self._named[name] is not p for p in policies):
                        policies.append(self._named[name])
            default = min(
                (
                    Action(r.default_action) if r.default_action else self.default_action
                    for r in roles
                ),
                key=lambda action: action.severity,
            )
            unknown = min(
                (
                    Action(r.unknown_action) if r.unknown_action else self.unknown_action
                    for r in roles
                ),
                key=lambda action: action.severity,
            )
            cached = self._by_roles[names] = (policies, default, unknown)
        return cached[0], cached[1], cached[2], names

    def not_understood(self, identity: Identity, target: Target, login: str, why: str) -> Verdict:
        """The verdict for a command the bastion could not read (a decision past its time
        budget): the roles' unknown_action, as for any command not understood."""
        try:
            action = self._for(identity, target, login)[2]
        except Exception:  # fail closed
            action = Action.DENY
        return Verdict(
            action.value,
            "not-understood",
            f"the bastion did not understand this command ({why})",
            understood=False,
            explanation=f"not understood: {why}",
        )

    def carried(
        self,
        identity: Identity,
        target: Target,
        login: str,
        command: str,
        record: object,
        env: dict[str, str],
        pipelined: str | None = None,
        payload: str | None = None,
    ) -> Verdict:
        """Runs of files the bastion carried (bastion/relay/carried_runs.py), decided with
        this Decider's rules; `record` is the scope's copy of the CarriedFiles."""
        judge_exec = _carried_runs.judge_exec

        def decide(text: str) -> Verdict:
            return self.command(identity, target, login, text, source="exec")

        try:
            verdict = judge_exec(
                decide,
                record,  # type: ignore[arg-type]
                identity=identity.name,
                target=target.name,
                login=login,
                command=command,
                env=env,
                pipelined=pipelined,
                payload=payload,
            )
            if verdict.rule == "not-understood":  # the roles' unknown_action, as for exec
                action = self._for(identity, target, login)[2]
                verdict = dataclasses.replace(verdict, action=action.value, understood=False)
            return verdict
        except Exception:  # fail closed: an internal error denies, never allows
            log.exception("judging carried files failed for %s on %s", identity.name, target.name)
            return Verdict(
                "deny", "internal-error", "the bastion could not judge the files this runs"
            )

    def line(
        self,
        identity: Identity,
        target: Target,
        login: str,
        line: str,
        *,
        certain: bool = True,
        reason: str | None = None,
        context: Context | None = None,
    ) -> Verdict:
        """A line typed in a shell; one that could not be read exactly is never allowed."""
        if _HISTORY_EXPANSION.search(line):
            return Verdict(
                "deny",
                "history-expansion",
                "interactive history expansion (!, ^) would run text the bastion cannot see; "
                "spell the command out",
            )
        verdict = self.command(identity, target, login, line, source="line", context=context)
        if certain or not verdict.allowed:
            return verdict
        return Verdict(
            "deny",
            "unreadable-line",
            f"the bastion could not read this line reliably ({reason or 'unknown'}); use exec or retype it",
        )


def _load(name: str, base: Path, where: str) -> Policy:
    try:
        return default_policy() if name == "default" else load_policy(base / name)
    except PolicyError as exc:
        raise ConfigError(f"{where}: policy {name!r}: {exc}") from None


# Judging carried files (Decider.carried) uses this module's Verdict; imported here, after
# it, so a decision worker loads it with the rules and not inside a decision's time budget.
from bastion.relay import carried_runs as _carried_runs  # noqa: E402,F401
