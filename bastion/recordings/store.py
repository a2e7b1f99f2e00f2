"""The recording-store interface: where sessions' asciicast recordings are written and read.

    store = open_recording_store(config.recordings, state_root, catalog, node="web-a:1234")
    await store.start()                        # its own tasks: flush, upload, complete
    sink = store.open_session(header, on_failure=report)  # a RecordingSink
    sink.output(b"..."); sink.close()
    with open_recording(row, config.recordings, state_root) as stream: ...  # any store's
    await store.stop()

Two implementations, chosen by `[recordings] url`: `LocalRecordingStore`
("local", files in <state>/recordings) and `S3RecordingStore` ("s3://bucket/
prefix": the same local file as a spool, uploaded in create-only chunks while
the session runs and joined into one object when it ends). Both write through
the same spool, so the data path does the same cheap work for either and never
waits on the network. Only this package knows where a recording's bytes are;
the database holds the store URL and key it was given (catalog.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from bastion.recordings.catalog import RecordingCatalog, RecordingRow
from bastion.recordings.config import RecordingsConfig
from bastion.recordings.sink import RecordingHeader, RecordingSink
from bastion.recordings.spool import SpoolFile
from recorder.cast import AsciicastWriter

log = logging.getLogger("bastion.recording")

FLUSH_INTERVAL = 0.1  # buffered output reaches the spool within this (and the writer's 50 ms)


class RecordingUnavailable(Exception):
    """A recording cannot be read (missing file, object store unreachable)."""


class RecordingStore:
    """Behaviour shared by the stores: spool files, the open sinks, the flush task and
    the catalog writes (queued in order, never awaited by the data path)."""

    url: str = "local"

    def __init__(
        self, spool_dir: Path, catalog: RecordingCatalog, node: str, config: RecordingsConfig
    ) -> None:
        self.spool_dir = spool_dir
        self.catalog = catalog
        self.node = node
        self.config = config
        self.sinks: dict[str, RecordingSink] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
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
        row = RecordingRow(
            session_id=meta.session_id,
            store=self.url,
            key=self.key_for(meta.session_id),
            node=self.node,
            state="open",
            started=time.time(),
        )
        self._spooled(meta.session_id, spool)
        self.submit(self.catalog.recording_opened(row))
        return sink

    def spool_path(self, session_id: str) -> Path:
        return self.spool_dir / self.key_for(session_id)

    @staticmethod
    def key_for(session_id: str) -> str:
        return f"{session_id}.cast"

    def _spooled(self, session_id: str, spool: SpoolFile) -> None:
        """A new spool exists (the S3 store starts uploading it)."""

    def _sink_closed(self, sink: RecordingSink, error: str | None) -> None:
        self.sinks.pop(sink.meta.session_id, None)
        self.submit(
            self.catalog.recording_closed(
                sink.meta.session_id, sink.bytes_written, time.time(), error
            )
        )
        self._finished(sink.meta.session_id, sink.bytes_written)

    def _finished(self, session_id: str, length: int) -> None:
        """The writer is done with `length` bytes of whole lines."""

    def flush_all(self) -> None:
        for sink in list(self.sinks.values()):
            sink.flush()

    def submit(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run catalog or storage work in the background, kept and logged if it fails."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

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
        self.submit(self.catalog.recording_completed(session_id, length, None, time.time()))
