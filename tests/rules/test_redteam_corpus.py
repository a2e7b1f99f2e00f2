"""Bypasses a red-team pass found in the default pack (tests/rules/corpus/redteam.jsonl).

Every entry got `allow` before the fixes they led to (joined backslash-newlines,
variables and IFS, globs, `cd`, heredoc bodies, wrappers, interpreters, pack
lists); each must now be held or denied. `redteam2.jsonl` is a second pass on the
rewritten engine, with evasions of other kinds (tilde-user and /proc paths,
symbolic links made on the line, scripts run as credential readers, word building
with arrays, case changes, indirection and IFS, arithmetic subscripts, CDPATH,
hash -p, pager and make input, DNS names built from substitutions). Held as not
understood counts as blocked for these; credential reads and destruction that are
understood get a deny rule. `redteam3_bypasses.jsonl` is a third pass by a
helper that had not read the code (HOME reassigned, IFS for `read`, `$(ls ...)`,
`git diff --no-index`, cloud metadata in any spelling, PATH shadowing, subscripts
bash evaluates, pager and config variables, cluster and cloud tools, start-up
files); `redteam3_false_blocks.jsonl` the everyday lines it found blocked.
`redteam_open.jsonl` lists what is still allowed: known gaps and policy choices
(plain downloads from a named host), each with its cause, counted in the README.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from rules import Action, Request, default_policy, evaluate

CORPUS = Path(__file__).parent / "corpus"


POLICY = [default_policy()]


def entries(name: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in (CORPUS / name).read_text().splitlines() if line]


def allowed(command: str) -> bool:
    decision = evaluate(POLICY, Request(command))
    return decision.action not in (Action.DENY, Action.REVIEW)


def test_every_fixed_bypass_is_blocked(capsys: pytest.CaptureFixture[str]) -> None:
    rows = entries("redteam.jsonl")
    assert len(rows) > 150
    missed = [row for row in rows if allowed(row["command"])]
    with capsys.disabled():
        causes = Counter(row["cause"] for row in rows)
        print(
            f"\nred-team bypasses now blocked: {len(rows) - len(missed)}/{len(rows)} {dict(causes)}"
        )
    assert missed == []


def test_every_second_pass_evasion_is_blocked(capsys: pytest.CaptureFixture[str]) -> None:
    rows = entries("redteam2.jsonl")
    assert len(rows) > 400
    missed = [row for row in rows if allowed(row["command"])]
    with capsys.disabled():
        print(f"\nsecond red-team pass blocked: {len(rows) - len(missed)}/{len(rows)}")
    assert missed == []


def test_known_gaps_are_listed_and_not_also_claimed_fixed() -> None:
    fixed = {row["command"] for row in entries("redteam.jsonl") + entries("redteam2.jsonl")}
    gaps = entries("redteam_open.jsonl")
    assert gaps and not fixed & {row["command"] for row in gaps}


def test_every_third_pass_bypass_is_blocked_or_listed_open(capsys: pytest.CaptureFixture[str]) -> None:
    rows = entries("redteam3_bypasses.jsonl")
    open_ = {row["command"] for row in entries("redteam_open.jsonl")}
    assert len(rows) == 174
    missed = [row for row in rows if row["command"] not in open_ and allowed(row["command"])]
    with capsys.disabled():
        listed = sum(row["command"] in open_ for row in rows)
        print(f"\nthird red-team pass blocked: {len(rows) - listed - len(missed)}/{len(rows)}"
              f" ({listed} listed open)")
    assert missed == []
    assert listed <= 27  # a fix may shorten the open list, never lengthen it


# Everyday lines of the third pass held for a reason that stands (SPEC 4: review).
HELD_ON_PURPOSE = {
    "vim /etc/nginx/nginx.conf": "editor-shell-escape",  # vim's :! runs what the bastion never sees
    "strace -p 1234 -f -e trace=network": "process-memory",  # reads another process's memory
    "pg_dump -Fc app > /tmp/app.dump": "database-dump",  # the whole database, one cat away
    "scp build.tgz web1:/tmp/": "file-upload",  # a local file sent to another host
    # each line of a file becomes a DNS name: the file's text leaves by DNS
    'while read h; do ping -c1 "$h"; done < hosts.txt': "not-understood",
}


def assert_fixed_or_held(rows: list[dict[str, str]], held: dict[str, str]) -> None:
    """Each everyday line is allowed, or held for review by the rule `held` names."""
    for row in rows:
        decision = evaluate(POLICY, Request(row["command"]))
        expected = held.get(row["command"])
        if expected is None:
            assert decision.action is Action.ALLOW, (row["command"], decision.reason)
        else:
            assert (decision.action, decision.rule) == (Action.REVIEW, expected), row["command"]


def test_third_pass_false_blocks_are_fixed_or_held_on_purpose() -> None:
    rows = entries("redteam3_false_blocks.jsonl")
    assert len(rows) == 7
    assert_fixed_or_held(rows, HELD_ON_PURPOSE)


def test_every_fourth_pass_bypass_is_blocked_or_listed_open(
    capsys: pytest.CaptureFixture[str],
) -> None:
    rows = entries("redteam4_bypasses.jsonl")
    open_ = {row["command"] for row in entries("redteam_open.jsonl")}
    assert len(rows) == 245
    missed = [row for row in rows if row["command"] not in open_ and allowed(row["command"])]
    listed = sum(row["command"] in open_ for row in rows)
    with capsys.disabled():
        print(f"\nfourth red-team pass blocked: {len(rows) - listed - len(missed)}/{len(rows)}"
              f" ({listed} listed open)")
    assert missed == []
    assert listed <= 20  # a fix may shorten the open list, never lengthen it


def test_open_list_holds_only_what_is_still_allowed() -> None:
    blocked = [row["command"] for row in entries("redteam_open.jsonl") if not allowed(row["command"])]
    assert blocked == []  # a gap that is closed leaves the list


# Everyday lines of the fourth pass held for a reason that stands (SPEC 4: review).
HELD_ON_PURPOSE_4 = {
    "scp build.tar.gz deploy@10.0.0.12:/tmp/": "file-upload",  # a local file to another host
    "aws s3 cp dist/app-1.2.4.tgz s3://prod-artifacts/": "file-upload",
    # each line of urls.txt becomes a host: the file's text leaves by DNS and HTTP
    "xargs -n1 -I{} curl -s -o /dev/null -w '{} %{http_code}\\n' {} < urls.txt": "not-understood",
    "vim /srv/app/config.yaml": "editor-shell-escape",  # vim's :! runs what the bastion never sees
    # a shell on another host or container reads keystrokes the bastion decides there
    "kubectl exec -it api-7d9f -n prod -- sh": "code-from-input",
    "docker exec -it web bash": "code-from-input",
    "ssh web-2": "code-from-input",
    "python3 -c 'import sys; print(sys.version)'": "not-understood",  # Python is not analysed
    "crontab -e": "scheduling",  # commands to run later, written in an editor
    "echo '10.0.0.12 db.internal' | sudo tee -a /etc/hosts": "startup-files-write",  # name resolution
    "systemctl stop app-worker": "service-stop",
    "iptables -A INPUT -p tcp --dport 8080 -s 10.0.0.0/8 -j ACCEPT": "firewall-change",
    # rotation is everyday, but older entries go: a human looks (`--vacuum-time=1s` is denied)
    "journalctl --vacuum-time=30d": "journal-vacuum",
}


def test_fourth_pass_false_blocks_are_fixed_or_held_on_purpose() -> None:
    rows = entries("redteam4_false_blocks.jsonl")
    assert len(rows) == 15
    assert_fixed_or_held(rows, HELD_ON_PURPOSE_4)
