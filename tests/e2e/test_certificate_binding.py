"""A certificate counts only as the one the bastion issued: every field, for its whole life.

The forgeries are signed with the bastion's real user CA key (as a leaked
key would be) and reuse the serial of a certificate the bastion did issue.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import asyncssh
import pytest
from harness import TARGET_NAME, TEST_LOGIN, BastionProcess, audit_rows, make_agent, wait_until

from bastion.identity.certinfo import certificate_info

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def _issued(bastion: BastionProcess, directory: Path, **kwargs) -> tuple[Path, int]:
    agent = make_agent(directory, bastion.state, bastion.port, identity="bound-agent", **kwargs)
    serial = certificate_info((directory / "id_ed25519-cert.pub").read_bytes()).serial
    return agent.dir, serial


def _forged(
    bastion: BastionProcess,
    directory: Path,
    *,
    serial: int,
    key_id: str,
    principals: list[str],
    new_key: bool,
    valid_for: int = 600,
) -> bytes:
    key_path = directory / "id_ed25519"
    if new_key:
        key_path.unlink()
        (directory / "id_ed25519.pub").unlink()
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True
        )
    ca = asyncssh.read_private_key(bastion.state.keys / "user_ca")
    now = int(time.time())
    cert = ca.generate_user_certificate(
        asyncssh.read_public_key(str(key_path) + ".pub"),
        key_id,
        serial=serial,
        principals=principals,
        valid_after=now - 60,
        valid_before=now + valid_for,
    )
    return cert.export_certificate()


@pytest.mark.parametrize(
    "what, key_id, principals, new_key",
    [
        ("key", "bound-agent", [TEST_LOGIN], True),
        ("key id", "mallory", [TEST_LOGIN], False),
        ("principals", "bound-agent", [TEST_LOGIN, "root"], False),
        ("validity", "bound-agent", [TEST_LOGIN], False),
    ],
)
def test_a_reused_serial_with_any_other_field_is_refused(
    bastion: BastionProcess,
    tmp_path: Path,
    what: str,
    key_id: str,
    principals: list[str],
    new_key: bool,
) -> None:
    directory, serial = _issued(bastion, tmp_path)
    cert = _forged(
        bastion,
        directory,
        serial=serial,
        key_id=key_id,
        principals=principals,
        new_key=new_key,
        valid_for=3600,  # the issued one is valid for 600 s
    )
    agent = make_agent(directory, bastion.state, bastion.port, identity="bound-agent", cert=cert)
    result = agent.run("-J", "bastion", DEST, "echo should-not-run")
    assert result.returncode == 255, result.stderr
    assert b"should-not-run" not in result.stdout
    assert f"does not match the one issued ({what} differs)".encode() in result.stderr
    assert not any(
        r.identity == "mallory" and r.kind != "refused" for r in audit_rows(bastion.state)
    )


def test_the_issued_certificate_itself_still_works(bastion: BastionProcess, tmp_path: Path) -> None:
    directory, _ = _issued(bastion, tmp_path)
    agent = make_agent(
        directory,
        bastion.state,
        bastion.port,
        identity="bound-agent",
        cert=(directory / "id_ed25519-cert.pub").read_bytes(),
    )
    result = agent.run("-J", "bastion", DEST, "echo ok")
    assert result.stdout == b"ok\n", result.stderr


def test_a_live_connection_is_closed_when_its_certificate_expires(
    bastion: BastionProcess, tmp_path: Path
) -> None:
    """ControlMaster keeps one outer connection for later commands: expiry must end it."""
    agent = make_agent(tmp_path, bastion.state, bastion.port, identity="short-lived", ttl=6)
    control = tmp_path / "cm.sock"
    common = ["-o", f"ControlPath={control}", "-J", "bastion", DEST]
    master = subprocess.Popen(
        agent.ssh("-o", "ControlMaster=yes", "-o", "ControlPersist=no", "-N", *common),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert wait_until(control.exists, timeout=20), "the control master did not start"
        first = agent.run("-o", "ControlMaster=no", *common, "echo early")
        assert first.stdout == b"early\n", first.stderr
        master.wait(timeout=20)  # the bastion closes the connection at valid_before
        late = agent.run("-o", "ControlMaster=no", "-o", "BatchMode=yes", *common, "echo late")
        assert b"late" not in late.stdout
    finally:
        if master.poll() is None:
            master.kill()
    assert wait_until(
        lambda: any(
            r.kind == "expired" and r.identity == "short-lived" for r in audit_rows(bastion.state)
        )
    )
