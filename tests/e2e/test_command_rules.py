"""Rules enforced on exec, interactive shells and SFTP, with the real OpenSSH client.

Denials are proven with commands that would be harmless if they ran as the
unprivileged test login (it cannot read /etc/shadow anyway).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from harness import (
    TARGET_NAME,
    TEST_LOGIN,
    Agent,
    BastionProcess,
    audit_rows,
    state_store,
    wait_until,
)
from ptydriver import PtyProcess

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def test_denied_exec_returns_126_with_rule_name(agent: Agent, bastion: BastionProcess) -> None:
    result = agent.run("-J", "bastion", DEST, "cat /etc/shadow")
    assert result.returncode == 126
    assert result.stdout == b""
    assert (
        b"bastion: denied by rule credential-read: reading credentials or private keys"
        in result.stderr
    )
    assert wait_until(
        lambda: [
            r
            for r in audit_rows(bastion.state)
            if r.kind == "exec"
            and r.command == "cat /etc/shadow"
            and r.decision == "deny"
            and r.rule == "credential-read"
        ]
    )


def test_wrapped_and_quoted_denials(agent: Agent) -> None:
    for command in (
        "sh -c 'cat /etc/shadow'",
        "c'a't /etc//shadow",
        "ls; cat /etc/shadow",
        "psql -c 'DROP DATABASE prod'",
    ):
        result = agent.run("-J", "bastion", DEST, command)
        assert result.returncode == 126, command
        assert b"bastion: denied by rule" in result.stderr, command


def test_everyday_exec_passes(agent: Agent) -> None:
    result = agent.run("-J", "bastion", DEST, "cat /etc/passwd | grep -c root")
    assert result.returncode == 0 and int(result.stdout) >= 1


def test_denied_shell_line_is_cleared_and_shell_stays_usable(
    agent: Agent, bastion: BastionProcess
) -> None:
    shell = PtyProcess(agent.ssh("-tt", "-J", "bastion", DEST))
    try:
        shell.expect(b"$ ")
        shell.send(b"cat /etc/shadow\r")
        shell.expect(b"bastion: denied by rule credential-read")
        shell.expect(b"$ ", timeout=10)  # the prompt drawn again; the target received nothing
        shell.send(b"echo still-$((40+2))\r")
        shell.expect(b"still-42")
        shell.send(b"exit\r")
        assert shell.wait() == 0
    finally:
        shell.kill()
    assert b"Permission denied" not in shell.buffer  # cat never ran on the target
    rows = wait_until(
        lambda: [
            r
            for r in audit_rows(bastion.state)
            if r.kind == "line" and r.command == "cat /etc/shadow" and r.decision == "deny"
        ]
    )
    assert rows and rows[-1].rule == "credential-read"


def test_sftp_get_of_a_credential_file_is_refused(
    agent: Agent, bastion: BastionProcess, tmp_path: Path
) -> None:
    result = subprocess.run(
        ["sftp", "-F", str(agent.config), "-b", "-", "-J", "bastion", DEST],
        input=f"get /etc/shadow {tmp_path / 'shadow'}\n".encode(),
        capture_output=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert not (tmp_path / "shadow").exists()
    # Opening the path is refused by the credential rule (a stat of it reveals no content).
    assert wait_until(
        lambda: [
            r
            for r in audit_rows(bastion.state)
            if r.kind == "sftp"
            and r.command.endswith("-- /etc/shadow")
            and r.decision == "deny"
            and r.rule == "credential-read"
        ]
    )


def test_review_holds_then_times_out_and_denies(agent: Agent, bastion: BastionProcess) -> None:
    started = time.monotonic()
    result = agent.run("-J", "bastion", DEST, "hostname")
    elapsed = time.monotonic() - started
    assert result.returncode == 126
    assert result.stdout == b""
    assert (
        b"held for review as request" in result.stderr and b"(rule hold-hostname)" in result.stderr
    )
    assert b"expired without review" in result.stderr
    assert elapsed >= 2
    request_id = int(result.stderr.split(b"as request ")[1].split()[0])
    with state_store(bastion.state) as store:
        assert store.request_state(request_id).state == "expired"


def test_tab_is_not_forwarded_and_the_line_is_what_was_typed(
    agent: Agent, bastion: BastionProcess
) -> None:
    """The bastion edits the line: Tab rings its bell, the target never completes anything."""
    shell = PtyProcess(agent.ssh("-tt", "-J", "bastion", DEST))
    try:
        shell.expect(b"$ ")
        shell.send(b"ech\thi\r")
        shell.expect(b"(rule not-understood)")  # `echhi` as typed: not a program it knows
        assert b"\x07" in shell.buffer
        shell.send(b"\x03")  # given up: the request is cancelled
        shell.expect(b"cancelled")
        shell.send(b"echo typed-$((1+1))\r")
        shell.expect(b"typed-2\r\n")
        shell.send(b"exit 0\r")
        assert shell.wait() == 0
    finally:
        shell.kill()
    assert wait_until(
        lambda: [r for r in audit_rows(bastion.state) if r.kind == "line" and r.command == "echhi"]
    )


def test_shell_without_a_terminal_is_refused(agent: Agent) -> None:
    result = agent.run("-T", "-J", "bastion", DEST, input=b"cat /etc/shadow\necho ran\n")
    assert result.returncode == 126
    assert b"ran" not in result.stdout
    assert b"denied by rule shell-without-terminal" in result.stderr


def test_exec_of_a_program_reading_commands_from_stdin_is_held(
    agent: Agent, bastion: BastionProcess
) -> None:
    """`ssh host bash` would run whatever arrives on stdin: opaque, so held for review."""
    client = subprocess.Popen(
        agent.ssh("-J", "bastion", DEST, "bash"),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )

    def pending() -> int | None:
        with state_store(bastion.state) as store:
            rows = [r.id for r in store.list_requests() if r.command == "bash"]
        return rows[-1] if rows else None

    request_id = wait_until(pending, 20)
    assert request_id
    denied = subprocess.run(
        [
            sys.executable,
            "-m",
            "bastion",
            "deny",
            str(request_id),
            "--state-dir",
            str(bastion.state.root),
        ],
        capture_output=True,
        timeout=60,
    )
    assert denied.returncode == 0
    out, err = client.communicate(b"cat /etc/shadow\necho ran\n", timeout=30)
    assert client.returncode == 126 and b"ran" not in out
    assert b"(rule code-from-input)" in err
