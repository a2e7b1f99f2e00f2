"""Nothing else leaves the bastion: agent, remote and local forwarding are refused."""

from __future__ import annotations

import os
import subprocess

from harness import TARGET_NAME, TEST_LOGIN, Agent, BastionProcess, audit_rows, wait_until

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def test_agent_forwarding_is_refused_with_a_message(agent: Agent, tmp_path) -> None:
    sock = tmp_path / "agent.sock"
    started = subprocess.run(
        ["ssh-agent", "-a", str(sock)], capture_output=True, text=True, check=True
    )
    pid = int(started.stdout.split("SSH_AGENT_PID=")[1].split(";")[0])
    try:
        config = agent.config.read_text().replace("  IdentityAgent none\n", "")
        cfg = tmp_path / "ssh_config"
        cfg.write_text(config)
        result = subprocess.run(
            [
                "ssh",
                "-F",
                str(cfg),
                "-A",
                "-J",
                "bastion",
                DEST,
                "echo agent=${SSH_AUTH_SOCK:-none}",
            ],
            capture_output=True,
            timeout=60,
            env=dict(os.environ, SSH_AUTH_SOCK=str(sock)),
        )
    finally:
        os.kill(pid, 15)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"agent=none\n"
    assert b"bastion: agent forwarding refused" in result.stderr


def test_remote_forwarding_is_refused(agent: Agent, bastion: BastionProcess) -> None:
    result = agent.run(
        "-o",
        "ExitOnForwardFailure=yes",
        "-R",
        "127.0.0.1:0:127.0.0.1:9",
        "-J",
        "bastion",
        DEST,
        "echo should-not-run",
    )
    assert result.returncode == 255
    assert b"should-not-run" not in result.stdout
    assert b"remote port forwarding failed" in result.stderr
    assert wait_until(
        lambda: [
            r
            for r in audit_rows(bastion.state)
            if r.kind == "refused" and "remote forwarding" in (r.detail or "")
        ]
    )


def test_local_forwarding_through_target_is_refused(agent: Agent, bastion: BastionProcess) -> None:
    """`ssh -W` over the inner connection asks the bastion's in-process server for a forward."""
    result = agent.run("-J", "bastion", "-W", "127.0.0.1:22", DEST, input=b"")
    assert result.returncode != 0
    assert b"port forwarding to 127.0.0.1:22 is not allowed" in result.stderr


def test_forward_to_registered_target_on_another_port_is_refused(agent: Agent) -> None:
    result = agent.run("-W", f"{TARGET_NAME}:5432", "bastion", input=b"")
    assert result.returncode != 0
    assert f"forwarding to {TARGET_NAME}:5432 is not allowed".encode() in result.stderr


def test_x11_forwarding_is_refused_with_a_message(agent: Agent) -> None:
    # No X server is needed: the client sends fake auth data and the bastion refuses.
    result = subprocess.run(
        agent.ssh("-Y", "-J", "bastion", DEST, "echo display=${DISPLAY:-none}"),
        capture_output=True,
        timeout=60,
        env=dict(os.environ, DISPLAY="127.0.0.1:57"),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"display=none\n"
    assert b"bastion: X11 forwarding refused" in result.stderr
