"""Revoking a certificate refuses new logins and closes live sessions within seconds."""

from __future__ import annotations

import json
import subprocess
import time

from harness import TARGET_NAME, TEST_LOGIN, BastionProcess, audit_rows, make_agent, wait_until
from harness import bastion_cli as cli

from bastion.identity.certinfo import certificate_info


def test_revoking_an_identity_closes_its_live_session(bastion: BastionProcess, tmp_path) -> None:
    agent = make_agent(tmp_path, bastion.state, bastion.port, identity="to-be-revoked")
    serial = certificate_info((agent.dir / "id_ed25519-cert.pub").read_bytes()).serial
    live = subprocess.Popen(
        agent.ssh("-J", "bastion", f"{TEST_LOGIN}@{TARGET_NAME}", "echo started; sleep 60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert live.stdout is not None
    assert live.stdout.readline() == b"started\n"
    listed = json.loads(cli(bastion, "cert", "list", "--json").stdout)
    assert any(c["serial"] == str(serial) and c["revoked"] is None for c in listed)
    revoked_at = time.monotonic()
    result = cli(bastion, "cert", "revoke", "--identity", "to-be-revoked")
    assert result.returncode == 0 and "revoked 1 certificate" in result.stdout
    live.wait(timeout=15)
    assert time.monotonic() - revoked_at < 5.5
    assert live.returncode != 0
    # The disconnect reason reaches the ProxyJump child, which the parent may kill before it
    # prints; the audit row and the refusal below say why.
    again = agent.run("-J", "bastion", f"{TEST_LOGIN}@{TARGET_NAME}", "echo should-not-run")
    assert again.returncode == 255 and b"should-not-run" not in again.stdout
    assert f"certificate serial {serial} is revoked".encode() in again.stderr
    assert wait_until(lambda: [r for r in audit_rows(bastion.state) if r.kind == "revoked"])


def test_revoke_by_serial_and_bad_input(bastion: BastionProcess, tmp_path) -> None:
    agent = make_agent(tmp_path, bastion.state, bastion.port, identity="serial-revoke")
    serial = certificate_info((agent.dir / "id_ed25519-cert.pub").read_bytes()).serial
    assert cli(bastion, "cert", "revoke", str(serial)).returncode == 0
    assert "already revoked" in cli(bastion, "cert", "revoke", str(serial)).stdout
    assert cli(bastion, "cert", "revoke", "12x").returncode == 2
    assert cli(bastion, "cert", "revoke", "123").returncode == 4
    assert cli(bastion, "cert", "revoke").returncode == 2
    table = cli(bastion, "cert", "list").stdout
    assert str(serial) in table and "revoked" in table
