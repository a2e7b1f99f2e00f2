"""Output masking through the real OpenSSH client: what the agent and the recording see."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

from harness import (
    TARGET_NAME,
    TEST_LOGIN,
    Agent,
    BastionProcess,
    audit_rows,
    recording_path,
    state_store,
    wait_until,
)
from ptydriver import PtyProcess

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"


def asciinema_cat(path: Path) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("asciinema")
    argv = [exe] if exe else [sys.executable, "-m", "asciinema"]
    return subprocess.run([*argv, "cat", str(path)], capture_output=True, timeout=60)


def find_session(state, predicate, timeout: float = 10.0):
    def lookup():
        with state_store(state) as store:
            return next((s for s in reversed(store.list_sessions()) if predicate(s)), None)

    return wait_until(lookup, timeout)


def _finished_session(bastion: BastionProcess, marker: str):
    return find_session(bastion.state, lambda s: s.command and marker in s.command and s.ended)


def test_exec_output_is_masked_and_the_recording_holds_the_masked_text(
    agent: Agent, bastion: BastionProcess
) -> None:
    tag = uuid.uuid4().hex[:8]
    # The secrets are assembled by the target's printf, so the command line itself holds none.
    command = (
        f"printf 'run {tag}\\nkey=%s\\ncard %s\\nmail %s\\n' "
        f"AKIAIOSFODNN7''EXAMPLE '{CARD[:10]}''{CARD[10:]}' jane.doe@'example.com'; "
        f"printf 'err %s\\n' '{AWS_KEY[:8]}''{AWS_KEY[8:]}' >&2"
    )
    result = agent.run("-J", "bastion", DEST, command)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout
        == (
            f"run {tag}\nkey=[MASKED:aws-access-key]\ncard [MASKED:card]\nmail [MASKED:email]\n"
        ).encode()
    )
    assert b"err [MASKED:aws-access-key]" in result.stderr
    assert AWS_KEY.encode() not in result.stderr

    session = _finished_session(bastion, tag)
    assert session is not None
    played = asciinema_cat(recording_path(bastion.state, session.id))
    assert played.returncode == 0, played.stderr
    assert b"key=[MASKED:aws-access-key]" in played.stdout
    recorded = recording_path(bastion.state, session.id).read_bytes()
    for secret in (AWS_KEY, CARD, EMAIL):
        assert secret.encode() not in recorded and secret.encode() not in played.stdout
    rows = wait_until(
        lambda: [
            r
            for r in audit_rows(bastion.state)
            if r.session_id == session.id and r.kind == "masked"
        ]
    )
    assert rows, [r.kind for r in audit_rows(bastion.state) if r.session_id == session.id]
    counts: dict[str, int] = {}
    for row in rows:  # one row when masking starts, then the rest as the channel ends
        assert AWS_KEY not in (row.detail or "")
        for item in (row.detail or "").split():
            name, _, count = item.partition("=")
            counts[name] = counts.get(name, 0) + int(count)
    assert counts == {"aws-access-key": 2, "card": 1, "email": 1}


def test_secret_written_in_two_pieces_is_masked(agent: Agent) -> None:
    result = agent.run(
        "-J", "bastion", DEST, "printf 'id AKIAIOSF'; sleep 0.01; printf 'ODNN7EXAMPLE ok\\n'"
    )
    assert result.stdout == b"id [MASKED:aws-access-key] ok\n"


def test_private_key_printed_by_cat_is_masked(agent: Agent) -> None:
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" * 30
        + "-----END OPENSSH PRIVATE KEY-----\n"
    )
    name = f"key-{uuid.uuid4().hex[:8]}"
    agent.run("-J", "bastion", DEST, f"cat > {name}", input=key.encode())
    result = agent.run("-J", "bastion", DEST, f"echo before; cat {name}; echo after; rm -f {name}")
    assert result.stdout == b"before\n[MASKED:private-key]\nafter\n"


def test_shell_output_is_masked_on_the_terminal_and_in_the_recording(
    agent: Agent, bastion: BastionProcess
) -> None:
    tag = uuid.uuid4().hex[:8]
    shell = PtyProcess(agent.ssh("-tt", "-J", "bastion", DEST), rows=30, cols=120)
    try:
        shell.expect(b"$ ")
        shell.send(f"printf 'shell-{tag} %s\\n' AKIAIOSFODNN7EXAMP''LE\r".encode())
        seen = shell.expect(f"shell-{tag} [MASKED:aws-access-key]".encode())
        assert AWS_KEY.encode() not in seen
        shell.send(b"exit\r")
        assert shell.wait() == 0
    finally:
        shell.kill()
    session = find_session(
        bastion.state, lambda s: s.kind == "shell" and s.ended and _holds(bastion.state, s, tag)
    )
    assert session is not None
    recorded = recording_path(bastion.state, session.id).read_bytes()
    assert b"[MASKED:aws-access-key]" in recorded and AWS_KEY.encode() not in recorded
    played = asciinema_cat(recording_path(bastion.state, session.id))
    assert played.returncode == 0 and AWS_KEY.encode() not in played.stdout


def _holds(state, session, tag: str) -> bool:
    try:
        return tag.encode() in recording_path(state, session.id).read_bytes()
    except OSError:
        return False


def test_binary_output_arrives_byte_identical_and_is_audited(
    agent: Agent, bastion: BastionProcess
) -> None:
    tag = uuid.uuid4().hex[:8]
    # A tar-like stream: text with secrets after runs of NULs, then random bytes.
    payload = (
        b"header\0\0\0\0" + AWS_KEY.encode() + b" " + EMAIL.encode() + b"\n" + os.urandom(300_000)
    )
    result = agent.run("-J", "bastion", DEST, f"cat # {tag}", input=payload, timeout=120)
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(result.stdout).digest() == hashlib.sha256(payload).digest()
    session = _finished_session(bastion, tag)
    assert session is not None
    rows = wait_until(
        lambda: [
            r
            for r in audit_rows(bastion.state)
            if r.session_id == session.id and r.kind == "masking-off"
        ]
    )
    assert rows and "binary output on stdout from byte 6" in (rows[0].detail or "")


def test_environ_with_single_nuls_is_still_masked(agent: Agent) -> None:
    result = agent.run(
        "-J", "bastion", DEST, f"printf 'A=1\\0KEY=%s\\0B=2\\0' {AWS_KEY[:10]}{AWS_KEY[10:]}"
    )
    assert result.stdout == b"A=1\0KEY=[MASKED:aws-access-key]\0B=2\0"


def test_sftp_is_not_masked(agent: Agent, tmp_path: Path) -> None:
    name = f"secrets-{uuid.uuid4().hex[:8]}.txt"
    local = tmp_path / "local.txt"
    local.write_bytes(f"key={AWS_KEY}\nmail {EMAIL}\n".encode() * 100)
    batch = f"put {local} {name}\nget {name} {tmp_path / 'back.txt'}\nrm {name}\n".encode()
    result = subprocess.run(
        ["sftp", "-F", str(agent.config), "-b", "-", "-J", "bastion", DEST],
        input=batch,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "back.txt").read_bytes() == local.read_bytes()


def test_scp_download_of_a_file_with_secrets_is_intact(agent: Agent, tmp_path: Path) -> None:
    name = f"scp-secrets-{uuid.uuid4().hex[:8]}.txt"
    content = f"key={AWS_KEY}\nmail {EMAIL}\n".encode() * 50
    agent.run("-J", "bastion", DEST, f"cat > {name}", input=content)
    back = tmp_path / "back.txt"
    for legacy in ([], ["-O"]):
        result = subprocess.run(
            ["scp", "-F", str(agent.config), *legacy, "-J", "bastion", f"{DEST}:{name}", str(back)],
            capture_output=True,
            timeout=120,
        )
        assert result.returncode == 0, (legacy, result.stderr)
        assert back.read_bytes() == content
    agent.run("-J", "bastion", DEST, f"rm -f {name}")
