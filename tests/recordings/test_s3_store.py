"""The S3 recording store against a real S3-compatible server (Ceph RGW, tests/conftest.py):
spool, create-only chunks while the session runs, completion with sha256, abandoned
recordings completed by another node, recovery from a spool, reading from any state."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from pathlib import Path

import pytest
from recording_helpers import end_session, heartbeat, meta, open_fds, session_row, store_in

from bastion.recordings import open_recording, open_recording_store
from bastion.recordings.config import RecordingsConfig
from bastion.recordings.s3.layout import chunk_key, contiguous_chunks, final_key, parts_prefix
from bastion.recordings.s3.objects import ObjectExists, ObjectStorage
from recorder.cast import read_cast

BUCKET = "bastion-test"


@pytest.fixture()
def s3_config(ceph_rgw) -> RecordingsConfig:
    return RecordingsConfig(
        url=f"s3://{BUCKET}/unit-{uuid.uuid4().hex[:10]}",
        endpoint=ceph_rgw.endpoint,
        region=ceph_rgw.region,
        access_key_id=ceph_rgw.access_key,
        secret_access_key=ceph_rgw.secret_key,  # type: ignore[arg-type]
        upload_interval=0.1,
        complete_interval=0.2,
        abandon_after=1.0,
    )


def storage_for(config: RecordingsConfig) -> ObjectStorage:
    assert config.s3 is not None
    return ObjectStorage(config.s3, config)


async def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    return await predicate()


def test_chunks_go_up_while_the_session_runs_then_one_object_with_its_sha256(
    tmp_path: Path, s3_config: RecordingsConfig
) -> None:
    storage = storage_for(s3_config)

    async def scenario() -> None:
        db = await store_in(tmp_path)
        await session_row(db, "live1")
        store = open_recording_store(s3_config, tmp_path, db, "node-a")
        await store.start()
        sink = store.open_session(meta("live1"), on_failure=lambda reason: None)
        sink.output(b"first part\r\n")

        async def uploaded_prefix() -> bytes:
            chunks = contiguous_chunks(await storage.list(parts_prefix("live1")))
            return b"".join([await storage.get(c.key) for c in chunks])

        prefix = await wait_for(lambda: _holding(uploaded_prefix, b"first part"))
        assert prefix.endswith(b"\n") and read_cast_bytes(prefix)[0] == ["first part\r\n"]
        sink.output(b"second part\r\n")
        await wait_for(lambda: _holding(uploaded_prefix, b"second part"))
        assert (tmp_path / "recordings" / "live1.cast").exists()  # the spool, while live
        sink.close()
        chunks = await db.recording_chunks("live1")
        assert len(chunks) >= 2 and chunks[0].key.startswith("parts/live1/00000000-")
        row = await wait_for(lambda: _complete(db, "live1"))
        final = await storage.get(final_key("live1"))
        assert row.size == len(final) and row.sha256 == hashlib.sha256(final).hexdigest()
        assert row.location == f"{s3_config.url}/live1.cast"
        assert read_cast_bytes(final)[0] == ["first part\r\n", "second part\r\n"]
        assert await storage.list(parts_prefix("live1")) == []  # chunks deleted
        assert not (tmp_path / "recordings" / "live1.cast").exists()  # spool deleted
        assert sum(c.size for c in chunks) == len(final)
        await store.stop()
        await db.close()
        with open_recording(row.location, s3_config, tmp_path) as stream:  # read from S3
            assert stream.read() == final

    asyncio.run(scenario())


async def _holding(fetch, needle: bytes) -> bytes | None:
    data = await fetch()
    return data if needle in data else None


async def _complete(db, session_id: str):
    row = await db.get_recording(session_id)
    return row if row is not None and row.completed else None


def read_cast_bytes(data: bytes) -> tuple[list[str], str | None]:
    import io

    cast = read_cast(io.BytesIO(data))
    return [e.data for e in cast.events if e.kind == "o"], cast.header.title


def test_a_taken_chunk_key_is_never_overwritten(
    tmp_path: Path, s3_config: RecordingsConfig
) -> None:
    """Create-only PUTs: a chunk key holding other bytes stops the upload, not replaced."""
    storage = storage_for(s3_config)

    async def scenario() -> None:
        await storage.put_create(chunk_key("taken", 0, 0), b"someone else's bytes\n")
        with pytest.raises(ObjectExists):
            await storage.put_create(chunk_key("taken", 0, 0), b"again\n")
        db = await store_in(tmp_path)
        await session_row(db, "taken")
        store = open_recording_store(s3_config, tmp_path, db, "node-a")
        await store.start()
        sink = store.open_session(meta("taken"), on_failure=lambda reason: None)
        sink.output(b"mine\r\n")
        sink.flush()
        await asyncio.sleep(1.0)
        assert await storage.get(chunk_key("taken", 0, 0)) == b"someone else's bytes\n"
        assert store.uploader.live["taken"].stuck  # type: ignore[attr-defined]
        sink.close()
        await wait_for(lambda: _complete(db, "taken"))
        assert b"mine" in await storage.get(final_key("taken"))  # the spool is the truth
        await store.stop()
        await db.close()

    asyncio.run(scenario())


def test_another_node_completes_an_abandoned_recording_once(
    tmp_path: Path, s3_config: RecordingsConfig
) -> None:
    """Node A's chunks are in S3, A is silent (killed); B and C race to complete it."""
    storage = storage_for(s3_config)
    header = b'{"version": 2, "width": 80, "height": 24, "title": "abandoned"}\n'
    lines = [header] + [b'[%d.0, "o", "line %d\\r\\n"]\n' % (n, n) for n in range(5)]

    async def scenario() -> None:
        db_a = await store_in(tmp_path, "node-a")
        await session_row(db_a, "gone1")
        await db_a.set_recording("gone1", f"{s3_config.url}/gone1.cast")
        await heartbeat(db_a, "node-a", time.time() - 60)  # then node A fell silent
        db_b, db_c = await store_in(tmp_path, "b"), await store_in(tmp_path, "c")
        offset = 0
        for seq, piece in enumerate((b"".join(lines[:3]), b"".join(lines[3:]))):
            await storage.put_create(chunk_key("gone1", seq, offset), piece)
            offset += len(piece)
        b_dir, c_dir = tmp_path / "b", tmp_path / "c"
        store_b = open_recording_store(
            RecordingsConfig(**{**_fields(s3_config), "spool": str(b_dir)}), tmp_path, db_b, "b"
        )
        store_c = open_recording_store(
            RecordingsConfig(**{**_fields(s3_config), "spool": str(c_dir)}), tmp_path, db_c, "c"
        )
        done = await asyncio.gather(store_b.complete_pending(), store_c.complete_pending())  # type: ignore[attr-defined]
        assert sorted(done) == [0, 1]
        row = await db_a.get_recording("gone1")
        final = await storage.get(final_key("gone1"))
        assert final == b"".join(lines)
        assert row is not None and row.completed
        assert row.sha256 == hashlib.sha256(final).hexdigest()
        for db in (db_a, db_b, db_c):
            await db.close()

    asyncio.run(scenario())


def _fields(config: RecordingsConfig) -> dict[str, object]:
    from dataclasses import asdict

    return asdict(config)


def test_a_restarted_node_completes_from_its_spool_which_holds_more_than_the_chunks(
    tmp_path: Path, s3_config: RecordingsConfig
) -> None:
    storage = storage_for(s3_config)
    header = b'{"version": 2, "width": 80, "height": 24}\n'
    first = b'[0.1, "o", "uploaded before the crash\\r\\n"]\n'
    later = b'[0.2, "o", "only in the spool\\r\\n"]\n'

    async def scenario() -> None:
        db = await store_in(tmp_path, "new-pid")
        await session_row(db, "crash1", node="old-pid")
        await db.set_recording("crash1", f"{s3_config.url}/crash1.cast")
        await end_session(db, "crash1", time.time() - 60)  # closed as interrupted at restart
        await storage.put_create(chunk_key("crash1", 0, 0), header + first)
        spool = tmp_path / "recordings"
        spool.mkdir(exist_ok=True)
        (spool / "crash1.cast").write_bytes(header + first + later + b'[0.3, "o", "cut')
        store = open_recording_store(s3_config, tmp_path, db, "new-pid")
        assert await store.complete_pending() == 1  # type: ignore[attr-defined]
        assert await storage.get(final_key("crash1")) == header + first + later
        assert not (spool / "crash1.cast").exists()
        await db.close()

    asyncio.run(scenario())


def test_an_unreachable_store_never_blocks_writing_and_leaks_nothing(tmp_path: Path) -> None:
    """Object storage down (a closed port): the sink writes at full speed into the spool,
    uploads are retried in the background, and closing the store leaves no descriptor open."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = RecordingsConfig(
        url="s3://nowhere-bucket/p",
        endpoint=f"http://127.0.0.1:{port}",
        access_key_id="x",
        secret_access_key="y",  # type: ignore[arg-type]
        upload_interval=0.05,
    )

    async def scenario() -> None:
        db = await store_in(tmp_path)
        await session_row(db, "down1")
        store = open_recording_store(config, tmp_path, db, "node-a")
        await store.start()
        before = open_fds()
        sink = store.open_session(meta("down1"), on_failure=lambda reason: None)
        started = time.monotonic()
        for n in range(2000):
            sink.output(b"line %d of output\r\n" % n)
            if n % 100 == 0:
                sink.flush()
                await asyncio.sleep(0)
        writing = time.monotonic() - started
        sink.close()
        await asyncio.sleep(0.5)
        await store.stop(timeout=2.0)
        assert writing < 1.0
        assert open_fds() <= before
        row = await db.get_recording("down1")
        assert row is not None and not row.completed and row.chunks == 0
        await db.close()

    asyncio.run(scenario())
    assert b"line 1999 of output" in (tmp_path / "recordings" / "down1.cast").read_bytes()
