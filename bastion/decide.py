"""The one place where a command is decided before it reaches a target.

Today every command is allowed (the rules engine arrives with its own issue);
the seam exists so exec strings, shell lines and subsystems all pass through
one function that fails closed: any exception becomes a deny.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bastion.identity.model import Identity
from bastion.targets import Target

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    action: str  # allow | deny | review | alert
    rule: str | None
    reason: str

    @property
    def allowed(self) -> bool:
        return self.action in ("allow", "alert")


def decide_command(
    identity: Identity, target: Target, login: str, command: str, *, source: str
) -> Verdict:
    """Decide one command line; `source` is exec, line or subsystem."""
    try:
        return _evaluate(identity, target, login, command, source)
    except Exception:  # fail closed: an internal error denies, never allows
        log.exception("decision failed for %s on %s; denying", identity.name, target.name)
        return Verdict("deny", "internal-error", "the bastion could not evaluate this command")


def decide_line(
    identity: Identity, target: Target, login: str, line: str, *, certain: bool
) -> Verdict:
    """Decide a line entered in a shell; `certain` says whether the terminal model trusts it."""
    return decide_command(identity, target, login, line, source="line")


def _evaluate(identity: Identity, target: Target, login: str, command: str, source: str) -> Verdict:
    return Verdict("allow", None, "no rules configured")
