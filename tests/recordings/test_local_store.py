"""The local recording store, the sink's failure path and bounded input, and the catalog."""

from __future__ import annotations

import asyncio
import errno
import hashlib
import subprocess
import sys
from pathlib import Path

from recording_helpers import meta, open_fds, session_row, store_in

from bastion.recordings import open_recording, open_recording_store
from bastion.recordings.config import RecordingsConfig
from recorder.cast import read_cast


def asciinema_cat(path: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "asciinema", "cat", str(path)], capture_output=True, timeout=60
    )


def test_a_local_recording_is_written_catalogued_and_read_back(tmp_path: Path) -> None:
    config = RecordingsConfig()

    async def scenario():
        db = await store_in(tmp_path)
        await session_row(db, "s1")
        store = open_recording_store(config, tmp_path, db, "node-a")
        await store.start()
        sink = store.open_session(meta("s1"), on_failure=lambda reason: None)
        sink.output(b"hello \x1b[1mworld\x1b[0m\r\n")
        sink.input(b"typed\r")
        sink.resize(100, 30)
        sink.marker("deny: some-rule")
        sink.close()
        await store.stop()
        row = await db.get_recording("s1")
        await db.close()
        return row

    row = asyncio.run(scenario())
    path = tmp_path / "recordings" / "s1.cast"
    assert row is not None and row.location == str(path) and row.completed
    assert row.size == path.stat().st_size
    assert row.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    with open_recording(row.location, config, tmp_path) as stream:
        cast = read_cast(stream)
    assert [(e.kind, e.data) for e in cast.events] == [
        ("o", "hello \x1b[1mworld\x1b[0m\r\n"),
        ("i", "typed\r"),
        ("r", "100x30"),
        ("m", "deny: some-rule"),
    ]
    assert cast.header.title == "test -> s1" and cast.header.command == "echo hi"


def test_exec_input_past_the_limit_is_counted_not_recorded(tmp_path: Path) -> None:
    config = RecordingsConfig(max_input_bytes=10)

    async def scenario():
        db = await store_in(tmp_path)
        await session_row(db, "s2")
        store = open_recording_store(config, tmp_path, db, "node-a")
        await store.start()
        sink = store.open_session(meta("s2"), on_failure=lambda reason: None)
        sink.input(b"0123456")
        sink.input(b"789abcdef")
        sink.input(b"more")
        skipped = sink.input_skipped
        sink.close()
        await store.stop()
        await db.close()
        return skipped

    assert asyncio.run(scenario()) == 10
    cast = read_cast(tmp_path / "recordings" / "s2.cast")
    assert "".join(e.data for e in cast.events if e.kind == "i") == "0123456789"
    markers = [e.data for e in cast.events if e.kind == "m"]
    assert markers == [
        "input past 10 bytes is counted, not recorded",
        "input not recorded: 10 bytes",
    ]


def test_a_failing_sink_reports_once_releases_its_descriptor_and_stays_valid(
    tmp_path: Path,
) -> None:
    """A real failure: the spool's descriptor is swapped for one on /dev/full (ENOSPC)."""
    import os

    reasons: list[str] = []

    async def scenario() -> None:
        db = await store_in(tmp_path)
        store = open_recording_store(RecordingsConfig(), tmp_path, db, "node-a")
        await store.start()
        before = open_fds()
        for n in range(5):
            await session_row(db, f"f{n}")
            sink = store.open_session(meta(f"f{n}"), on_failure=reasons.append)
            sink.output(b"kept line\r\n")
            sink.flush()
            spool = sink._writer._sink  # type: ignore[union-attr]
            full = os.open("/dev/full", os.O_WRONLY)
            os.dup2(full, spool.fd)  # the recording's descriptor now writes to a full device
            os.close(full)
            sink.output(b"this line cannot be written\r\n")
            sink.flush()
            sink.output(b"nor this one\r\n")
            sink.close()
        await store.stop()
        assert open_fds() == before
        rows = [await db.get_recording(f"f{n}") for n in range(5)]
        path = tmp_path / "recordings" / "f0.cast"  # what was kept is final, and hashed
        assert rows[0] is not None and rows[0].size == path.stat().st_size
        await db.close()

    asyncio.run(scenario())
    assert reasons == ["recording failed: No space left on device"] * 5
    path = tmp_path / "recordings" / "f0.cast"
    assert [e.data for e in read_cast(path).events] == ["kept line\r\n"]
    assert asciinema_cat(path).returncode == 0


def test_a_recording_that_cannot_be_created_raises_oserror(tmp_path: Path) -> None:
    async def scenario() -> None:
        db = await store_in(tmp_path)
        await session_row(db, "dup")
        store = open_recording_store(RecordingsConfig(), tmp_path, db, "node-a")
        await store.start()
        store.open_session(meta("dup"), on_failure=lambda reason: None).close()
        try:
            store.open_session(meta("dup"), on_failure=lambda reason: None)
        except OSError as exc:
            assert exc.errno == errno.EEXIST  # never overwrites a recording
        else:
            raise AssertionError("a second recording of one session was opened")
        await store.stop()
        await db.close()

    asyncio.run(scenario())


def test_recordings_config_validates_and_hides_the_secret(tmp_path: Path) -> None:
    import pytest

    from bastion.errors import ConfigError
    from bastion.recordings.config import parse_recordings

    warnings: list[str] = []
    config = parse_recordings(
        {
            "url": "s3://my-bucket/rec/",
            "endpoint": "http://127.0.0.1:9000",
            "secret_access_key": "s3cr3t",
            "on_failure": "close",
            "colour": 1,
        },
        "bastion.toml",
        warnings,
    )
    assert config.s3 is not None and (config.s3.bucket, config.s3.prefix) == ("my-bucket", "rec")
    assert "s3cr3t" not in repr(config) and config.secret_access_key == "s3cr3t"
    assert warnings == ["bastion.toml: unknown key recordings.colour ignored"]
    for bad in (
        {"url": "ftp://x"},
        {"url": "s3://"},
        {"on_failure": "explode"},
        {"endpoint": "http://s3.example.com"},  # plain http off loopback
        {"max_input_bytes": -1},
        {"upload_interval": 0},
    ):
        with pytest.raises(ConfigError):
            parse_recordings(bad, "bastion.toml", [])
