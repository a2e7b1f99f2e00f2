"""`bastion login --device`: sign in in a 'browser' at the dev issuer, then ssh through the bastion."""

from __future__ import annotations

import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from harness import TEST_LOGIN, BastionProcess, bastion_with_target

from bastion.devissuer import DevIssuer
from bastion.identity.certinfo import certificate_info

CONFIG = """
[[issuer]]
name = "dev"
url = "{url}"
audience = "bastion"
algorithms = ["ES256"]

[[role]]
name = "agents"
issuer = "dev"
match = {{ groups = ["agents"] }}
targets = ["web1"]
logins = ["{login}"]
"""


@pytest.fixture(scope="module")
def dev_issuer():
    issuer = DevIssuer.start({"laptop-user": ["agents"], "intern": ["interns"]})
    yield issuer
    issuer.stop()


@pytest.fixture(scope="module")
def device_bastion(
    tmp_path_factory: pytest.TempPathFactory, test_login: str, dev_issuer: DevIssuer
):
    config = CONFIG.format(url=dev_issuer.url, login=test_login)
    with bastion_with_target(
        tmp_path_factory.mktemp("device"), test_login, config=config
    ) as bastion:
        yield bastion


def device_login(bastion: BastionProcess, issuer: DevIssuer, out: Path, identity: str):
    """Run the CLI; when it prints the sign-in URL, 'open' it as `identity`."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bastion",
            "login",
            "--device",
            "--issuer",
            issuer.url,
            "--bastion",
            f"127.0.0.1:{bastion.port}",
            "--out",
            str(out),
            "--host-ca",
            str(bastion.state.keys / "host_ca.pub"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    errors: list[str] = []

    def watch() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            errors.append(line)
            if line.startswith("To sign in, open "):
                url = line.removeprefix("To sign in, open ").strip() + f"&identity={identity}"
                urllib.request.urlopen(url, timeout=10).read()

    reader = threading.Thread(target=watch, daemon=True)
    reader.start()
    try:
        process.wait(timeout=90)  # stderr belongs to the reader thread, stdout is a few lines
    finally:
        process.kill()
    reader.join(timeout=10)
    assert process.stdout is not None
    return process.returncode, process.stdout.read(), "".join(errors)


def test_device_login_then_ssh_jump(
    device_bastion: BastionProcess, dev_issuer: DevIssuer, tmp_path: Path
) -> None:
    out = tmp_path / "laptop"
    status, stdout, stderr = device_login(device_bastion, dev_issuer, out, "laptop-user")
    assert status == 0, stderr
    assert "enter the code" in stderr and "certificate serial" in stdout
    info = certificate_info((out / "id_ed25519-cert.pub").read_bytes())
    assert info.key_id == "laptop-user" and info.principals == (TEST_LOGIN,)
    ssh = subprocess.run(
        [
            "ssh",
            "-F",
            str(out / "ssh_config"),
            "-o",
            "BatchMode=yes",
            f"{TEST_LOGIN}@web1",
            "echo via-device",
        ],
        capture_output=True,
        timeout=60,
    )
    assert ssh.returncode == 0 and ssh.stdout == b"via-device\n", ssh.stderr


def test_device_login_without_a_role_gets_no_certificate(
    device_bastion: BastionProcess, dev_issuer: DevIssuer, tmp_path: Path
) -> None:
    status, _, stderr = device_login(device_bastion, dev_issuer, tmp_path / "intern", "intern")
    assert status != 0 and "no role grants 'intern' access" in stderr
    assert not (tmp_path / "intern" / "id_ed25519-cert.pub").exists()


def test_device_needs_an_issuer(device_bastion: BastionProcess, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bastion",
            "login",
            "--device",
            "--bastion",
            f"127.0.0.1:{device_bastion.port}",
            "--out",
            str(tmp_path / "x"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--device needs --issuer" in result.stderr
