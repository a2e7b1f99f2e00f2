"""Recordings in S3 (a real Ceph RGW) end to end with the OpenSSH client: uploaded while the
session runs, completed with a sha256, read back by replay/export/search, and a bastion
killed with SIGKILL mid-session leaves a readable prefix that another node completes."""

from __future__ import annotations

import hashlib
import json
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from harness import (
    TARGET_NAME,
    TEST_LOGIN,
    BastionProcess,
    bastion_with_target,
    make_agent,
    recording_row,
    start_bastion,
    state_store,
    wait_until,
)

from bastion.config import load_config
from bastion.recordings import spool_dir
from bastion.recordings.s3.layout import contiguous_chunks, final_key, parts_prefix
from bastion.recordings.s3.objects import ObjectStorage
from bastion.search import extract

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"
ABANDON_AFTER = 5
S3_PREFIX: list[str] = []


@pytest.fixture(scope="module")
def s3_bastion(ceph_rgw, test_login, tmp_path_factory):
    prefix = f"e2e-{uuid.uuid4().hex[:10]}"
    S3_PREFIX[:] = [prefix]
    keys = (
        f'url = "s3://bastion-test/{prefix}"\n'
        f'endpoint = "{ceph_rgw.endpoint}"\n'
        f'access_key_id = "{ceph_rgw.access_key}"\n'
        f'secret_access_key = "{ceph_rgw.secret_key}"\n'
        f"complete_interval = 0.5\n"
        f"abandon_after = {ABANDON_AFTER}\n"
    )
    root = tmp_path_factory.mktemp("s3-bastion")
    with bastion_with_target(
        root, test_login, edit=lambda text: text.replace("[recordings]\n", "[recordings]\n" + keys)
    ) as bastion:
        yield bastion


def storage(bastion: BastionProcess) -> ObjectStorage:
    config = load_config(bastion.state.config_file).recordings
    assert config.s3 is not None
    return ObjectStorage(config.s3, config)


def cli(bastion: BastionProcess, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args, "--state-dir", str(bastion.state.root)],
        capture_output=True,
        timeout=120,
    )


def session_of(bastion: BastionProcess, predicate, timeout: float = 20.0):
    def lookup():
        with state_store(bastion.state) as store:
            return next((s for s in store.list_sessions() if predicate(s)), None)

    return wait_until(lookup, timeout)


def completed(bastion: BastionProcess, session_id: str, timeout: float = 30.0):
    return wait_until(
        lambda: (row := recording_row(bastion.state, session_id, 1)) and row.completed and row,
        timeout,
        interval=0.2,
    )


def asciinema_cat_bytes(data: bytes, tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    path = tmp_path / f"{uuid.uuid4().hex}.cast"
    path.write_bytes(data)
    return subprocess.run(
        [sys.executable, "-m", "asciinema", "cat", str(path)], capture_output=True, timeout=60
    )


def test_an_exec_recording_is_completed_in_s3_and_read_back_from_there(
    s3_bastion: BastionProcess, tmp_path: Path
) -> None:
    agent = make_agent(tmp_path / "agent", s3_bastion.state, s3_bastion.port)
    token = f"s3-needle-{uuid.uuid4().hex[:10]}"
    result = agent.run("-J", "bastion", DEST, f"printf 'one\\n%s here\\n' {token}")
    assert result.returncode == 0 and token.encode() in result.stdout
    session = session_of(s3_bastion, lambda s: s.command and token in s.command and s.ended)
    assert session is not None
    row = completed(s3_bastion, session.id)
    assert row, recording_row(s3_bastion.state, session.id)
    assert row.location == f"s3://bastion-test/{S3_PREFIX[0]}/{session.id}.cast"
    spool = spool_dir(load_config(s3_bastion.state.config_file).recordings, s3_bastion.state.root)
    # The row is marked complete before the spool is removed (a crash between them keeps the
    # spool, never loses it): wait for the removal, then what follows reads S3 only.
    assert wait_until(lambda: not (spool / f"{session.id}.cast").exists(), 10.0)

    import asyncio

    stored = asyncio.run(storage(s3_bastion).get(final_key(session.id)))
    assert hashlib.sha256(stored).hexdigest() == row.sha256 and len(stored) == row.size
    exported = cli(s3_bastion, "export", session.id)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == stored
    played = asciinema_cat_bytes(exported.stdout, tmp_path)
    assert played.returncode == 0 and token.encode() in played.stdout
    replayed = cli(s3_bastion, "replay", session.id, "--speed", "100", "--idle-limit", "0.1")
    assert replayed.returncode == 0 and token.encode() in replayed.stdout

    recordings = load_config(s3_bastion.state.config_file).recordings
    from bastion.recordings import open_recording

    with open_recording(row.location, recordings, s3_bastion.state.root) as stream:
        lines = extract(stream, "exec").lines  # what search indexes, read from S3
    assert any(f"{token} here" in line for _, line in lines)
    found = wait_until(
        lambda: json.loads(cli(s3_bastion, "search", f"{token} here", "--json").stdout), 20
    )
    assert [hit["session_id"] for hit in found] == [session.id]


def test_sigkill_mid_session_leaves_a_readable_prefix_that_another_node_completes(
    s3_bastion: BastionProcess, tmp_path: Path
) -> None:
    victim = start_bastion(s3_bastion.state)
    try:
        agent = make_agent(tmp_path / "agent", s3_bastion.state, victim.port, identity="s3-kill")
        client = subprocess.Popen(
            agent.ssh(
                "-J", "bastion", DEST, "for i in $(seq 1 900); do echo tick-$i; sleep 0.1; done"
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert client.stdout is not None
        for line in client.stdout:  # what the agent sees
            if line.strip() == b"tick-40":
                break
        victim.stop(signal.SIGKILL)
        killed_at = time.monotonic()
        rest, _ = client.communicate(timeout=30)
        seen = max(int(n) for n in re.findall(rb"tick-(\d+)", b"tick-40\n" + rest))
    finally:
        victim.stop()
    session = session_of(s3_bastion, lambda s: s.identity == "s3-kill")
    assert session is not None

    import asyncio

    async def uploaded_prefix() -> bytes:
        objects = storage(s3_bastion)
        chunks = contiguous_chunks(await objects.list(parts_prefix(session.id)))
        return b"".join([await objects.get(chunk.key) for chunk in chunks])

    prefix = asyncio.run(uploaded_prefix())
    assert time.monotonic() - killed_at < ABANDON_AFTER, "checked too late: already completed"
    played = asciinema_cat_bytes(prefix, tmp_path)
    assert played.returncode == 0, played.stderr
    in_s3 = max(int(n) for n in re.findall(rb"tick-(\d+)", played.stdout))
    print(f"agent saw tick-{seen}, S3 prefix ends at tick-{in_s3}")
    assert in_s3 >= seen - 15, f"the agent saw tick-{seen}, S3 holds up to tick-{in_s3}"

    row = completed(s3_bastion, session.id, timeout=ABANDON_AFTER + 30)
    assert row, recording_row(s3_bastion.state, session.id)
    final = asyncio.run(storage(s3_bastion).get(final_key(session.id)))
    assert hashlib.sha256(final).hexdigest() == row.sha256
    played = asciinema_cat_bytes(final, tmp_path)
    assert played.returncode == 0, played.stderr
    assert max(int(n) for n in re.findall(rb"tick-(\d+)", played.stdout)) >= in_s3
