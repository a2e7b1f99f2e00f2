"""Who may come in: only live certificates from the user CA, for their own principals."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import asyncssh
import pytest
from harness import (
    TARGET_NAME,
    TEST_LOGIN,
    Agent,
    BastionProcess,
    audit_rows,
    make_agent,
    state_store,
    wait_until,
)

from bastion.store.records import CertificateRecord

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def _signed_cert(
    ca: asyncssh.SSHKey,
    agent_dir: Path,
    *,
    principals: list[str],
    valid_after: int,
    valid_before: int,
    serial: int,
) -> bytes:
    agent_dir.mkdir(parents=True, exist_ok=True)
    key_path = agent_dir / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True)
    key = asyncssh.read_public_key(str(key_path) + ".pub")
    cert = ca.generate_user_certificate(
        key,
        "crafted-agent",
        serial=serial,
        principals=principals,
        valid_after=valid_after,
        valid_before=valid_before,
    )
    return cert.export_certificate()


def _record(bastion: BastionProcess, serial: int, valid_after: int, valid_before: int) -> None:
    with state_store(bastion.state) as store:
        store.record_certificate(
            CertificateRecord(
                serial=serial,
                identity="crafted-agent",
                principals=(TEST_LOGIN,),
                groups=(),
                key_fingerprint="-",
                valid_after=valid_after,
                valid_before=valid_before,
                issued=time.time(),
                source="test",
                revoked=None,
            )
        )


def test_expired_certificate_is_refused(bastion: BastionProcess, tmp_path: Path) -> None:
    ca = asyncssh.read_private_key(bastion.state.keys / "user_ca")
    now = int(time.time())
    cert = _signed_cert(
        ca,
        tmp_path,
        principals=[TEST_LOGIN],
        valid_after=now - 7200,
        valid_before=now - 3600,
        serial=900001,
    )
    _record(bastion, 900001, now - 7200, now - 3600)
    agent = make_agent(tmp_path, bastion.state, bastion.port, cert=cert)
    result = agent.run("-J", "bastion", DEST, "echo should-not-run")
    assert result.returncode == 255
    assert b"should-not-run" not in result.stdout
    assert b"certificate expired" in result.stderr


def test_certificate_from_another_ca_is_refused(bastion: BastionProcess, tmp_path: Path) -> None:
    other_ca = asyncssh.generate_private_key("ssh-ed25519")
    now = int(time.time())
    cert = _signed_cert(
        other_ca,
        tmp_path,
        principals=[TEST_LOGIN],
        valid_after=now - 60,
        valid_before=now + 600,
        serial=900002,
    )
    agent = make_agent(tmp_path, bastion.state, bastion.port, cert=cert)
    result = agent.run("-J", "bastion", DEST, "echo should-not-run")
    assert result.returncode == 255
    assert b"should-not-run" not in result.stdout
    assert b"not signed by this bastion's user CA" in result.stderr


def test_certificate_unknown_to_the_bastion_is_refused(
    bastion: BastionProcess, tmp_path: Path
) -> None:
    """Signed by the right CA but never recorded (e.g. a stolen CA key): refused."""
    ca = asyncssh.read_private_key(bastion.state.keys / "user_ca")
    now = int(time.time())
    cert = _signed_cert(
        ca,
        tmp_path,
        principals=[TEST_LOGIN],
        valid_after=now - 60,
        valid_before=now + 600,
        serial=900003,
    )
    agent = make_agent(tmp_path, bastion.state, bastion.port, cert=cert)
    result = agent.run("-J", "bastion", DEST, "echo should-not-run")
    assert result.returncode == 255
    assert b"unknown to this bastion" in result.stderr


def test_login_not_among_principals_is_refused_on_jump(
    bastion: BastionProcess, tmp_path: Path
) -> None:
    agent = make_agent(tmp_path, bastion.state, bastion.port, principals=("someoneelse",))
    result = agent.run("-J", "bastion", DEST, "echo should-not-run")
    assert result.returncode == 255
    assert b"should-not-run" not in result.stdout
    assert f"login '{TEST_LOGIN}' is not a principal".encode() in result.stderr


def test_login_not_among_principals_is_refused_direct(
    bastion: BastionProcess, tmp_path: Path
) -> None:
    agent = make_agent(tmp_path, bastion.state, bastion.port, principals=("someoneelse",))
    result = agent.run(f"{TEST_LOGIN}%{TARGET_NAME}@bastion", "echo should-not-run")
    assert result.returncode == 255
    assert b"should-not-run" not in result.stdout
    assert b"is not a principal of your certificate" in result.stderr


def test_plain_key_without_certificate_is_refused(bastion: BastionProcess, tmp_path: Path) -> None:
    agent = make_agent(tmp_path, bastion.state, bastion.port)
    config = agent.config.read_text().replace("  CertificateFile", "  #CertificateFile")
    agent.config.write_text(config)
    (agent.dir / "id_ed25519-cert.pub").unlink()  # ssh would load it beside the key
    result = agent.run("-J", "bastion", DEST, "echo should-not-run")
    assert result.returncode == 255
    assert b"only certificates" in result.stderr


@pytest.mark.parametrize("destination", ["nosuchhost", "127.0.0.1"])
def test_unregistered_target_is_refused_with_its_name(
    agent: Agent, bastion: BastionProcess, destination: str
) -> None:
    result = agent.run("-J", "bastion", f"{TEST_LOGIN}@{destination}", "echo should-not-run")
    assert result.returncode == 255
    assert f"unknown target '{destination}'".encode() in result.stderr
    assert wait_until(
        lambda: [
            r for r in audit_rows(bastion.state) if r.kind == "refused" and r.target == destination
        ]
    ), "the refusal must be audited"


def test_unregistered_target_is_refused_direct(agent: Agent) -> None:
    result = agent.run(f"{TEST_LOGIN}%nosuchhost@bastion", "echo should-not-run")
    assert result.returncode == 255
    assert b"unknown target 'nosuchhost'" in result.stderr
