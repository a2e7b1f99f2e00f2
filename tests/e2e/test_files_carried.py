"""Files carried, then run: a script uploaded by sftp, scp or an exec's stdin is judged by
what it holds when a later exec runs it (real OpenSSH client, real sshd target)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from harness import (
    TARGET_NAME,
    TEST_LOGIN,
    Agent,
    BastionProcess,
    audit_rows,
    state_store,
    wait_until,
)

pytestmark = pytest.mark.e2e

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"
ALLOWED = "echo carried-ran-$((6 * 7))\nls / >/dev/null\n"
DENIED = "echo before\ncat /etc/shadow\n"


def _sftp(agent: Agent, batch: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["sftp", "-F", str(agent.config), "-b", "-", "-J", "bastion", DEST],
        input=batch.encode(),
        capture_output=True,
        timeout=120,
    )


def _scp_legacy(agent: Agent, local: Path, remote: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["scp", "-F", str(agent.config), "-O", "-J", "bastion", str(local), f"{DEST}:{remote}"],
        capture_output=True,
        timeout=120,
    )


def _script(tmp_path: Path, text: str) -> tuple[Path, str]:
    name = f"carried-{uuid.uuid4().hex[:8]}.sh"
    local = tmp_path / name
    local.write_text(text)
    return local, name


def _run(agent: Agent, command: str) -> subprocess.CompletedProcess[bytes]:
    return agent.run("-J", "bastion", DEST, command)


def _uploaded(agent: Agent, tmp_path: Path, text: str) -> str:
    """A script with `text`, put in the home directory by sftp; its name."""
    local, name = _script(tmp_path, text)
    assert _sftp(agent, f"put {local} {name}\n").returncode == 0
    return name


def test_sftp_upload_then_sh_runs_allowed_content(agent: Agent, tmp_path: Path) -> None:
    name = _uploaded(agent, tmp_path, ALLOWED)
    result = _run(agent, f"sh {name}")
    assert result.returncode == 0, result.stderr
    assert b"carried-ran-42" in result.stdout
    _run(agent, f"rm -f {name}")


def test_sftp_upload_then_sh_of_a_credential_read_is_denied(
    agent: Agent, bastion: BastionProcess, tmp_path: Path
) -> None:
    name = _uploaded(agent, tmp_path, DENIED)
    result = _run(agent, f"sh {name}")
    assert result.returncode == 126
    assert b"denied by rule credential-read" in result.stderr
    assert b"before" not in result.stdout  # nothing of the script ran
    row = wait_until(lambda: [r for r in audit_rows(bastion.state) if r.command == f"sh {name}"])
    assert row and row[0].decision == "deny" and "runs carried" in (row[0].detail or "")
    for command in (f"bash ./{name}", f". ~/{name}", f"sh carried-*{name[-6:]}"):
        again = _run(agent, command)
        assert again.returncode == 126, (command, again.stderr)
    _run(agent, f"rm -f {name}")


def test_scp_legacy_upload_then_sh(agent: Agent, tmp_path: Path) -> None:
    good, good_name = _script(tmp_path, ALLOWED)
    bad, bad_name = _script(tmp_path, DENIED)
    assert _scp_legacy(agent, good, good_name).returncode == 0
    assert _scp_legacy(agent, bad, bad_name).returncode == 0
    ran = _run(agent, f"sh {good_name}")
    assert ran.returncode == 0 and b"carried-ran-42" in ran.stdout, ran.stderr
    denied = _run(agent, f"sh {bad_name}")
    assert denied.returncode == 126 and b"credential-read" in denied.stderr
    _run(agent, f"rm -f {good_name} {bad_name}")


def test_stdin_written_to_a_file_is_carried(agent: Agent) -> None:
    name = f"carried-{uuid.uuid4().hex[:8]}.sh"
    wrote = agent.run("-J", "bastion", DEST, f"cat > {name}", input=DENIED.encode())
    assert wrote.returncode == 0, wrote.stderr
    denied = _run(agent, f"sh {name}")
    assert denied.returncode == 126 and b"credential-read" in denied.stderr
    _run(agent, f"rm -f {name}")


def held_then_denied(agent: Agent, bastion: BastionProcess, command: str) -> str:
    """Runs `command`, which must be held for review; denies it; returns the request's rule."""
    client = subprocess.Popen(
        agent.ssh("-J", "bastion", DEST, command), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        request = wait_until(lambda: _pending(bastion, command), 30)
        assert request, f"{command!r} was not held"
        denied = subprocess.run(
            [sys.executable, "-m", "bastion", "deny", str(request.id), "--state-dir",
             str(bastion.state.root)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert denied.returncode == 0, denied.stderr
        _out, err = client.communicate(timeout=30)
        assert client.returncode == 126, err
        return request.rule or ""
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()


def _pending(bastion: BastionProcess, command: str):  # type: ignore[no-untyped-def]
    with state_store(bastion.state) as store:
        rows = [r for r in store.list_requests() if r.command == command and r.state == "pending"]
    return rows[-1] if rows else None


def test_a_carried_file_changed_by_a_command_is_not_understood(
    agent: Agent, bastion: BastionProcess, tmp_path: Path
) -> None:
    name = _uploaded(agent, tmp_path, ALLOWED)
    appended = _run(agent, f"echo uptime >> {name}")
    assert appended.returncode == 0, appended.stderr
    assert held_then_denied(agent, bastion, f"sh {name}") == "not-understood"
    _run(agent, f"rm -f {name}")
