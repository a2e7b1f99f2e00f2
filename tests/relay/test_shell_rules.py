"""The shell's own rules, pure: who reads the terminal, what is refused, what context is kept.

The commands are read by the real rules engine (`rules.analyse`), as the
session gets them from the decision.
"""

from __future__ import annotations

import pytest

from bastion.relay.shell_context import MAX_FED_BYTES, SessionContext
from bastion.relay.shell_guard import refusal_of_line
from bastion.relay.shell_start import ShellStart
from bastion.relay.terminal_programs import (
    PROGRAMS,
    misread_reason,
    reader_for,
    statement_complete,
)
from rules import Request, analyse, default_policy, evaluate


def reader(line: str):
    return reader_for(line, analyse(line).commands)


@pytest.mark.parametrize(
    ("line", "program"),
    [
        ("sqlite3 -cmd '.mode list'", "sqlite3"),
        ("cd /tmp && sqlite3 x.db", "sqlite3"),
        ("sudo -u postgres psql", "psql"),
        ("read -r x", "read"),
        ("cat > notes.txt", "cat"),
        ("cat /etc/passwd", None),  # reads a file, not the terminal
        ("read x < file", None),
        ("sqlite3 db | tee out", None),  # two programs: nobody known
        ("python3 -i /dev/null", None),
        ("top", "top"),
    ],
)
def test_who_reads_the_terminal(line: str, program: str | None) -> None:
    found = reader(line)
    assert (found.program.name if found.program else None) == program


def test_wrappers_and_password_askers() -> None:
    assert reader("sudo -u postgres psql").wrapped
    assert reader("sudo -u postgres psql").passwords
    assert reader("read -s pw").secret and not reader("read pw").secret
    assert reader("less /etc/passwd").full_screen_ok
    assert not reader("env -u LESSSECURE less /etc/passwd").full_screen_ok
    assert not reader("man -P vim ls").full_screen_ok
    assert reader("man ls").full_screen_ok


def test_statements_are_whole_before_they_are_sent() -> None:
    sqlite, psql, mysql = PROGRAMS["sqlite3"], PROGRAMS["psql"], PROGRAMS["mysql"]
    assert not statement_complete(sqlite, ["select"])
    assert statement_complete(sqlite, ["select", "1;"])
    assert not statement_complete(sqlite, ["select ';"])  # inside a string
    assert statement_complete(sqlite, ["select 'it''s;'", ";"])
    assert statement_complete(sqlite, ["select 1; -- done;"])  # as sqlite3_complete() says
    assert not statement_complete(sqlite, ["select 1 /* ; */"])
    assert statement_complete(sqlite, ["select 1; /* c */"])
    assert not statement_complete(sqlite, ["select 1; select"])
    assert statement_complete(sqlite, [".shell id"])
    assert statement_complete(psql, ["\\! id"])
    assert statement_complete(mysql, ["system id"])
    assert statement_complete(PROGRAMS["read"], ["anything"])


def test_input_the_analysis_would_misread() -> None:
    assert misread_reason(PROGRAMS["psql"], "select 1 \\! id")
    assert misread_reason(PROGRAMS["mysql"], "delimiter //")
    assert misread_reason(PROGRAMS["psql"], "\\dt") is None


def test_typed_sql_is_judged_as_the_programs_input() -> None:
    sqlite = reader("sqlite3 -cmd '.mode list'")
    for text, action in ((".shell cat /etc/shadow", "deny"), ("select 40+2;", "allow")):
        decision = evaluate([default_policy()], Request(sqlite.stdin_command([text])))
        assert decision.action.value == action, text


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("bind '\"\\C-t\": accept-line'", "shell-line-editing"),
        ("command bind -x '\"\\C-t\": id'", "shell-line-editing"),
        ("set -o vi", "shell-line-editing"),
        ("fc -s passwd=shadow", "shell-history"),
        ("builtin set -H", "shell-history"),
        ("histchars='@%#'", "shell-prompt"),
        ("PS1=x ls", "shell-prompt"),
        ("export PROMPT_COMMAND=id", "shell-prompt"),
        ("trap 'id' DEBUG", "shell-prompt"),
        ("set -euxo pipefail", "shell-prompt"),
        ("declare -f", "shell-prompt"),
        ("type __bastion_prompt", "shell-prompt"),
        ("exec bash", "shell-replace"),
        ("exec >/dev/null", "shell-replace"),
        ("enable -f ./x.so x", "shell-replace"),
        ("stty kill x", "terminal-settings"),
        ("alias v='set -o vi'", "shell-line-editing"),  # the alias body is read when defined
    ],
)
def test_lines_that_would_undo_the_line_ownership(line: str, rule: str) -> None:
    refused = refusal_of_line(line, analyse(line).commands)
    assert refused is not None and refused.rule == rule, line


@pytest.mark.parametrize(
    "line", ["set -eu", "stty size", "type ls", "trap -p", "declare -p x", "shopt -s globstar"]
)
def test_everyday_shell_builtins_pass(line: str) -> None:
    assert refusal_of_line(line, analyse(line).commands) is None


def _decide(line: str, session: SessionContext, context: object = None) -> str:
    decision = evaluate(
        [default_policy()], Request(line, login="deploy"), context=context or session.current
    )
    return decision.action.value, decision.context  # type: ignore[return-value]


def _run(session: SessionContext, line: str) -> None:
    action, after = _decide(line, session)
    assert action == "allow", line
    session.ran(after)


def _type_into(session: SessionContext, reader_: object, text: str) -> str:
    script = session.input_script(reader_, text)  # type: ignore[arg-type]
    assert script is not None
    action, after = _decide(script[0], session, script[1])
    session.fed(reader_, text, after)  # type: ignore[arg-type]
    return action


def test_a_line_is_decided_with_what_earlier_lines_set_up() -> None:
    session = SessionContext("deploy")
    for line in ("ls -l", "x=/etc/shadow", "cd /etc", "echo hi"):
        _run(session, line)
    assert _decide("cat $x", session)[0] == "deny"
    assert _decide("cat shadow", session)[0] == "deny"
    assert _decide("cat /etc/hostname", session)[0] == "allow"


def test_what_is_typed_into_read_sets_the_variable() -> None:
    session = SessionContext("deploy")
    _run(session, "read y")
    assert _decide('cat "$y"', session)[0] == "review"  # typed later: not known yet
    assert _type_into(session, reader("read y"), "/root/.ssh/id_rsa") == "allow"
    assert _decide('cat "$y"', session)[0] == "deny"


def test_a_file_typed_into_cat_is_judged_whole_when_it_runs() -> None:
    session = SessionContext("deploy")
    _run(session, "cat > job.sh")
    cat = reader("cat > job.sh")
    for text in ("cat /etc/shadow", "true"):  # the second line must not hide the first
        assert _type_into(session, cat, text) == "allow"
    assert _decide("sh job.sh", session)[0] == "deny"
    _run(session, "echo done")  # the shell prompts again: typing into cat is over
    assert session.input_script(cat, "x") == (cat.stdin_command(["x"]), session.current)


def test_input_past_the_bound_is_not_followed() -> None:
    session = SessionContext("deploy")
    _run(session, "cat > notes.txt")
    cat = reader("cat > notes.txt")
    line = "x" * 1000
    for _ in range(MAX_FED_BYTES // 1001):
        _type_into(session, cat, line)
    assert session.input_script(cat, line) is None
    assert len(session.typed_into(cat)) == MAX_FED_BYTES // 1001
    session.fed(cat, line, None)  # a reviewer let it through: the file's text is not known
    assert session.typed_into(cat) is None and session.current.poisoned
    assert session.input_script(cat, "x") is None


def test_a_line_whose_effect_is_unknown_poisons_what_follows() -> None:
    session = SessionContext("deploy")
    session.ran(None)
    assert session.current.poisoned


def test_the_setup_line_carries_the_nonce_only_in_the_function() -> None:
    setup = ShellStart(nonce="abc123").setup.decode()
    function, settings = setup.split('return "$s"; }; ', 1)
    assert "abc123" in function and "abc123" not in settings
    assert "readonly -f __bastion_prompt" in settings and setup.endswith("\n")
