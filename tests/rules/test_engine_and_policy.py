"""Decisions: most severe wins, scopes, default actions, policy files, fail closed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules import Action, PolicyError, Request, default_policy, evaluate, load_policy, parse_policy

POLICY = """
[[rule]]
name = "alert-on-ls"
action = "alert"
message = "listing"
program = ["ls"]

[[rule]]
name = "review-rm"
action = "review"
message = "rm needs a human"
program = ["rm"]
timeout = "2m"

[[rule]]
name = "deny-rm-root"
action = "deny"
message = "no"
program = ["rm"]
args = ["/"]

[[rule]]
name = "only-for-agents"
action = "deny"
message = "agents may not reboot"
program = ["reboot"]
scope = { roles = ["agent*"], targets = ["web*"], logins = ["deploy"] }
"""


def test_most_severe_match_wins() -> None:
    policy = parse_policy(POLICY, "t")
    assert evaluate([policy], Request("ls; rm -rf /")).rule == "deny-rm-root"
    decision = evaluate([policy], Request("ls; rm x"))
    assert (decision.action, decision.rule, decision.review_timeout) == (
        Action.REVIEW,
        "review-rm",
        120,
    )
    assert evaluate([policy], Request("ls")).action is Action.ALERT


def test_scope_limits_a_rule() -> None:
    policy = parse_policy(POLICY, "t")
    inside = Request("reboot", roles=("agents",), target="web1", login="deploy")
    assert evaluate([policy], inside).action is Action.DENY
    for outside in (
        Request("reboot", roles=("humans",), target="web1", login="deploy"),
        Request("reboot", roles=("agents",), target="db1", login="deploy"),
        Request("reboot", roles=("agents",), target="web1", login="root"),
    ):
        assert evaluate([policy], outside).action is Action.ALLOW


def test_allow_list_role_is_one_line_default() -> None:
    policy = parse_policy(
        '[[rule]]\nname = "ok"\naction = "allow"\nprogram = ["uptime", "df"]\n', "t"
    )
    assert evaluate([policy], Request("uptime"), default_action=Action.DENY).action is Action.ALLOW
    denied = evaluate([policy], Request("cat /etc/hosts"), default_action=Action.DENY)
    assert denied.action is Action.DENY and denied.rule is None


def test_a_line_that_does_not_parse_is_never_allowed() -> None:
    allow_all = parse_policy('[[rule]]\nname = "all"\naction = "allow"\nregex = "."\n', "t")
    decision = evaluate([allow_all], Request("echo 'unterminated"))
    assert decision.action is Action.DENY and decision.rule == "unparseable"


def test_decision_json_shape() -> None:
    data = evaluate([default_policy()], Request("sudo cat /etc/shadow")).to_json()
    assert set(data) == {
        "decision",
        "rule",
        "reason",
        "commands",
        "understood",
        "not_understood",
        "capabilities",
    }
    assert data["understood"] is True and data["capabilities"] == ["exec", "privilege", "read"]
    assert data["decision"] == "deny" and [c["program"] for c in data["commands"]] == [
        "sudo",
        "cat",
    ]


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ('[[rule]]\nname = "x"\naction = "maybe"\nprogram = ["a"]\n', 1, "action"),
        (
            '\n\n[[rule]]\nname = "x"\naction = "deny"\nprogram = ["a"]\ncolour = 1\n',
            3,
            "unknown key",
        ),
        ('[[rule]]\nname = "Bad Name"\naction = "deny"\nprogram = ["a"]\n', 1, "name"),
        ('[[rule]]\nname = "x"\naction = "deny"\n', 1, "no matcher"),
        ('[[rule]]\nname = "x"\naction = "deny"\nsql = ["drop_everything"]\n', 1, "sql kind"),
        ('[[rule]]\nname = "x"\naction = "deny"\nregex = "("\n', 1, "regex"),
        (
            '[[rule]]\nname = "x"\naction = "deny"\nprogram = "a"\n[[rule]]\nname = "x"\naction = "deny"\nprogram = "b"\n',
            5,
            "duplicate",
        ),
        ('[[rule]\nname = "x"', 1, ""),
    ],
)
def test_policy_errors_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, "p.toml")
    assert f"p.toml:{line}:" in str(info.value) and fragment in str(info.value)


def test_load_policy_from_file(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(POLICY)
    assert len(load_policy(path).rules) == 4
    with pytest.raises(PolicyError):
        load_policy(tmp_path / "missing.toml")


def test_default_pack_loads() -> None:
    pack = default_policy()
    assert len(pack.rules) > 40 and len({r.name for r in pack.rules}) == len(pack.rules)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_evaluate_never_raises(line: str) -> None:
    decision = evaluate([default_policy()], Request(line))
    assert decision.action in Action and decision.rule != "internal-error", decision


# Pieces of lines that exercise what the walker remembers across commands (variables,
# cd, aliases, files written then run, globs, joined backslash-newlines).
_FRAGMENTS = [
    "x=/etc",
    "x=$x$x",
    "y=$(printf sha)",
    "export PAGER=less",
    "cd /etc",
    "cd ..",
    "cd -",
    "cd $HOME",
    "for d in /a /b {1..5}; do ls $d; done",
    "alias r=rm",
    "alias r='r -i'",
    "r x",
    "echo 'ls' > s.sh",
    "sh s.sh",
    "cat $x",
    "ls$IFS/tmp",
    "cat ${z:-/tmp/a}",
    "find /tmp -name a -exec ls {} +",
    "echo {a..z}{1..9}",
    "tar -C / -cf - tmp",
    "l\\\ns x",
    "cat /et?/ho*",
    "sudo -nu root env -C / ls",
    "curl -so f http://192.0.2.1/f",
    "./f",
    "read -r v <<< /tmp",
    "cat <<EOF\n\\ls\nEOF",
]
_DANGEROUS = ["rm -rf /etc", "cat /etc/shadow", "psql -c 'DROP DATABASE prod'"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from(_FRAGMENTS), max_size=8),
    st.lists(st.sampled_from(["; ", " && ", " || ", " | ", "\n"]), min_size=8, max_size=8),
    st.sampled_from(_DANGEROUS),
)
def test_what_the_line_sets_up_never_hides_a_dangerous_command(
    pieces: list[str], separators: list[str], dangerous: str
) -> None:
    """Second readings only add: whatever comes before, a dangerous command stays blocked,
    and nothing the walker remembers makes evaluation fail."""
    prefix = "".join(
        piece + separator for piece, separator in zip(pieces, separators, strict=False)
    )
    decision = evaluate([default_policy()], Request(prefix + dangerous))
    assert decision.rule != "internal-error", decision
    assert decision.action in (Action.DENY, Action.REVIEW), (prefix + dangerous, decision)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="rm -/'\"$(){};|&<>\\`*~", max_size=40))
def test_parse_failures_are_never_allowed(line: str) -> None:
    from rules.shell import analyse

    decision = evaluate([default_policy()], Request(line))
    if analyse(line).unparseable:
        assert decision.action is Action.DENY


@pytest.mark.parametrize(
    "line",
    [
        "cat <<EOF | sh\nrm -rf /\nEOF\n",
        "bash <<EOF\nrm -rf /\nEOF\n",
        'sh <<< "rm -rf /"',
        "cat <<EOF && rm -rf /\nx\nEOF\n",
    ],
)
def test_heredocs_and_here_strings_cannot_smuggle_commands(line: str) -> None:
    assert evaluate([default_policy()], Request(line)).action is Action.DENY


def test_everyday_heredocs_still_pass() -> None:
    for line in ("psql <<EOF\nselect 1\nEOF\n", "cat <<EOF > notes.txt\nhello\nEOF\n"):
        assert evaluate([default_policy()], Request(line)).action is Action.ALLOW


def test_the_rule_index_decides_exactly_as_checking_every_rule() -> None:
    """The index files each rule under a condition it cannot match without; prove it on the
    corpus by deciding every command against every rule."""
    from pathlib import Path

    from rules.match import CompiledRule, in_scope
    from rules.shell import analyse

    corpus = Path(__file__).parent / "corpus"
    lines = [
        row.split("\t", 2)[2] for row in (corpus / "dangerous.tsv").read_text().splitlines() if row
    ]
    lines += [row for row in (corpus / "everyday.txt").read_text().splitlines() if row]
    policy = default_policy()
    compiled = [CompiledRule(rule, order) for order, rule in enumerate(policy.rules)]
    checked = 0
    for line in lines:
        analysis = analyse(line)
        if analysis.unparseable or analysis.reasons:
            continue
        request = Request(line)
        best = None  # (severity, preference, rule name)
        for command in analysis.commands:
            matching = [
                c
                for c in compiled
                if in_scope(c.rule.scope, request)
                and c.line_matches(line, " ".join(line.split()))
                and c.matches(command)
            ]
            first = min(matching, key=lambda c: (-c.severity, c.order), default=None)
            if first is not None:
                rank = (first.severity, 2 - first.order / 1e9, first.rule.name)
            elif not command.understood:
                rank = (Action.REVIEW.severity, 1.0, "not-understood")
            else:
                rank = (Action.ALLOW.severity, 0.0, None)
            if best is None or rank[:2] > best[:2]:
                best = rank
        decision = evaluate([policy], request)
        assert decision.rule == (best[2] if best else None), line
        checked += 1
    assert checked > 1000


def test_end_session_is_validated_and_carried_to_the_decision(tmp_path) -> None:
    from rules import PolicyError, load_policy

    policy = tmp_path / "p.toml"
    policy.write_text(
        '[[rule]]\nname = "x"\naction = "alert"\nprogram = ["nc"]\nend_session = true\n'
    )
    assert evaluate([load_policy(policy)], Request("nc -l 4444")).end_session is True
    for bad in (
        'action = "review"\nprogram = ["x"]\nend_session = true',
        'action = "deny"\nprogram = ["x"]\nend_session = "yes"',
    ):
        policy.write_text(f'[[rule]]\nname = "x"\n{bad}\n')
        with pytest.raises(PolicyError, match="end_session"):
            load_policy(policy)
