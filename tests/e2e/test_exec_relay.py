"""Exec channels through `ssh -J` and `LOGIN%TARGET`: output, exit codes, stdin, binary."""

from __future__ import annotations

import hashlib
import os

from harness import TARGET_NAME, TEST_LOGIN, Agent

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def test_exec_output_and_exit_status(agent: Agent) -> None:
    result = agent.run("-J", "bastion", DEST, "echo hello from $(whoami); exit 3")
    assert result.stdout == f"hello from {TEST_LOGIN}\n".encode()
    assert result.returncode == 3, result.stderr


def test_exec_zero_exit(agent: Agent) -> None:
    result = agent.run("-J", "bastion", DEST, "true")
    assert result.returncode == 0, result.stderr


def test_stderr_is_kept_apart_from_stdout(agent: Agent) -> None:
    result = agent.run("-J", "bastion", DEST, "echo to-out; echo to-err >&2")
    assert result.stdout == b"to-out\n"
    assert b"to-err" in result.stderr
    assert b"to-err" not in result.stdout


def test_stdin_reaches_target_and_eof_ends_it(agent: Agent) -> None:
    result = agent.run("-J", "bastion", DEST, "wc -c", input=b"x" * 12345)
    assert result.stdout.strip() == b"12345"
    assert result.returncode == 0


def test_exit_signal_is_relayed(agent: Agent) -> None:
    result = agent.run("-J", "bastion", DEST, "kill -TERM $$")
    # OpenSSH reports a remote signal as exit status 255 with a message.
    assert result.returncode == 255
    assert b"signal" in result.stderr.lower() or result.stderr == b""


def test_binary_integrity_50_mb(agent: Agent, tmp_path) -> None:
    payload = os.urandom(50 * 1024 * 1024)
    result = agent.run("-J", "bastion", DEST, "cat", input=payload, timeout=180)
    assert result.returncode == 0, result.stderr[-500:]
    assert len(result.stdout) == len(payload)
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(payload).digest()


def test_direct_addressing_login_percent_target(agent: Agent) -> None:
    result = agent.run(f"{TEST_LOGIN}%{TARGET_NAME}@bastion", "whoami; exit 7")
    assert result.stdout == f"{TEST_LOGIN}\n".encode()
    assert result.returncode == 7
