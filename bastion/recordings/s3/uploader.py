"""Send live spool files to object storage in create-only chunks while sessions run.

Every `upload_interval` each spool's new whole lines (`[uploaded, length)`,
at most CHUNK_MAX) go up as one object `parts/ID/SEQ-OFFSET` with
`If-None-Match: *`, so nothing ever overwrites a chunk (a retried PUT whose
first answer was lost finds its own bytes there and moves on). One chunk per
session is in flight at a time; a store that fails is retried with backoff
while the spool keeps growing on disk: the relay never waits for any of it.
After a node dies, the chunks in storage are a readable asciicast prefix that
ends at most about `upload_interval` plus the writer's 100 ms behind what the
agent saw.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bastion.recordings.s3.layout import chunk_key
from bastion.recordings.s3.objects import ObjectExists, ObjectStorage, StorageError
from bastion.recordings.spool import read_range
from bastion.store.base import RecordingMetadata

log = logging.getLogger("bastion.recording")

CHUNK_MAX = 8 * 1024 * 1024
PARALLEL = 8  # chunk uploads in flight across all sessions
BACKOFF_MAX = 30.0


@dataclass
class LiveUpload:
    """One spool being uploaded; `length()` is how many bytes of whole lines it holds."""

    session_id: str
    path: Path
    length: Callable[[], int]
    uploaded: int = 0
    seq: int = 0
    final_length: int | None = None  # set when the writer closed
    busy: bool = False
    stuck: str | None = None  # a chunk key held different bytes: stop, leave it to the spool
    failures: int = 0
    retry_at: float = 0.0

    @property
    def target(self) -> int:
        return self.final_length if self.final_length is not None else self.length()

    @property
    def done(self) -> bool:
        return self.final_length is not None and (
            self.uploaded >= self.final_length or bool(self.stuck)
        )


class Uploader:
    def __init__(
        self,
        storage: ObjectStorage,
        metadata: RecordingMetadata,
        *,
        interval: float,
        on_done: Callable[[LiveUpload], None],
    ) -> None:
        self.storage = storage
        self.metadata = metadata
        self.interval = interval
        self.live: dict[str, LiveUpload] = {}
        self._on_done = on_done
        self._gate = asyncio.Semaphore(PARALLEL)
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, upload: LiveUpload) -> None:
        self.live[upload.session_id] = upload

    def closed(self, session_id: str, length: int) -> None:
        upload = self.live.get(session_id)
        if upload is not None:
            upload.final_length = length
            self.tick()  # send the last lines now, not at the next interval

    async def run_forever(self) -> None:
        try:
            while True:
                self.tick()
                await asyncio.sleep(self.interval)
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def drain(self, timeout: float) -> None:
        """Upload what the spools hold now (at shutdown), within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.tick(force=True)
            pending = [u for u in self.live.values() if not u.stuck and u.uploaded < u.target]
            if not pending and not self._tasks:
                return
            await asyncio.sleep(0.05)

    def tick(self, force: bool = False) -> None:
        now = time.monotonic()
        for upload in list(self.live.values()):
            if upload.done and not upload.busy:
                self.live.pop(upload.session_id, None)
                self._on_done(upload)
                continue
            if upload.busy or upload.stuck or (upload.retry_at > now and not force):
                continue
            if upload.target > upload.uploaded:
                upload.busy = True
                task = asyncio.ensure_future(self._send(upload))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    async def _send(self, upload: LiveUpload) -> None:
        try:
            async with self._gate:
                await self._send_one(upload)
            upload.failures = 0
        except StorageError as exc:
            upload.failures += 1
            delay = min(BACKOFF_MAX, self.interval * 2**upload.failures)
            upload.retry_at = time.monotonic() + delay
            if upload.failures in (1, 5) or upload.failures % 50 == 0:
                log.warning(
                    "session %s: recording upload failed (%s); retrying, the spool keeps it",
                    upload.session_id,
                    exc,
                )
        except Exception:
            log.exception("session %s: recording upload failed", upload.session_id)
            upload.retry_at = time.monotonic() + BACKOFF_MAX
        finally:
            upload.busy = False
            if upload.done:
                self.tick()

    async def _send_one(self, upload: LiveUpload) -> None:
        start = upload.uploaded
        want = min(upload.target - start, CHUNK_MAX)
        data = await asyncio.to_thread(read_range, upload.path, start, want)
        if len(data) == CHUNK_MAX and upload.target - start > CHUNK_MAX:
            cut = data.rfind(b"\n") + 1
            data = data[:cut] if cut else data  # chunks end on a line when they can
        if not data:
            return
        key = chunk_key(upload.session_id, upload.seq, start)
        try:
            await self.storage.put_create(key, data)
        except ObjectExists:
            if await self.storage.size(key) != len(data):
                upload.stuck = f"{key} holds other bytes"
                log.error("session %s: %s; uploads stop", upload.session_id, upload.stuck)
                return
        upload.uploaded = start + len(data)
        upload.seq += 1
        await self.metadata.add_recording_chunk(upload.session_id, upload.seq - 1, key, len(data))
