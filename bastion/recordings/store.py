"""The recording-store interface: where sessions' asciicast recordings are written and read.

    store = open_recording_store(config.recordings, state_root, metadata, node=store.node)
    await store.start()                        # its own tasks: flush, upload, complete
    sink = store.open_session(header, on_failure=report)  # a RecordingSink
    sink.output(b"..."); sink.close()
    with open_recording(location, config.recordings, state_root) as stream: ...  # blocking
    await store.stop()

Two implementations, chosen by `[recordings] url`: `LocalRecordingStore`
("local", files in <state>/recordings) and `S3RecordingStore` ("s3://bucket/
prefix": the same local file as a spool, uploaded in create-only chunks while
the session runs and joined into one object when it ends). Both write through
the same spool, so the data path does the same cheap work for either and never
waits on the network. Only this package knows where a recording's bytes are:
the database holds the opaque `location` it was given (a local path, or
`s3://bucket/prefix/ID.cast`), chunk bookkeeping, the completion lease and
the completed object's size and sha256, through `RecordingMetadata`
(bastion/store/base.py; the store's docstring gives the semantics).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bastion.recordings.config import RecordingsConfig
from bastion.recordings.sink import RecordingHeader, RecordingSink
from bastion.recordings.spool import SpoolFile, open_whole_lines
from bastion.store.base import RecordingMetadata
from recorder.cast import AsciicastWriter

log = logging.getLogger("bastion.recording")

FLUSH_INTERVAL = 0.1  # buffered output reaches the spool within this (and the writer's 50 ms)


class RecordingUnavailable(Exception):
    """A recording cannot be read (missing file, object store unreachable)."""


class RecordingStore:
    """Behaviour shared by the stores: spool files, the open sinks, the flush task and
    the metadata writes (queued in order, never awaited by the data path)."""

    url: str = "local"

    def __init__(
        self, spool_dir: Path, metadata: RecordingMetadata, node: str, config: RecordingsConfig
    ) -> None:
        self.spool_dir = spool_dir
        self.metadata = metadata
        self.node = node
        self.config = config
        self.sinks: dict[str, RecordingSink] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._registered: dict[str, asyncio.Task[Any]] = {}
        self._loops: list[asyncio.Task[None]] = []

    # --- the write side (called on the event loop by the relay) ---------------------

    def open_session(
        self, meta: RecordingHeader, *, on_failure: Callable[[str], None]
    ) -> RecordingSink:
        """Create the session's spool file and write the header; raises OSError if it cannot."""
        path = self.spool_path(meta.session_id)
        try:
            spool = SpoolFile.create(path)
        except FileNotFoundError:  # a session before start() made the directory
            self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            spool = SpoolFile.create(path)
        try:
            writer = AsciicastWriter(
                spool,
                width=meta.width,
                height=meta.height,
                title=meta.title,
                timestamp=meta.timestamp,
                command=meta.command,
            )
        except BaseException:
            spool.close()
            raise
        sink = RecordingSink(
            meta,
            writer,
            max_input_bytes=self.config.max_input_bytes,
            on_failure=on_failure,
            on_closed=self._sink_closed,
        )
        self.sinks[meta.session_id] = sink
        self._spooled(meta.session_id, spool)
        self._registered[meta.session_id] = self.submit(
            self.metadata.set_recording(meta.session_id, self.location(meta.session_id))
        )
        return sink

    async def registered(self, session_id: str) -> None:
        """Wait until the database knows the recording (before completing it)."""
        task = self._registered.pop(session_id, None)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    def location(self, session_id: str) -> str:
        """What the database keeps as where the session's recording is (opaque to it)."""
        return str(self.spool_path(session_id).absolute())

    def spool_path(self, session_id: str) -> Path:
        return self.spool_dir / self.key_for(session_id)

    @staticmethod
    def key_for(session_id: str) -> str:
        return f"{session_id}.cast"

    def _spooled(self, session_id: str, spool: SpoolFile) -> None:
        """A new spool exists (the S3 store starts uploading it)."""

    def _sink_closed(self, sink: RecordingSink, error: str | None) -> None:
        self.sinks.pop(sink.meta.session_id, None)
        self._finished(sink.meta.session_id, sink.bytes_written)

    def _finished(self, session_id: str, length: int) -> None:
        """The writer is done with `length` bytes of whole lines."""

    def flush_all(self) -> None:
        for sink in list(self.sinks.values()):
            sink.flush()

    def submit(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run metadata or storage work in the background, kept and logged if it fails."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("recording bookkeeping failed: %s", task.exception())

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        self.spool_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._loops.append(asyncio.ensure_future(self._flush_forever()))

    async def run_forever(self) -> None:
        """Start the store's loops and wait (the server cancels this, then calls stop())."""
        await self.start()
        await asyncio.Event().wait()

    async def stop(self, timeout: float = 10.0) -> None:
        """Flush open sinks, stop the background loops, and let queued work finish."""
        self.flush_all()
        for task in self._loops:
            task.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops.clear()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL)
            self.flush_all()


class LocalRecordingStore(RecordingStore):
    """Recordings are files in one directory (by default <state>/recordings); a file is
    final when its session's writer closes it."""

    url = "local"

    def _finished(self, session_id: str, length: int) -> None:
        self.submit(self._complete(session_id))

    async def _complete(self, session_id: str) -> None:
        """A closed local file is final: its size and sha256 go to the database."""
        await self.registered(session_id)
        size, digest = await asyncio.to_thread(file_sha256, self.spool_path(session_id))
        await self.metadata.complete_recording(session_id, self.location(session_id), digest, size)


def file_sha256(path: Path) -> tuple[int, str]:
    """Blocking: (size, sha256) of the whole lines of a file."""
    digest = hashlib.sha256()
    size = 0
    with open_whole_lines(path) as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()
