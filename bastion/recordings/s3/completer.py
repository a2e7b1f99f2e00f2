"""Join a finished or abandoned recording's chunks into one object, with its sha256.

Any node may complete any recording: the node that served the session does
it as soon as its last chunk is up; the others, every `complete_interval`,
pick up recordings whose node has been silent for `abandon_after` (it was
killed) or that were closed long ago and are still not complete. A lease in
the catalog (`claim`) makes one completer do each; the object storage's own
conditions are not relied on for this, because some S3 servers (Ceph RGW)
ignore them when a multipart upload completes.

If the completing node holds the session's spool file (a node restarted after
a crash), the whole lines the chunks lack are uploaded first.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bastion.recordings.catalog import RecordingCatalog
from bastion.recordings.s3.layout import (
    Chunk,
    chunk_key,
    contiguous_chunks,
    final_key,
    parts_prefix,
)
from bastion.recordings.s3.objects import ObjectExists, ObjectStorage, StorageError
from bastion.recordings.spool import read_range
from recorder.cast import whole_lines_length

log = logging.getLogger("bastion.recording")

LEASE = 300.0  # seconds a completer holds a recording before another may take over
SINGLE_PUT_MAX = 16 * 1024 * 1024  # up to this, one create-only PUT; past it, multipart
RECOVER_CHUNK = 8 * 1024 * 1024


class Completer:
    def __init__(
        self,
        storage: ObjectStorage,
        catalog: RecordingCatalog,
        *,
        store_url: str,
        node: str,
        spool_dir: Path,
    ) -> None:
        self.storage = storage
        self.catalog = catalog
        self.store_url = store_url
        self.node = node
        self.spool_dir = spool_dir

    async def complete_abandoned(self, stale_before: float, skip: set[str]) -> int:
        """One pass: complete what nobody alive is finishing; returns how many completed."""
        now = time.time()
        rows = await self.catalog.completion_candidates(self.store_url, stale_before, now)
        done = 0
        for row in rows:
            if row.session_id in skip:
                continue
            try:
                if await self.complete(row.session_id):
                    done += 1
            except StorageError as exc:
                log.warning("session %s: completing the recording failed: %s", row.session_id, exc)
        return done

    async def complete(self, session_id: str) -> bool:
        """Join the chunks into `ID.cast`, record size and sha256, delete the chunks and spool.
        False if another node holds the lease."""
        now = time.time()
        if not await self.catalog.claim(session_id, self.node, now, now + LEASE):
            return False
        chunks = contiguous_chunks(await self.storage.list(parts_prefix(session_id)))
        chunks += await self._recover_from_spool(session_id, chunks)
        total = sum(chunk.size for chunk in chunks)
        size, digest = await self._join(session_id, chunks, total)
        await self.catalog.recording_completed(session_id, size, digest, time.time())
        log.info("session %s: recording complete, %d bytes, sha256 %s", session_id, size, digest)
        await self.storage.delete([chunk.key for chunk in chunks])
        self._spool(session_id).unlink(missing_ok=True)
        return True

    def _spool(self, session_id: str) -> Path:
        return self.spool_dir / final_key(session_id)

    async def _recover_from_spool(self, session_id: str, chunks: list[Chunk]) -> list[Chunk]:
        """Upload whole lines the spool holds past the chunks (after a crash and restart)."""
        path = self._spool(session_id)
        if not path.is_file():
            return []
        whole = await asyncio.to_thread(_whole_length, path)
        offset = sum(chunk.size for chunk in chunks)
        seq = len(chunks)
        added = []
        while offset < whole:
            data = await asyncio.to_thread(
                read_range, path, offset, min(RECOVER_CHUNK, whole - offset)
            )
            key = chunk_key(session_id, seq, offset)
            try:
                await self.storage.put_create(key, data)
            except ObjectExists:
                if await self.storage.size(key) != len(data):
                    break  # someone else's bytes: join what is certain
            added.append(Chunk(key, seq, offset, len(data)))
            await self.catalog.chunk_stored(session_id, seq, offset, len(data), time.time())
            offset += len(data)
            seq += 1
        return added

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
