"""The decision point: rules applied, unreadable lines and history expansion refused, errors deny."""

from __future__ import annotations

import pytest

from bastion import decide
from bastion.decide import Decider
from bastion.identity.model import Identity
from bastion.targets import Target
from rules import Action, default_policy

WHO = Identity("agent-1", ("deploy",), ("ci",), 1, 0.0)
WEB = Target("web1", "127.0.0.1", 22, host_key="x")


def decider() -> Decider:
    return Decider([default_policy()], Action.ALLOW)


def test_commands_follow_the_rules() -> None:
    d = decider()
    assert d.command(WHO, WEB, "deploy", "uptime", source="exec").allowed
    verdict = d.command(WHO, WEB, "deploy", "cat /etc/shadow", source="exec")
    assert (verdict.action, verdict.rule) == ("deny", "credential-read")


def test_uncertain_lines_are_not_allowed() -> None:
    verdict = decider().line(WHO, WEB, "deploy", "ls", certain=False, reason="tab completion")
    assert (
        verdict.action == "deny"
        and verdict.rule == "unreadable-line"
        and "tab completion" in verdict.reason
    )
    assert decider().line(WHO, WEB, "deploy", "ls", certain=True, reason=None).allowed


@pytest.mark.parametrize("line", ["sudo !!", "!rm", "echo !$", "^ls^rm -rf /"])
def test_history_expansion_is_refused_in_shells(line: str) -> None:
    verdict = decider().line(WHO, WEB, "deploy", line, certain=True, reason=None)
    assert verdict.action == "deny" and verdict.rule == "history-expansion"


def test_alias_bodies_are_judged_when_defined() -> None:
    verdict = decider().command(WHO, WEB, "deploy", "alias ll='cat /etc/shadow'", source="line")
    assert verdict.rule == "credential-read"


def test_an_internal_error_denies(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(decide, "evaluate", explode)
    verdict = decider().command(WHO, WEB, "deploy", "uptime", source="exec")
    assert verdict.action == "deny" and verdict.rule == "internal-error"
