"""The agent's environment reaches the target only through the allow-list.

The fixture target's sshd accepts every variable (`AcceptEnv *`), as a
careless target would, so what arrives is exactly what the bastion let
through. Each payload is harmless if it ran: it would only print a word.
"""

from __future__ import annotations

import subprocess
import time

import pytest
from harness import Agent, audit_rows, wait_until

from bastion.relay.admission import DEFAULT_ENV, filter_env

DEST = "bastiontest@web1"


@pytest.fixture(scope="module")
def env_probe(agent: Agent) -> None:
    """A file that prints PWNED when a shell sources it (BASH_ENV, ENV)."""
    result = agent.run(
        "-J", "bastion", DEST, "printf 'printf PWNED\\n' > /home/bastiontest/.bastion-env-probe"
    )
    assert result.returncode == 0, result.stderr


def run_with_env(agent: Agent, setenv: str, command: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        agent.ssh("-o", f"SetEnv={setenv}", "-J", "bastion", DEST, command),
        capture_output=True,
        timeout=60,
    )


def test_allow_listed_variables_are_relayed(agent: Agent) -> None:
    result = run_with_env(agent, "LC_BASTION_TEST=relayed-value", "echo $LC_BASTION_TEST")
    assert result.stdout == b"relayed-value\n", result.stderr


def test_other_variables_are_refused_and_audited(agent: Agent, bastion) -> None:
    started = time.time()
    result = run_with_env(agent, "BASTION_TEST_VAR=leaked", "echo [$BASTION_TEST_VAR]")
    assert result.stdout == b"[]\n", result.stderr
    row = wait_until(
        lambda: next(
            (
                r
                for r in audit_rows(bastion.state)
                if r.kind == "env-refused"
                and r.time >= started
                and "BASTION_TEST_VAR" in (r.detail or "")
            ),
            None,
        )
    )
    assert row is not None


@pytest.mark.parametrize(
    "setenv, command",
    [
        ('BASH_FUNC_echo%%="() { /usr/bin/printf PWNED; }"', "echo clean"),
        ("LD_PRELOAD=/nonexistent/bastion-test.so", "echo clean"),
        ("SHLVL=3 BASH_ENV=/home/bastiontest/.bastion-env-probe", "echo clean"),
        ("ENV=/home/bastiontest/.bastion-env-probe", "sh -ic 'echo clean'"),
        ('PS4="$(printf PWNED >&2)"', "bash -xc 'echo clean'"),
    ],
)
def test_code_carrying_variables_never_reach_the_target(
    agent: Agent, env_probe: None, setenv: str, command: str
) -> None:
    result = run_with_env(agent, setenv, command)
    assert b"PWNED" not in result.stdout and b"PWNED" not in result.stderr
    assert b"preloaded" not in result.stderr  # ld.so would complain about the missing object
    assert result.stdout.endswith(b"clean\n"), result.stderr
    assert result.returncode == 0, result.stderr


def test_code_carrying_names_are_refused_even_when_a_role_allows_them() -> None:
    kept, refused = filter_env(
        [("LD_PRELOAD", "x"), ("BASH_FUNC_f%%", "() { id; }"), ("LC_ALL", "C"), ("FOO", "1")],
        ["*"],
    )
    assert kept == (("LC_ALL", "C"), ("FOO", "1"))
    assert set(refused) == {"LD_PRELOAD", "'BASH_FUNC_f%%'"}
    assert filter_env([("FOO", "1")], DEFAULT_ENV) == ((), ("FOO",))
