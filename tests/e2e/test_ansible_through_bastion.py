"""Ansible (ansible-core's own `ansible` CLI) against the real target through the bastion,
with and without pipelining: modules are decided by what they do, not let through unseen."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from harness import TARGET_NAME, TEST_LOGIN, Agent, BastionProcess, audit_rows

pytestmark = pytest.mark.e2e

ANSIBLE = [sys.executable, "-m", "ansible.cli.adhoc"]  # the `ansible` command, wherever pip put it


@pytest.fixture(scope="module")
def inventory(agent: Agent, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if importlib.util.find_spec("ansible") is None:
        pytest.fail("ansible-core is part of the test extra: pip install -e '.[test]'")
    directory = tmp_path_factory.mktemp("ansible")
    path = directory / "inventory.ini"
    common = f"-F {agent.config} -J bastion"
    path.write_text(
        f"{TARGET_NAME} ansible_host={TARGET_NAME} ansible_user={TEST_LOGIN}"
        f" ansible_python_interpreter=/usr/bin/python3"
        f" ansible_ssh_common_args='{common}'"
        " ansible_ssh_args='-o ControlMaster=no -o ControlPath=none'\n"
    )
    return path


def ansible(
    inventory: Path, *args: str, pipelining: bool | str, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    """`pipelining`: True, False (modules uploaded by sftp) or "scp" (uploaded by `scp -O`)."""
    home = inventory.parent / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "ANSIBLE_CONFIG": str(inventory.parent / "none.cfg"),
        "ANSIBLE_PIPELINING": "true" if pipelining is True else "false",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_HOST_KEY_CHECKING": "false",
        "ANSIBLE_LOCAL_TEMP": str(inventory.parent / "local-tmp"),
        "ANSIBLE_SSH_RETRIES": "0",
        "ANSIBLE_TIMEOUT": "30",
        "ANSIBLE_PYTHON_INTERPRETER": "/usr/bin/python3",
    }
    if pipelining == "scp":
        env["ANSIBLE_SSH_TRANSFER_METHOD"] = "scp"
        env["ANSIBLE_SCP_EXTRA_ARGS"] = "-O"
    return subprocess.run(
        [*ANSIBLE, TARGET_NAME, "-i", str(inventory), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


MODES = [
    pytest.param(False, id="sftp-upload"),
    pytest.param("scp", id="scp-upload"),
    pytest.param(True, id="pipelining"),
]


@pytest.mark.parametrize("pipelining", MODES)
def test_ping(inventory: Path, pipelining: bool | str) -> None:
    result = ansible(inventory, "-m", "ping", pipelining=pipelining)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"ping": "pong"' in result.stdout


@pytest.mark.parametrize("pipelining", [False, True], ids=["sftp-upload", "pipelining"])
def test_ping_with_interpreter_discovery(inventory: Path, pipelining: bool) -> None:
    """Discovery's own exec (`echo FOUND; command -v 'python3.13'; ...`) passes too."""
    auto = ("-e", "ansible_python_interpreter=auto_silent")
    result = ansible(inventory, "-m", "ping", *auto, pipelining=pipelining)
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"ping": "pong"' in result.stdout


@pytest.mark.parametrize("pipelining", MODES)
def test_command_uptime(inventory: Path, pipelining: bool | str) -> None:
    result = ansible(inventory, "-m", "command", "-a", "uptime", pipelining=pipelining)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "load average" in result.stdout


@pytest.mark.parametrize("pipelining", MODES)
def test_copy(inventory: Path, pipelining: bool | str, tmp_path: Path) -> None:
    source = tmp_path / "source.txt"
    source.write_text(f"copied by ansible {uuid.uuid4().hex}\n")
    dest = f"/home/{TEST_LOGIN}/ansible-copy-{uuid.uuid4().hex[:8]}.txt"
    result = ansible(
        inventory, "-m", "copy", "-a", f"src={source} dest={dest} mode=0600", pipelining=pipelining
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert Path(dest).read_text() == source.read_text()
    Path(dest).unlink()


@pytest.mark.parametrize("pipelining", MODES)
def test_command_cat_shadow_is_denied(inventory: Path, pipelining: bool | str) -> None:
    result = ansible(inventory, "-m", "command", "-a", "cat /etc/shadow", pipelining=pipelining)
    assert result.returncode != 0
    assert "denied by rule credential-read" in result.stdout + result.stderr


@pytest.mark.parametrize("pipelining", MODES)
def test_shell_module_denied_before_anything_runs(
    inventory: Path, bastion: BastionProcess, pipelining: bool | str
) -> None:
    marker = f"/home/{TEST_LOGIN}/ansible-marker-{uuid.uuid4().hex[:8]}"
    result = ansible(
        inventory, "-m", "shell", "-a", f"touch {marker}; cat /etc/shadow", pipelining=pipelining
    )
    assert result.returncode != 0
    assert "credential-read" in result.stdout + result.stderr
    assert not os.path.exists(marker), "the module ran on the target"
    denied = [r for r in audit_rows(bastion.state) if r.decision == "deny"]
    assert any("ansible command" in (r.detail or "") for r in denied)


def test_ansible_is_installed_at_the_pinned_version() -> None:
    from bastion.ansible.known import known_releases

    out = subprocess.run([*ANSIBLE, "--version"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    version = out.stdout.split("[core ", 1)[1].split("]", 1)[0]
    assert version in known_releases(), (version, sorted(known_releases()))
    assert shutil.which("ssh")
