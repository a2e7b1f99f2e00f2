"""evaluate(policies, request) -> Decision: each command meets the rules; the most
severe outcome over the line wins.

For every simple command of the line: the most severe rule that matches it
decides; if none does, a command the bastion did not understand gets
`unknown_action`, an understood one `default_action`. The line's action is
the most severe of its commands' (deny > review > alert > allow). An allow
rule that matches a command not understood lets it pass: that is how an
operator accepts a command the catalog cannot read (`bastion rules suggest`).

Fails closed: a line that does not parse is denied whatever the rules say,
and any internal error is a deny naming itself, logged in one line.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rules.context import Context
from rules.match import CompiledRule, RuleIndex, in_scope
from rules.model import Action, Command, Decision, Policy, Reason, Request
from rules.shell import analyse

log = logging.getLogger("rules")
NOT_UNDERSTOOD = "not-understood"


def evaluate(
    policies: Sequence[Policy],
    request: Request,
    *,
    default_action: Action = Action.ALLOW,
    unknown_action: Action = Action.REVIEW,
    context: Context | None = None,
) -> Decision:
    try:
        return _evaluate(tuple(policies), request, default_action, unknown_action, context)
    except RecursionError:
        log.warning("rule evaluation: nesting too deep for %d bytes; denied", len(request.command))
        return Decision(
            Action.DENY,
            "internal-error",
            "the line is nested too deeply to evaluate",
            understood=False,
            not_understood=(Reason("", "nested too deeply to evaluate"),),
        )
    except Exception as exc:  # fail closed
        log.error("rule evaluation failed (%s: %s); denied", type(exc).__name__, str(exc)[:200])
        return Decision(
            Action.DENY,
            "internal-error",
            f"rule evaluation failed ({type(exc).__name__})",
            understood=False,
        )


_STARTS: dict[str | None, Context] = {}


def _start(login: str | None) -> Context:
    """A fresh login shell's context, one per login name (at most 1,024 kept)."""
    found = _STARTS.get(login)
    if found is None:
        if len(_STARTS) >= 1024:
            _STARTS.clear()
        found = _STARTS[login] = Context.start(login=login)
    return found


_INDEXES: dict[tuple[int, ...], tuple[tuple[Policy, ...], RuleIndex]] = {}
MAX_INDEXES = 64


def _index(policies: tuple[Policy, ...]) -> RuleIndex:
    """One index per set of policies, found by identity (hashing a policy would hash every
    rule); policies are frozen and live as long as the configuration. 64 sets at most."""
    key = tuple(map(id, policies))
    found = _INDEXES.get(key)
    if found is None or any(a is not b for a, b in zip(found[0], policies, strict=True)):
        if len(_INDEXES) >= MAX_INDEXES:
            _INDEXES.clear()
        found = _INDEXES[key] = (policies, RuleIndex(policies))
    return found[1]


def _evaluate(
    policies: tuple[Policy, ...],
    request: Request,
    default_action: Action,
    unknown_action: Action,
    context: Context | None,
) -> Decision:
    if context is None:
        context = _start(request.login)
    analysis = analyse(request.command, context)
    commands = list(analysis.commands)
    if analysis.reasons and not analysis.unparseable:
        commands.append(Command("", (), understood=False, reasons=tuple(analysis.reasons)))
    index = _index(policies)
    line = request.command
    scoped: dict[int, bool] = {}

    def applies(compiled: CompiledRule) -> bool:
        known = scoped.get(compiled.order)
        if known is None:
            known = scoped[compiled.order] = in_scope(compiled.rule.scope, request) and (
                compiled.line_matches(line, " ".join(line.split()))
            )
        return known

    # (severity, preference, rule, kind): at equal severity a rule is shown before the
    # unknown action, and that before the default; among rules, the first in file order.
    best: tuple[int, float, CompiledRule | None, str] | None = None
    for command in commands:
        chosen: CompiledRule | None = None
        for compiled in index.candidates(command):
            if best is not None and compiled.severity < best[0]:
                break  # nothing here can beat what the line already has
            if (compiled.unconditional or applies(compiled)) and compiled.matches(command):
                chosen = compiled
                break
        if chosen is not None:
            rank = (chosen.severity, 2 - chosen.order / 1e9, chosen, "rule")
        elif not command.understood:
            rank = (unknown_action.severity, 1.0, None, "unknown")
        else:
            rank = (default_action.severity, 0.0, None, "default")
        if best is None or rank[:2] > best[:2]:
            best = rank
    understood = all(c.understood for c in commands)
    reasons = tuple(dict.fromkeys(r for c in commands for r in c.reasons))
    capabilities = frozenset().union(*(c.caps for c in commands)) if commands else frozenset()
    shown = tuple(analysis.commands)
    extra = dict(
        understood=understood and not analysis.unparseable,
        not_understood=reasons + (tuple(analysis.reasons) if analysis.unparseable else ()),
        capabilities=capabilities,
        context=analysis.context,
    )
    if analysis.unparseable:
        where = analysis.reasons[0] if analysis.reasons else None
        return Decision(
            Action.DENY,
            "unparseable",
            "the command line does not parse as shell"
            + (f" (near {where.word!r})" if where and where.word else ""),
            shown,
            **extra,  # type: ignore[arg-type]
        )
    if best is None:
        if analysis.context is not None and analysis.context != context:
            # assignments and definitions only: nothing runs now; a later line that uses
            # them is decided with the context they made
            return Decision(
                default_action, None, "defines names only; nothing runs", shown, **extra
            )  # type: ignore[arg-type]
        if line.strip() and not line.strip().startswith("#"):
            return Decision(
                Action.DENY, "unparseable", "no command could be read from the line", shown, **extra
            )  # type: ignore[arg-type]
        return Decision(default_action, None, "no rule matched", shown, **extra)  # type: ignore[arg-type]
    severity, _, compiled, kind = best
    if kind == "rule" and compiled is not None:
        rule = compiled.rule
        return Decision(
            rule.action,
            rule.name,
            rule.message,
            shown,
            rule.timeout,
            rule.approvers,
            rule.end_session,
            **extra,
        )  # type: ignore[arg-type]
    if kind == "unknown":
        first = "; ".join(str(r) for r in reasons[:3])
        return Decision(
            unknown_action,
            NOT_UNDERSTOOD,
            f"the bastion does not understand this command ({first})",
            shown,
            **extra,
        )  # type: ignore[arg-type]
    return Decision(default_action, None, "no rule matched", shown, **extra)  # type: ignore[arg-type]
