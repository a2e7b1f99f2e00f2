"""`S3RecordingStore`: recordings in S3-compatible object storage, through a local spool.

The writer appends to `<spool>/ID.cast` exactly as the local store does; the
uploader (uploader.py) sends its new whole lines as create-only chunks while
the session runs, and when the writer closes and the last chunk is up, the
completer (completer.py) joins them into `ID.cast` and records its sha256.
The completer on every node also finishes recordings whose node went silent
(the node heartbeats are the server's, bastion/nodes.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import BinaryIO

from bastion.recordings.config import RecordingsConfig, S3Location, parse_s3_url
from bastion.recordings.s3.completer import Completer
from bastion.recordings.s3.layout import contiguous_chunks, final_key, parts_prefix
from bastion.recordings.s3.objects import ObjectStorage, StorageError
from bastion.recordings.s3.uploader import LiveUpload, Uploader
from bastion.recordings.spool import SpoolFile, open_whole_lines, stream_of
from bastion.recordings.store import RecordingStore, RecordingUnavailable
from bastion.store.base import RecordingMetadata

log = logging.getLogger("bastion.recording")


class S3RecordingStore(RecordingStore):
    def __init__(
        self,
        location: S3Location,
        spool_dir: Path,
        metadata: RecordingMetadata,
        node: str,
        config: RecordingsConfig,
        storage: ObjectStorage | None = None,
    ) -> None:
        super().__init__(spool_dir, metadata, node, config)
        self.url = location.url
        self.storage = storage or ObjectStorage(location, config)
        self.uploader = Uploader(
            self.storage, metadata, interval=config.upload_interval, on_done=self._uploaded
        )
        self.completer = Completer(self.storage, metadata, store_url=self.url, spool_dir=spool_dir)

    def location(self, session_id: str) -> str:
        return f"{self.url}/{final_key(session_id)}"

    def _spooled(self, session_id: str, spool: SpoolFile) -> None:
        self.uploader.add(LiveUpload(session_id, spool.path, lambda: spool.length))

    def _finished(self, session_id: str, length: int) -> None:
        self.uploader.closed(session_id, length)

    def _uploaded(self, upload: LiveUpload) -> None:
        self.submit(self._complete_quietly(upload.session_id))

    async def _complete_quietly(self, session_id: str) -> None:
        await self.registered(session_id)
        try:
            await self.completer.complete(session_id)
        except StorageError as exc:  # the periodic pass retries it
            log.warning("session %s: completing the recording failed: %s", session_id, exc)

    async def start(self) -> None:
        await super().start()
        self._loops += [
            asyncio.ensure_future(self.uploader.run_forever()),
            asyncio.ensure_future(self._complete_forever()),
        ]

    async def stop(self, timeout: float = 10.0) -> None:
        self.flush_all()
        await self.uploader.drain(timeout / 2)
        await super().stop(timeout / 2)

    async def _complete_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.complete_interval)
            try:
                await self.complete_pending()
            except Exception:  # keep completing; a failed pass is logged
                log.exception("completing abandoned recordings failed")

    async def complete_pending(self) -> int:
        """One completer pass over recordings nobody alive is finishing."""
        stale_before = time.time() - self.config.abandon_after
        live = set(self.sinks) | set(self.uploader.live)
        return await self.completer.complete_abandoned(stale_before, skip=live)


def open_s3_recording(location: str, config: RecordingsConfig, spool_dir: Path) -> BinaryIO:
    """Blocking: the local spool if this machine has it, else the completed object, else the
    chunks uploaded so far (a live or abandoned session's readable prefix)."""
    bucket_url, _, name = location.rpartition("/")
    session_id = name.removesuffix(".cast")
    spool = spool_dir / final_key(session_id)
    try:
        return open_whole_lines(spool)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise RecordingUnavailable(f"recording of session {session_id}: {exc.strerror}") from None
    storage = ObjectStorage(parse_s3_url(bucket_url), config)
    try:
        chunks = contiguous_chunks(storage.list_sync(parts_prefix(session_id)))
        if not chunks:  # completed (or nothing uploaded yet)
            return stream_of(storage.read_sync(final_key(session_id)))
        return stream_of(piece for chunk in chunks for piece in storage.read_sync(chunk.key))
    except StorageError as exc:
        raise RecordingUnavailable(f"recording of session {session_id}: {exc}") from None
