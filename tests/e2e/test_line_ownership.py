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
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import TARGET_NAME, TEST_LOGIN, Agent, BastionProcess, audit_rows, wait_until
from tmuxterm import TmuxTerminal

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def home() -> Path:
    return Path(pwd.getpwnam(TEST_LOGIN).pw_dir)


def marker(n: str) -> Path:
    return home() / f"marker-{n}"


def payload(n: str) -> str:
    return f"cat /etc/shadow > ~/marker-{n}"


@pytest.fixture
def term(agent: Agent) -> Iterator[TmuxTerminal]:
    for old in home().glob("marker-*"):
        old.unlink()
    tmux = TmuxTerminal(agent.ssh("-tt", "-J", "bastion", DEST), cols=100, rows=40)
    try:
        wait(tmux, f"{TEST_LOGIN}@")
        wait(tmux, "$ ")
        yield tmux
    finally:
        tmux.close()


def wait(term: TmuxTerminal, text: str, **how: float) -> str:
    """Until `text` was shown (rows the terminal wrapped joined, trailing spaces kept)."""
    return term.wait_for(text, joined=True, **how)  # type: ignore[arg-type]


def alive(term: TmuxTerminal, n: int) -> None:
    """The shell still answers: the output (not the typed line) of an arithmetic echo."""
    term.type(f"echo alive-$((1000+{n}))")
    wait(term, f"alive-{1000 + n}\n")


def wait_any(term: TmuxTerminal, texts: tuple[str, ...], timeout: float = 30.0) -> str:
    """Until one of `texts` was shown; the history."""
    deadline = time.monotonic() + timeout
    while True:
        shown = term.history(joined=True)
        if any(text in shown for text in texts) or time.monotonic() > deadline:
            return shown
        time.sleep(0.05)


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


def ran(bastion: BastionProcess, n: str) -> list[str]:
    """Evidence that payload N ran: its marker file, or an allowed audit row for it."""
    evidence = [f"marker-{n} exists"] if marker(n).exists() else []
    return evidence + [f"allowed: {r.command}" for r in lines_run(bastion, f"marker-{n}")]


# --- bash's own editing: gone ------------------------------------------------------------


def test_ctrl_o_operate_and_get_next_runs_nothing(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.send(payload("1"))
    term.press("C-o")  # readline would run the line without Enter
    term.press("C-j")  # another spelling of accept-line: the bastion's Enter, decided
    wait(term, "denied by rule credential-read")
    assert not ran(bastion, "1")
    alive(term, 1)


def test_a_bind_macro_is_refused_and_its_key_runs_nothing(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.type("""bind '"\\C-t": accept-line'""")
    wait(term, "denied by rule shell-line-editing")
    term.send(payload("2"))
    term.press("C-t")
    term.press("C-u")
    alive(term, 2)
    assert not ran(bastion, "2")


def test_bind_x_is_refused(term: TmuxTerminal, bastion: BastionProcess) -> None:
    term.type(f"""bind -x '"\\C-t": {payload("3")}'""")
    wait(term, "denied by rule shell-line-editing")
    term.press("C-t")
    alive(term, 3)
    assert not ran(bastion, "3")


def test_vi_mode_and_its_v_editor_run_nothing(term: TmuxTerminal, bastion: BastionProcess) -> None:
    term.type("set -o vi")
    wait(term, "denied by rule shell-line-editing")
    term.send(payload("4"))
    term.press("Escape", "v")
    term.press("C-u")
    alive(term, 4)
    assert not ran(bastion, "4")


def test_fc_and_fc_substitution_are_refused(term: TmuxTerminal, bastion: BastionProcess) -> None:
    term.type("cat /etc/passwd > /dev/null")
    term.type("fc -s passwd=shadow /dev/null=~/marker-5")
    wait(term, "denied by rule shell-history")
    term.type("fc")
    wait(term, "denied by rule shell-history", count=2)
    alive(term, 5)
    assert not ran(bastion, "5")
    assert decided(bastion, "fc", "deny")


def test_histchars_cannot_be_changed_and_history_never_expands(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.type("cat /etc/passwd > /dev/null")
    wait(term, f"{TEST_LOGIN}@", count=2)  # at a prompt: else it is cat's input
    term.type("histchars='@%#'")
    wait(term, "denied by rule shell-prompt")
    term.type("%passwd%shadow")  # a job name, never expanded: and not understood
    wait(term, "held for review as request")
    term.press("C-c")
    wait(term, "cancelled")
    term.type("^/dev/null^~/marker-6")
    wait(term, "denied by rule history-expansion")
    alive(term, 6)
    assert not ran(bastion, "6")


# --- lines that set up later lines: decided with them ------------------------------------


def test_a_variable_set_on_one_line_and_used_on_the_next(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.type("p=/etc/shadow")
    term.type("cat $p > ~/marker-7a")
    wait(term, "denied by rule credential-read")
    alive(term, 7)
    assert not ran(bastion, "7a")


def test_an_alias_and_a_function_defined_then_used(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.type(f"alias c='{payload('7b')}'")
    wait(term, "denied by rule credential-read")
    term.type(f"f() {{ {payload('7c')}; }}")  # defines only: judged where it is called
    term.type("f")
    wait(term, "denied by rule credential-read", count=2)
    term.type("c")  # never defined: the alias line was refused
    wait(term, "held for review as request")
    term.press("C-c")
    wait(term, "cancelled")
    alive(term, 71)
    assert not ran(bastion, "7b")
    assert not marker("7c").exists()  # the definition was allowed (it runs nothing), the call not
    assert decided(bastion, "f", "deny")


def test_cd_then_a_relative_path(term: TmuxTerminal, bastion: BastionProcess) -> None:
    term.type("cd /etc")
    term.type("cat shadow > ~/marker-8")
    wait(term, "denied by rule credential-read")
    alive(term, 8)
    assert not ran(bastion, "8")


def test_read_then_use_what_was_typed(term: TmuxTerminal, bastion: BastionProcess) -> None:
    term.type("read x")
    term.type("/etc/shadow")
    term.type('cat "$x" > ~/marker-9')
    wait(term, "denied by rule credential-read")
    alive(term, 9)
    assert not ran(bastion, "9")
    rows = decided(bastion, "/etc/shadow", "allow")
    assert rows and "typed into read" in (rows[-1].detail or "")


def test_a_script_typed_into_cat_is_judged_whole_when_it_runs(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.type("cat > ~/job-9b.sh")
    term.type(payload("9b"))
    term.type("echo harmless")  # the last line typed must not stand for the whole file
    term.press("C-d")
    term.type("sh ~/job-9b.sh")
    wait(term, "denied by rule credential-read")
    alive(term, 92)
    assert not marker("9b").exists()  # (its text was allowed as data typed into cat)
    assert decided(bastion, "sh ~/job-9b.sh", "deny")
    term.type("cat > ~/job-9c.sh")
    term.type("echo typed-$((40+2))")
    term.press("C-d")
    term.type("sh ~/job-9c.sh")  # an everyday script typed the same way runs
    wait(term, "typed-42\n")
    (home() / "job-9b.sh").unlink(missing_ok=True)
    (home() / "job-9c.sh").unlink(missing_ok=True)


# --- programs that read the terminal ----------------------------------------------------


def test_python_repl_input_is_not_understood_and_held(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.type("python3 -i /dev/null")
    shown = wait_any(term, (">>> ", "held for review as request"))
    if ">>> " in shown:  # the REPL started: what is typed into it is not understood, held
        term.type("open('/home/bastiontest/marker-10', 'w').write('PWNED')")
        wait(term, "held for review as request")
        term.press("C-c")  # the agent gives up: the request is cancelled, nothing was sent
        wait(term, "cancelled")
        term.press("C-d")  # end of input: python exits, the shell prompts again
        rows = decided(bastion, "open('/home/bastiontest/marker-10', 'w').write('PWNED')")
        assert rows and rows[-1].rule == "not-understood"
    else:  # held at launch (the session's earlier lines made it unclear): cancelled
        term.press("C-c")
        wait(term, "cancelled")
    assert not ran(bastion, "10")
    alive(term, 10)


def test_sqlite_lines_are_decided_as_sql_and_a_refused_one_leaves_nothing_behind(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.type("sqlite3 -cmd '.mode list'")
    wait(term, "sqlite> ")
    term.type(f".shell {payload('11')}")
    wait(term, "denied by rule sql-shell-escape")
    term.type("select 40+2;")  # the refused line must not run along with this one
    wait(term, "\n42\n")
    term.type(f".system {payload('11b')}")
    wait(term, "denied by rule sql-shell-escape", count=2)
    term.type("select")
    term.type("6*7;")  # a statement over two lines: decided, and sent, when whole
    wait(term, "\n42\n", count=2)
    term.type(".quit")
    alive(term, 11)
    assert not ran(bastion, "11")
    assert not ran(bastion, "11b")
    assert decided(bastion, "select\n6*7;", "allow")


def test_script_starts_a_shell_the_bastion_cannot_follow(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.type("script -q /dev/null")  # a shell the bastion could not follow: held at launch
    wait(term, "held for review as request")
    term.press("C-c")
    wait(term, "cancelled")
    alive(term, 12)
    assert decided(bastion, "script -q /dev/null") and not lines_run(bastion, "script -q")


# --- ordinary use ---------------------------------------------------------------------


def test_editing_moving_and_history(term: TmuxTerminal, bastion: BastionProcess) -> None:
    term.send("echo helo-$((2+3))")
    term.press(*["Left"] * 10)
    term.send("l")
    term.press("End", "BSpace", "BSpace", "BSpace")
    term.send("4))")
    term.press("Enter")
    wait(term, "hello-6\n")
    term.press("Up", "Enter")
    wait(term, "hello-6\n", count=2)
    term.press("C-r")
    term.send("hello")
    term.press("Enter")
    wait(term, "hello-6\n", count=3)
    term.send("echo one two")
    term.press("C-w")
    term.send("three")
    term.press("C-a", "C-k", "C-y", "Enter")
    wait(term, "one three\n")
    assert decided(bastion, "echo hello-$((2+4))", "allow")


def test_a_long_line_wraps_and_runs_whole(term: TmuxTerminal, bastion: BastionProcess) -> None:
    term.resize(40, 30)
    words = " ".join(f"w{i:02d}" for i in range(40))
    term.send(f"echo {words}")
    wait(term, f"echo {words}")  # the rows the terminal wrapped, joined
    assert all(len(row) <= 40 for row in term.screen().splitlines())
    term.press("C-a", "C-e", "Enter")
    wait(term, words.split()[-1] + "\n", count=2)
    assert decided(bastion, f"echo {words}", "allow")


def test_a_multi_line_paste_is_decided_line_by_line(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.paste(f"echo one-$((0+1))\n{payload('15')}\necho two-$((1+1))\n")
    wait(term, "two-2\n")
    wait(term, "denied by rule credential-read")
    for line in ("echo one-$((0+1))", payload("15"), "echo two-$((1+1))"):
        assert decided(bastion, line), line
    assert not ran(bastion, "15")
    alive(term, 15)


def test_exit_statuses_of_shell_lines_are_recorded(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    # each at a prompt: a line typed while the last still runs is that program's input
    term.type("(exit 3)")
    wait(term, f"{TEST_LOGIN}@", count=2)
    term.type("false")
    wait(term, f"{TEST_LOGIN}@", count=3)
    term.type("echo status-$((1+1))")
    wait(term, "status-2\n")
    term.type("echo done-$((2+2))")
    wait(term, "done-4\n")

    def status(text: str) -> int | None:
        rows = decided(bastion, text, "allow")
        return rows[-1].exit_status if rows and rows[-1].ended else None

    assert wait_until(lambda: status("(exit 3)") == 3)
    assert wait_until(lambda: status("false") == 1)
    assert wait_until(lambda: status("echo status-$((1+1))") == 0)


# --- secrets, full screen, and a target without bash -------------------------------------


def test_a_secret_line_is_not_echoed_recorded_or_audited(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.type("read -rs pw")
    term.send("hunter2-secret")
    term.press("Enter")
    term.type("echo length-${#pw}")
    wait(term, "length-14\n")
    assert "hunter2" not in term.history(joined=True)
    rows = decided(bastion, "(secret input, not recorded)", "allow")
    assert rows and all("hunter2" not in (r.command or "") for r in audit_rows(bastion.state))
    session = rows[-1].session_id
    recording = next(Path(bastion.state.root).rglob(f"{session}.cast"))
    assert "hunter2" not in recording.read_text(errors="replace")


def test_a_full_screen_program_known_safe_gets_the_keys(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.type("less /etc/passwd")
    wait(term, "root:x:0:0")
    term.send("q")  # raw to less, which quits
    wait(term, f"{TEST_LOGIN}@", count=2)
    alive(term, 16)
    assert decided(bastion, "less /etc/passwd", "allow")


def test_a_full_screen_program_not_known_safe_gets_no_keys(
    term: TmuxTerminal, bastion: BastionProcess
) -> None:
    term.type("env -u LESSSECURE less /etc/passwd")
    wait(term, "took the whole screen")  # the bastion's notice, after what less drew
    wait(term, "root:x:0:0")  # less has the screen: its output is not held behind the notice
    term.send(f"!{payload('17')}\r")  # less's shell escape, were the keys passed
    term.send("q")
    time.sleep(2)  # what less would have run by now
    assert not ran(bastion, "17")
    term.press("C-z")  # signals do pass: less stops and the shell prompts again
    wait(term, "Stopped")
    alive(term, 17)


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
