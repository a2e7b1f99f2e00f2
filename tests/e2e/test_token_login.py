"""`bastion login`: an OIDC token from a real HTTP issuer on 127.0.0.1 becomes a certificate that ssh -J uses."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import TEST_LOGIN, BastionProcess, audit_rows, bastion_with_target, token_login
from oidc_issuer import Issuer

from bastion.identity.certinfo import certificate_info

CONFIG = """
[[issuer]]
name = "ci"
url = "{url}"
audience = "bastion"

[[role]]
name = "deployers"
issuer = "ci"
match = {{ groups = ["deployers"] }}
targets = ["web1"]
logins = ["{login}"]
cert_ttl = "5m"
"""


@pytest.fixture(scope="module")
def issuer():
    server = Issuer()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def token_bastion(tmp_path_factory: pytest.TempPathFactory, test_login: str, issuer: Issuer):
    config = CONFIG.format(url=issuer.url, login=test_login)
    with bastion_with_target(
        tmp_path_factory.mktemp("tokens"), test_login, config=config
    ) as bastion:
        yield bastion


def test_token_to_certificate_to_ssh_jump(
    token_bastion: BastionProcess, issuer: Issuer, tmp_path: Path
) -> None:
    out = tmp_path / "agent"
    result = token_login(token_bastion, issuer.token(groups=["deployers"]), out)
    assert result.returncode == 0, result.stderr
    assert "certificate serial" in result.stdout and TEST_LOGIN in result.stdout
    info = certificate_info((out / "id_ed25519-cert.pub").read_bytes())
    assert info.key_id == "ci-job-7" and info.principals == (TEST_LOGIN,)
    assert info.valid_before - time.time() <= 5 * 60 + 5  # never longer than the role allows
    ssh = subprocess.run(
        [
            "ssh",
            "-F",
            str(out / "ssh_config"),
            "-o",
            "BatchMode=yes",
            f"{TEST_LOGIN}@web1",
            "echo via-token",
        ],
        capture_output=True,
        timeout=60,
    )
    assert ssh.returncode == 0, ssh.stderr
    assert ssh.stdout == b"via-token\n"


def test_the_login_ssh_config_reaches_the_bastion_directly_too(
    token_bastion: BastionProcess, issuer: Issuer, tmp_path: Path
) -> None:
    """`LOGIN%TARGET@ADDRESS` goes to the bastion itself, not jumped through it."""
    out = tmp_path / "agent"
    assert token_login(token_bastion, issuer.token(groups=["deployers"]), out).returncode == 0
    ssh = subprocess.run(
        [
            "ssh",
            "-F",
            str(out / "ssh_config"),
            "-o",
            "BatchMode=yes",
            "-p",
            str(token_bastion.port),
            f"{TEST_LOGIN}%web1@127.0.0.1",
            "echo direct",
        ],
        capture_output=True,
        timeout=60,
    )
    assert ssh.returncode == 0, ssh.stderr
    assert ssh.stdout == b"direct\n"
    refused = [r for r in audit_rows(token_bastion.state) if r.kind == "refused"]
    assert not any("127.0.0.1" in (r.target or "") for r in refused)


def test_certificate_ttl_is_capped_by_the_token(
    token_bastion: BastionProcess, issuer: Issuer, tmp_path: Path
) -> None:
    now = int(time.time())
    result = token_login(
        token_bastion, issuer.token(groups=["deployers"], iat=now, exp=now + 90), tmp_path / "a"
    )
    assert result.returncode == 0, result.stderr
    info = certificate_info((tmp_path / "a" / "id_ed25519-cert.pub").read_bytes())
    assert info.valid_before <= now + 91


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 900}, "expired"),
        ({"aud": "someone-else"}, "claims rejected"),
        ({"groups": ["interns"]}, "no role grants"),
    ],
)
def test_bad_tokens_get_a_reason(
    token_bastion: BastionProcess, issuer: Issuer, tmp_path: Path, overrides: dict, reason: str
) -> None:
    result = token_login(
        token_bastion, issuer.token(**{"groups": ["deployers"], **overrides}), tmp_path / "b"
    )
    assert result.returncode == 6, result.stderr  # README: 6 = token rejected
    assert reason in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert not (tmp_path / "b" / "id_ed25519-cert.pub").exists()


def test_login_refuses_an_unverified_bastion(
    token_bastion: BastionProcess, issuer: Issuer, tmp_path: Path
) -> None:
    other_ca = tmp_path / "other_ca.pub"
    import asyncssh

    other_ca.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_public_key())
    token_file = tmp_path / "t"
    token_file.write_text(issuer.token(groups=["deployers"]))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bastion",
            "login",
            "--bastion",
            f"127.0.0.1:{token_bastion.port}",
            "--token-file",
            str(token_file),
            "--out",
            str(tmp_path / "c"),
            "--host-ca",
            str(other_ca),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "host CA" in result.stderr
