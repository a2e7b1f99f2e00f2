"""Join a finished or abandoned recording's chunks into one object, with its sha256.

Any node may complete any recording: the node that served the session does
it as soon as its last chunk is up; the others, every `complete_interval`,
pick up recordings whose node has gone silent (it was killed) or whose session
ended more than `abandon_after` ago and are still not complete. A lease in
the database (`claim_recording`) makes one completer do each; the object storage's own
conditions are not relied on for this, because some S3 servers (Ceph RGW)
ignore them when a multipart upload completes.

A completing node that holds the session's spool file (it served the session,
or restarted after a crash) uploads the spool's whole lines as the object: the
spool is the source of truth and may hold lines the chunks lack. Without the
spool (another machine), the chunks are joined.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from bastion.recordings.s3.layout import Chunk, contiguous_chunks, final_key, parts_prefix
from bastion.recordings.s3.objects import ObjectExists, ObjectStorage, StorageError
from bastion.recordings.spool import read_range
from bastion.store.base import RecordingMetadata
from recorder.cast import whole_lines_length

log = logging.getLogger("bastion.recording")

LEASE = 300.0  # seconds a completer holds a recording before another may take over
SINGLE_PUT_MAX = 16 * 1024 * 1024  # up to this, one create-only PUT; past it, multipart
READ_PIECE = 8 * 1024 * 1024


class Completer:
    def __init__(
        self,
        storage: ObjectStorage,
        metadata: RecordingMetadata,
        *,
        store_url: str,
        spool_dir: Path,
    ) -> None:
        self.storage = storage
        self.metadata = metadata
        self.store_url = store_url
        self.spool_dir = spool_dir

    async def complete_abandoned(self, stale_before: float, skip: set[str]) -> int:
        """One pass: complete what nobody alive is finishing; returns how many completed."""
        rows = await self.metadata.recordings_to_complete(stale_before)
        done = 0
        for row in rows:
            if row.session_id in skip or not (row.location or "").startswith(self.store_url + "/"):
                continue
            if row.ended is not None and row.ended >= stale_before:
                continue  # just ended: its own node is completing it
            try:
                if await self.complete(row.session_id):
                    done += 1
            except StorageError as exc:
                log.warning("session %s: completing the recording failed: %s", row.session_id, exc)
        return done

    async def complete(self, session_id: str) -> bool:
        """Make `ID.cast`, record its size and sha256, delete the chunks and the spool.
        False if another node holds the lease."""
        if not await self.metadata.claim_recording(session_id, LEASE):
            return False
        stored = await self.storage.list(parts_prefix(session_id))
        spool = self._spool(session_id)
        if spool.is_file():
            size, digest = await self._put_spool(session_id, spool)
        else:
            chunks = contiguous_chunks(stored)
            size, digest = await self._join(session_id, chunks, sum(c.size for c in chunks))
        location = f"{self.store_url}/{final_key(session_id)}"
        if not await self.metadata.complete_recording(session_id, location, digest, size):
            log.warning("session %s: the recording was completed elsewhere", session_id)
        log.info("session %s: recording complete, %d bytes, sha256 %s", session_id, size, digest)
        await self.storage.delete([item.key for item in stored])
        spool.unlink(missing_ok=True)
        return True

    def _spool(self, session_id: str) -> Path:
        return self.spool_dir / final_key(session_id)

    async def _put_spool(self, session_id: str, path: Path) -> tuple[int, str]:
        whole = await asyncio.to_thread(_whole_length, path)
        key = final_key(session_id)
        digest = hashlib.sha256()
        if whole <= SINGLE_PUT_MAX:
            data = await asyncio.to_thread(read_range, path, 0, whole)
            try:
                await self.storage.put_create(key, data)
            except ObjectExists:  # an earlier completer got this far: take what is stored
                return await self._hash_existing(key, await self.storage.size(key) or 0)
            await asyncio.to_thread(digest.update, data)
            return len(data), digest.hexdigest()
        existing = await self.storage.size(key)
        if existing is not None:
            return await self._hash_existing(key, existing)

        async def body() -> AsyncIterator[bytes]:
            for start in range(0, whole, READ_PIECE):
                data = await asyncio.to_thread(
                    read_range, path, start, min(READ_PIECE, whole - start)
                )
                await asyncio.to_thread(digest.update, data)
                yield data

        await self.storage.put_stream(key, body())
        return whole, digest.hexdigest()

    async def _join(self, session_id: str, chunks: list[Chunk], total: int) -> tuple[int, str]:
        key = final_key(session_id)
        digest = hashlib.sha256()
        if total <= SINGLE_PUT_MAX:
            data = b"".join([await self.storage.get(chunk.key) for chunk in chunks])
            try:
                await self.storage.put_create(key, data)
            except ObjectExists:  # an earlier completer got this far: take what is stored
                data = await self.storage.get(key)
            await asyncio.to_thread(digest.update, data)
            return len(data), digest.hexdigest()

        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks:
                data = await self.storage.get(chunk.key)
                await asyncio.to_thread(digest.update, data)
                yield data

        existing = await self.storage.size(key)
        if existing is not None:
            return await self._hash_existing(key, existing)
        await self.storage.put_stream(key, body())
        return total, digest.hexdigest()

    async def _hash_existing(self, key: str, size: int) -> tuple[int, str]:
        digest = hashlib.sha256()
        async for data in self.storage.iter_chunks(key):
            await asyncio.to_thread(digest.update, data)
        return size, digest.hexdigest()


def _whole_length(path: Path) -> int:
    with path.open("rb") as handle:
        return whole_lines_length(handle, path.stat().st_size)
