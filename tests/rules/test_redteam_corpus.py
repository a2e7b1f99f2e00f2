"""Bypasses a red-team pass found in the default pack (tests/rules/corpus/redteam.jsonl).

Every entry got `allow` before the fixes they led to (joined backslash-newlines,
variables and IFS, globs, `cd`, heredoc bodies, wrappers, interpreters, pack
lists); each must now be held or denied. `redteam2.jsonl` is a second pass on the
rewritten engine, with evasions of other kinds (tilde-user and /proc paths,
symbolic links made on the line, scripts run as credential readers, word building
with arrays, case changes, indirection and IFS, arithmetic subscripts, CDPATH,
hash -p, pager and make input, DNS names built from substitutions). Held as not
understood counts as blocked for these; credential reads and destruction that are
understood get a deny rule. `redteam_open.jsonl` lists what is still allowed:
known gaps, read by no test, counted in the README.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rules import Action, Request, default_policy, evaluate

CORPUS = Path(__file__).parent / "corpus"


def entries(name: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in (CORPUS / name).read_text().splitlines() if line]


def test_every_fixed_bypass_is_blocked(capsys: pytest.CaptureFixture[str]) -> None:
    policy = [default_policy()]
    rows = entries("redteam.jsonl")
    assert len(rows) > 150
    missed = [
        row
        for row in rows
        if evaluate(policy, Request(row["command"])).action not in (Action.DENY, Action.REVIEW)
    ]
    with capsys.disabled():
        causes = Counter(row["cause"] for row in rows)
        print(
            f"\nred-team bypasses now blocked: {len(rows) - len(missed)}/{len(rows)} {dict(causes)}"
        )
    assert missed == []


def test_every_second_pass_evasion_is_blocked(capsys: pytest.CaptureFixture[str]) -> None:
    policy = [default_policy()]
    rows = entries("redteam2.jsonl")
    assert len(rows) > 400
    missed = [
        row
        for row in rows
        if evaluate(policy, Request(row["command"])).action not in (Action.DENY, Action.REVIEW)
    ]
    with capsys.disabled():
        print(f"\nsecond red-team pass blocked: {len(rows) - len(missed)}/{len(rows)}")
    assert missed == []


def test_known_gaps_are_listed_and_not_also_claimed_fixed() -> None:
    fixed = {row["command"] for row in entries("redteam.jsonl") + entries("redteam2.jsonl")}
    gaps = entries("redteam_open.jsonl")
    assert gaps and not fixed & {row["command"] for row in gaps}
