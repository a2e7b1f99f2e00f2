"""The default pack against the corpus: dangerous variants blocked, everyday commands untouched.

The corpus is ours (tests/rules/corpus/): 149 dangerous base commands across
the ten categories of SPEC section 4, expanded by generate.py into evasions,
and everyday commands an operator or agent runs. Blocked means deny or review.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rules import Action, Request, default_policy, evaluate

CORPUS = Path(__file__).parent / "corpus"
CATEGORIES = {
    "destructive",
    "database",
    "credentials",
    "download",
    "egress",
    "uploads",
    "audit",
    "persistence",
    "opaque",
    "services",
}


def dangerous() -> list[tuple[str, str, str]]:
    rows = [
        line.split("\t", 2) for line in (CORPUS / "dangerous.tsv").read_text().splitlines() if line
    ]
    return [(c, how, cmd) for c, how, cmd in rows]


def everyday() -> list[str]:
    return [line for line in (CORPUS / "everyday.txt").read_text().splitlines() if line.strip()]


def test_corpus_is_big_enough_and_covers_every_category() -> None:
    rows = dangerous()
    assert len(rows) >= 300 and len(everyday()) >= 200
    assert {category for category, _, _ in rows} == CATEGORIES


def test_dangerous_share_blocked(capsys: pytest.CaptureFixture[str]) -> None:
    policy = [default_policy()]
    total, blocked, missed = Counter(), Counter(), []
    for category, how, command in dangerous():
        decision = evaluate(policy, Request(command))
        total[category] += 1
        if decision.action in (Action.DENY, Action.REVIEW):
            blocked[category] += 1
        else:
            missed.append((category, how, command))
    share = sum(blocked.values()) / sum(total.values())
    with capsys.disabled():
        print(f"\ndangerous blocked: {sum(blocked.values())}/{sum(total.values())} = {share:.1%}")
    assert share >= 0.99, missed[:20]
    for category in CATEGORIES:
        assert blocked[category] / total[category] >= 0.95, (
            category,
            [m for m in missed if m[0] == category],
        )


def test_everyday_commands_pass_untouched(capsys: pytest.CaptureFixture[str]) -> None:
    policy = [default_policy()]
    wrong = []
    for command in everyday():
        decision = evaluate(policy, Request(command))
        if decision.action is not Action.ALLOW:
            wrong.append((command, decision.rule))
    with capsys.disabled():
        print(f"\neveryday wrongly blocked: {len(wrong)}/{len(everyday())}")
    assert wrong == []
