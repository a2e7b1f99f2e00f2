"""The bastion owns the shell line: what bash's own editing used to run unseen now never runs.

Each test drives the real OpenSSH client in a real terminal (tmux) through
the bastion to the real sshd target, as the unprivileged test login. The
payload of every technique is `cat /etc/shadow > ~/marker-N`: harmless
there (permission denied), but bash creates the marker file as soon as it
runs the line at all, so a marker that does not exist proves the line
never ran. The audit table must show no allowed row for it, and the shell
must answer a following `echo` (it stays usable).
"""

from __future__ import annotations

import pwd
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import TARGET_NAME, TEST_LOGIN, Agent, BastionProcess, audit_rows, wait_until
from tmuxdriver import Tmux

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def home() -> Path:
    return Path(pwd.getpwnam(TEST_LOGIN).pw_dir)


def marker(n: str) -> Path:
    return home() / f"marker-{n}"


def payload(n: str) -> str:
    return f"cat /etc/shadow > ~/marker-{n}"


@pytest.fixture
def term(agent: Agent, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Tmux]:
    for old in home().glob("marker-*"):
        old.unlink()
    tmux = Tmux(agent.ssh("-tt", "-J", "bastion", DEST), tmp_path / "tmux", width=100, height=40)
    try:
        tmux.wait_for(f"{TEST_LOGIN}@")
        tmux.wait_for("$ ")
        yield tmux
    finally:
        tmux.close()


def alive(term: Tmux, n: int) -> None:
    """The shell still answers: the output (not the typed line) of an arithmetic echo."""
    term.line(f"echo alive-$((1000+{n}))")
    term.wait_for(f"alive-{1000 + n}\n")


def lines_run(bastion: BastionProcess, text: str) -> list:
    return [
        r
        for r in audit_rows(bastion.state)
        if r.kind == "line" and r.command and text in r.command and r.decision in ("allow", "alert")
    ]


def decided(bastion: BastionProcess, text: str, decision: str | None = None) -> list:
    return wait_until(
        lambda: [
            r
            for r in audit_rows(bastion.state)
            if r.kind == "line"
            and r.command == text
            and (decision is None or r.decision == decision)
        ]
    )


def never_ran(bastion: BastionProcess, n: str) -> None:
    assert not marker(n).exists(), f"marker-{n}: the payload ran"
    assert not lines_run(bastion, f"marker-{n}")


# --- bash's own editing: gone ------------------------------------------------------------


def test_ctrl_o_operate_and_get_next_runs_nothing(term: Tmux, bastion: BastionProcess) -> None:
    term.type(payload("1"))
    term.keys("C-o")  # readline would run the line without Enter
    term.keys("C-j")  # another spelling of accept-line: the bastion's Enter, decided
    term.wait_for("denied by rule credential-read")
    never_ran(bastion, "1")
    alive(term, 1)


def test_a_bind_macro_is_refused_and_its_key_runs_nothing(
    term: Tmux, bastion: BastionProcess
) -> None:
    term.line("""bind '"\\C-t": accept-line'""")
    term.wait_for("denied by rule shell-line-editing")
    term.type(payload("2"))
    term.keys("C-t")
    term.keys("C-u")
    alive(term, 2)
    never_ran(bastion, "2")


def test_bind_x_is_refused(term: Tmux, bastion: BastionProcess) -> None:
    term.line(f"""bind -x '"\\C-t": {payload("3")}'""")
    term.wait_for("denied by rule shell-line-editing")
    term.keys("C-t")
    alive(term, 3)
    never_ran(bastion, "3")


def test_vi_mode_and_its_v_editor_run_nothing(term: Tmux, bastion: BastionProcess) -> None:
    term.line("set -o vi")
    term.wait_for("denied by rule shell-line-editing")
    term.type(payload("4"))
    term.keys("Escape", "v")
    term.keys("C-u")
    alive(term, 4)
    never_ran(bastion, "4")


def test_fc_and_fc_substitution_are_refused(term: Tmux, bastion: BastionProcess) -> None:
    term.line("cat /etc/passwd > /dev/null")
    term.line("fc -s passwd=shadow /dev/null=~/marker-5")
    term.wait_for("denied by rule shell-history")
    term.line("fc")
    term.wait_for("denied by rule shell-history", count=2)
    alive(term, 5)
    never_ran(bastion, "5")
    assert decided(bastion, "fc", "deny")


def test_histchars_cannot_be_changed_and_history_never_expands(
    term: Tmux, bastion: BastionProcess
) -> None:
    term.line("cat /etc/passwd > /dev/null")
    term.line("histchars='@%#'")
    term.wait_for("denied by rule shell-prompt")
    term.line("%passwd%shadow")
    term.wait_for("%passwd%shadow: no such job")  # run as typed (a job name): no expansion
    term.line("^/dev/null^~/marker-6")
    term.wait_for("denied by rule history-expansion")
    alive(term, 6)
    never_ran(bastion, "6")


# --- lines that set up later lines: decided with them ------------------------------------


def test_a_variable_set_on_one_line_and_used_on_the_next(
    term: Tmux, bastion: BastionProcess
) -> None:
    term.line("p=/etc/shadow")
    term.line("cat $p > ~/marker-7a")
    term.wait_for("denied by rule credential-read")
    alive(term, 7)
    never_ran(bastion, "7a")


def test_an_alias_and_a_function_defined_then_used(term: Tmux, bastion: BastionProcess) -> None:
    term.line(f"alias c='{payload('7b')}'")
    term.wait_for("denied by rule credential-read")
    term.line(f"f() {{ {payload('7c')}; }}")
    term.wait_for("denied by rule credential-read", count=2)
    term.line("c; f")
    term.wait_for("c: command not found")
    alive(term, 71)
    never_ran(bastion, "7b")
    never_ran(bastion, "7c")


def test_cd_then_a_relative_path(term: Tmux, bastion: BastionProcess) -> None:
    term.line("cd /etc")
    term.line("cat shadow > ~/marker-8")
    term.wait_for("denied by rule credential-read")
    alive(term, 8)
    never_ran(bastion, "8")


def test_read_then_use_what_was_typed(term: Tmux, bastion: BastionProcess) -> None:
    term.line("read x")
    term.line("/etc/shadow")
    term.line('cat "$x" > ~/marker-9')
    term.wait_for("denied by rule credential-read")
    alive(term, 9)
    never_ran(bastion, "9")
    rows = decided(bastion, "/etc/shadow", "allow")
    assert rows and "typed into read" in (rows[-1].detail or "")


# --- programs that read the terminal ----------------------------------------------------


def test_python_repl_input_is_not_understood_and_held(term: Tmux, bastion: BastionProcess) -> None:
    term.line("python3 -i /dev/null")
    term.wait_for(">>> ")
    term.line("open('/home/bastiontest/marker-10', 'w').write('PWNED')")
    term.wait_for("held for review as request")
    term.keys("C-c")  # the agent gives up: the request is cancelled, nothing was sent
    term.wait_for("cancelled")
    never_ran(bastion, "10")
    term.keys("C-d")  # end of input: python exits, the shell prompts again
    alive(term, 10)
    rows = decided(bastion, "open('/home/bastiontest/marker-10', 'w').write('PWNED')")
    assert rows and rows[-1].rule == "not-understood"


def test_sqlite_lines_are_decided_as_sql_and_a_refused_one_leaves_nothing_behind(
    term: Tmux, bastion: BastionProcess
) -> None:
    term.line("sqlite3 -cmd '.mode list'")
    term.wait_for("sqlite> ")
    term.line(f".shell {payload('11')}")
    term.wait_for("denied by rule sql-shell-escape")
    term.line("select 40+2;")  # the refused line must not run along with this one
    term.wait_for("\n42\n")
    term.line(f".system {payload('11b')}")
    term.wait_for("denied by rule sql-shell-escape", count=2)
    term.line("select")
    term.line("6*7;")  # a statement over two lines: decided, and sent, when whole
    term.wait_for("\n42\n", count=2)
    term.line(".quit")
    alive(term, 11)
    never_ran(bastion, "11")
    never_ran(bastion, "11b")
    assert decided(bastion, "select\n6*7;", "allow")


def test_script_starts_a_shell_the_bastion_cannot_follow(
    term: Tmux, bastion: BastionProcess
) -> None:
    term.line("script -q /dev/null")
    term.wait_for(f"{TEST_LOGIN}@", count=2)  # the inner shell's own prompt
    term.line(payload("12"))
    term.wait_for("held for review as request")
    term.keys("C-c")
    term.wait_for("cancelled")
    term.keys("C-d")  # the inner shell ends, then script
    alive(term, 12)
    never_ran(bastion, "12")


# --- ordinary use ---------------------------------------------------------------------


def test_editing_moving_and_history(term: Tmux, bastion: BastionProcess) -> None:
    term.type("echo helo-$((2+3))")
    term.keys(*["Left"] * 10)
    term.type("l")
    term.keys("End", "BSpace", "BSpace", "BSpace")
    term.type("4))")
    term.keys("Enter")
    term.wait_for("hello-6\n")
    term.keys("Up", "Enter")
    term.wait_for("hello-6\n", count=2)
    term.keys("C-r")
    term.type("hello")
    term.keys("Enter")
    term.wait_for("hello-6\n", count=3)
    term.type("echo one two")
    term.keys("C-w")
    term.type("three")
    term.keys("C-a", "C-k", "C-y", "Enter")
    term.wait_for("one three\n")
    assert decided(bastion, "echo hello-$((2+4))", "allow")


def test_a_long_line_wraps_and_runs_whole(term: Tmux, bastion: BastionProcess) -> None:
    term.resize(40, 30)
    words = " ".join(f"w{i:02d}" for i in range(40))
    term.type(f"echo {words}")
    term.wait_for(f"echo {words}")  # the rows the terminal wrapped, joined
    assert all(len(row) <= 40 for row in term.screen().splitlines())
    term.keys("C-a", "C-e", "Enter")
    term.wait_for(words.split()[-1] + "\n", count=2)
    assert decided(bastion, f"echo {words}", "allow")


def test_a_multi_line_paste_is_decided_line_by_line(term: Tmux, bastion: BastionProcess) -> None:
    term.paste(f"echo one-$((0+1))\n{payload('15')}\necho two-$((1+1))\n")
    term.wait_for("two-2\n")
    term.wait_for("denied by rule credential-read")
    for line in ("echo one-$((0+1))", payload("15"), "echo two-$((1+1))"):
        assert decided(bastion, line), line
    never_ran(bastion, "15")
    alive(term, 15)


def test_exit_statuses_of_shell_lines_are_recorded(term: Tmux, bastion: BastionProcess) -> None:
    term.line("(exit 3)")
    term.line("false")
    term.line("echo status-$((1+1))")
    term.wait_for("status-2\n")
    term.line("echo done-$((2+2))")
    term.wait_for("done-4\n")

    def status(text: str) -> int | None:
        rows = decided(bastion, text, "allow")
        return rows[-1].exit_status if rows and rows[-1].ended else None

    assert wait_until(lambda: status("(exit 3)") == 3)
    assert wait_until(lambda: status("false") == 1)
    assert wait_until(lambda: status("echo status-$((1+1))") == 0)


# --- secrets, full screen, and a target without bash -------------------------------------


def test_a_secret_line_is_not_echoed_recorded_or_audited(
    term: Tmux, bastion: BastionProcess
) -> None:
    term.line("read -rs pw")
    term.type("hunter2-secret")
    term.keys("Enter")
    term.line("echo length-${#pw}")
    term.wait_for("length-14\n")
    assert "hunter2" not in term.history()
    rows = decided(bastion, "(secret input, not recorded)", "allow")
    assert rows and all("hunter2" not in (r.command or "") for r in audit_rows(bastion.state))
    session = rows[-1].session_id
    recording = next(Path(bastion.state.root).rglob(f"{session}.cast"))
    assert "hunter2" not in recording.read_text(errors="replace")


def test_a_full_screen_program_known_safe_gets_the_keys(
    term: Tmux, bastion: BastionProcess
) -> None:
    term.line("less /etc/passwd")
    term.wait_for("root:x:0:0")
    term.type("q")  # raw to less, which quits
    term.wait_for(f"{TEST_LOGIN}@", count=2)
    alive(term, 16)


def test_a_full_screen_program_not_known_safe_gets_no_keys(
    term: Tmux, bastion: BastionProcess
) -> None:
    term.line("env -u LESSSECURE less /etc/passwd")
    term.wait_for("keys are not passed")
    term.type(f"!{payload('17')}\r")  # less's shell escape, were the keys passed
    term.type("q")
    term.keys("C-z")  # this one passes: less stops, the shell prompts again
    term.wait_for("Stopped")
    term.line("kill -9 %1")
    alive(term, 17)
    never_ran(bastion, "17")


def test_a_target_without_bash_refuses_the_shell_with_a_reason(
    agent: Agent, bastion: BastionProcess, tmp_path: Path, test_login: str
) -> None:
    from harness import state_store
    from ptydriver import PtyProcess

    from bastion.localsshd import start_sshd
    from bastion.targets import Target

    sshd = start_sshd(
        tmp_path / "sshd",
        trusted_user_ca=(bastion.state.keys / "target_ca.pub").read_text(),
        allow_user=test_login,
        options=("SetEnv PATH=/nonexistent",),  # bash is nowhere on the PATH
    )
    try:
        with state_store(bastion.state) as store:
            store.add_target(Target("nobash1", "127.0.0.1", sshd.port, host_key=sshd.host_key_pub))
        shell = PtyProcess(agent.ssh("-tt", "-J", "bastion", f"{TEST_LOGIN}@nobash1"))
        try:
            shell.expect(b"target nobash1 has no bash")
            assert shell.wait() == 127
        finally:
            shell.kill()
    finally:
        sshd.stop()
