"""Alerts raised by real sessions: an alert rule, a streak of denials, a refused forward."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

from harness import TARGET_NAME, TEST_LOGIN, BastionProcess, make_agent, wait_until

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def alerts(bastion: BastionProcess, identity: str) -> list[dict]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bastion",
            "alerts",
            "--json",
            "--identity",
            identity,
            "--state-dir",
            str(bastion.state.root),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def fresh_agent(bastion: BastionProcess, tmp_path: Path):
    """Its own identity, so other tests' denials cannot start or cool down its streak."""
    name = f"alert-agent-{uuid.uuid4().hex[:8]}"
    return name, make_agent(tmp_path / name, bastion.state, bastion.port, identity=name)


def test_an_alert_rule_lets_the_command_run_and_raises_an_alert(
    bastion: BastionProcess, tmp_path: Path
) -> None:
    name, agent = fresh_agent(bastion, tmp_path)
    result = agent.run("-J", "bastion", DEST, "uptime")
    assert result.returncode == 0 and b"load average" in result.stdout, result.stderr
    found = wait_until(lambda: alerts(bastion, name), 10)
    assert [(a["kind"], a["rule"], a["command"]) for a in found] == [
        ("rule", "alert-uptime", "uptime")
    ]
    assert f"ALERT rule: rule alert-uptime matched (identity {name}" in bastion.log()


def test_five_denials_in_a_row_raise_a_streak_alert(
    bastion: BastionProcess, tmp_path: Path
) -> None:
    name, agent = fresh_agent(bastion, tmp_path)
    for _ in range(4):
        assert agent.run("-J", "bastion", DEST, "cat /etc/shadow").returncode == 126
    assert alerts(bastion, name) == []  # four is not yet a streak
    assert agent.run("-J", "bastion", DEST, "cat /etc/shadow").returncode == 126
    found = wait_until(lambda: alerts(bastion, name), 10)
    assert [a["kind"] for a in found] == ["denied-streak"]
    assert found[0]["detail"] == "5 denials in a row"


def test_a_forward_to_an_unregistered_destination_raises_an_alert(
    bastion: BastionProcess, tmp_path: Path
) -> None:
    name, agent = fresh_agent(bastion, tmp_path)
    result = agent.run("-W", "10.99.99.99:5432", "bastion", input=b"")
    assert result.returncode == 255
    found = wait_until(lambda: alerts(bastion, name), 10)
    assert [a["kind"] for a in found] == ["forward-refused"]
    assert found[0]["target"] == "10.99.99.99" and "5432" in found[0]["detail"]


def test_a_secret_in_binary_output_is_masked_in_place_and_raises_no_masking_off_alert(
    bastion: BastionProcess, tmp_path: Path
) -> None:
    # binary = "mask" (the default): the stream is scanned and the secret overwritten with a
    # marker of the same length; nothing passes unmasked, so there is no masking-off alert.
    # (With binary = "pass" the bytes go through and the relay raises masking-off.)
    name, agent = fresh_agent(bastion, tmp_path)
    result = agent.run("-J", "bastion", DEST, r"printf '\001\002 AKIAIOSFODNN7EXAMPLE\n'")
    assert result.returncode == 0 and b"AKIAIOSFODNN7EXAMPLE" not in result.stdout
    assert len(result.stdout) == len(b"\x01\x02 AKIAIOSFODNN7EXAMPLE\n")
    time.sleep(1.0)
    assert [a for a in alerts(bastion, name) if a["kind"] == "masking-off"] == []


def test_a_rule_can_end_a_shell_session(bastion: BastionProcess, tmp_path: Path) -> None:
    from ptydriver import PtyProcess

    name, agent = fresh_agent(bastion, tmp_path)
    shell = PtyProcess(agent.ssh("-tt", "-J", "bastion", DEST))
    try:
        shell.expect(b"$ ")
        shell.send(b"echo still-here\r")
        shell.expect(b"still-here")
        shell.send(b"tac /etc/hostname\r")
        shell.expect(b"session ended by rule end-on-tac: tac ends the session in tests")
        assert shell.wait(timeout=20) == 126  # the whole session is over, not just the line
    finally:
        shell.kill()
    found = wait_until(lambda: alerts(bastion, name), 10)
    assert [a["kind"] for a in found] == ["session-ended"]
    assert found[0]["rule"] == "end-on-tac" and found[0]["command"] == "tac /etc/hostname"


def test_a_rule_ending_the_session_stops_an_exec(bastion: BastionProcess, tmp_path: Path) -> None:
    name, agent = fresh_agent(bastion, tmp_path)
    result = agent.run("-J", "bastion", DEST, "tac /etc/hostname")
    assert result.returncode == 126 and result.stdout == b""
    assert b"session ended by rule end-on-tac" in result.stderr
