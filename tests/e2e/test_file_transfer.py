"""scp and sftp through the bastion, with every file operation on record."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from harness import TARGET_NAME, TEST_LOGIN, Agent, BastionProcess, audit_rows, wait_until


def _transfer(
    agent: Agent, *argv: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*argv], input=stdin, capture_output=True, timeout=120)


def test_sftp_put_get_round_trip_is_audited(
    agent: Agent, bastion: BastionProcess, tmp_path: Path
) -> None:
    name = f"upload-{uuid.uuid4().hex[:8]}.bin"
    local = tmp_path / "local.bin"
    local.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    batch = f"put {local} {name}\nget {name} {tmp_path / 'back.bin'}\nrm {name}\n".encode()
    result = _transfer(
        agent,
        "sftp",
        "-F",
        str(agent.config),
        "-b",
        "-",
        "-J",
        "bastion",
        f"{TEST_LOGIN}@{TARGET_NAME}",
        stdin=batch,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "back.bin").read_bytes() == local.read_bytes()
    home = f"/home/{TEST_LOGIN}"  # the sftp client resolves paths before sending them
    wanted = {f"tee -- {home}/{name}", f"cat -- {home}/{name}", f"rm -- {home}/{name}"}
    seen = wait_until(
        lambda: wanted <= {r.command for r in audit_rows(bastion.state) if r.kind == "sftp"}
    )
    assert seen, sorted(r.command for r in audit_rows(bastion.state) if r.kind == "sftp")


def test_scp_both_protocols(agent: Agent, tmp_path: Path) -> None:
    local = tmp_path / "scp.txt"
    local.write_text("copied through the bastion\n")
    for legacy in ([], ["-O"]):
        name = f"scp-{uuid.uuid4().hex[:8]}.txt"
        up = _transfer(
            agent,
            "scp",
            "-F",
            str(agent.config),
            *legacy,
            "-J",
            "bastion",
            str(local),
            f"{TEST_LOGIN}@{TARGET_NAME}:{name}",
        )
        assert up.returncode == 0, (legacy, up.stderr)
        back = tmp_path / f"back-{name}"
        down = _transfer(
            agent,
            "scp",
            "-F",
            str(agent.config),
            *legacy,
            "-J",
            "bastion",
            f"{TEST_LOGIN}@{TARGET_NAME}:{name}",
            str(back),
        )
        assert down.returncode == 0, (legacy, down.stderr)
        assert back.read_text() == local.read_text()
        agent.run("-J", "bastion", f"{TEST_LOGIN}@{TARGET_NAME}", f"rm -f {name}")
