"""The store's interface as the rest of the bastion sees it.

`Store` (bastion.store) is the class whose public coroutines are the domain
operations; both backends inherit it from bastion/store/sql/store.py. The
protocols here name the slices other parts need, so they can be given a
fake-free narrower type: the recording store needs only `RecordingMetadata`.
"""

from __future__ import annotations

from typing import Protocol

from bastion.store.records import RecordingChunk, RecordingRecord


class RecordingMetadata(Protocol):
    """What a recording store (local directory, S3) keeps in the database.

    Semantics are in bastion/store/__init__.py's docstring; the contract
    suite (tests/store/test_sessions_and_nodes.py) runs them on both backends.
    """

    async def set_recording(self, session_id: str, location: str) -> None: ...

    async def add_recording_chunk(
        self, session_id: str, seq: int, key: str, size: int, sha256: str | None = None
    ) -> bool: ...

    async def recording_chunks(self, session_id: str) -> list[RecordingChunk]: ...

    async def get_recording(self, session_id: str) -> RecordingRecord | None: ...

    async def claim_recording(self, session_id: str, seconds: float) -> bool: ...

    async def complete_recording(
        self, session_id: str, location: str, sha256: str, size: int
    ) -> bool: ...

    async def recordings_to_complete(
        self, node_stale_before: float, limit: int = 100
    ) -> list[RecordingRecord]: ...
