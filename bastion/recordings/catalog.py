"""What the recording store asks of the database: `RecordingCatalog`.

The recording store (bastion/recordings/) is the only code that knows where a
recording's bytes live; the database keeps, per session, a row that names the
store and the key inside it, how far the upload got, and the completed
object's size and sha256. Any store implementation (today
`bastion.store.recording_catalog.SqliteRecordingCatalog`; the async store
interface when it lands) provides these methods. Semantics, for whoever maps
them onto another backend:

- `recording_opened(row)`: insert the row of a new recording (state "open").
- `chunk_stored(session_id, seq, start, length, at)`: chunk `seq` (bytes
  `start`..`start+length` of the recording) is in object storage; record it
  and set `uploaded = start + length`, `chunks = seq + 1`. Idempotent.
- `recording_closed(session_id, length, at, error)`: the writer finished
  with `length` bytes of whole lines (state "closed"; `error` if it failed).
- `recording_completed(session_id, size, sha256, at)`: the recording is one
  object (or, for local files, final): state "complete", lease released.
- `node_seen(node, at)`: the node is alive (a heartbeat, every few seconds).
- `completion_candidates(store, stale_before, now, limit)`: recordings of
  `store` not complete and not leased (no lease, or `claimed_until < now`)
  that nobody alive is finishing: their node was last seen before
  `stale_before` (or never), or they were closed before `stale_before`.
- `claim(session_id, node, now, until)`: atomically take the completion lease
  (only if unleased or expired); True if this node now holds it.
- `locate(session_id)`: the row, or None.

All times are Unix seconds (time.time()).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RecordingRow:
    session_id: str
    store: str  # "local" or "s3://bucket/prefix": which recording store holds it
    key: str  # the name inside that store
    node: str  # the process that spools it
    state: str  # open | closed | complete
    started: float
    closed: float | None = None
    length: int | None = None
    uploaded: int = 0
    chunks: int = 0
    size: int | None = None
    sha256: str | None = None
    completed: float | None = None
    error: str | None = None


class RecordingCatalog(Protocol):
    async def recording_opened(self, row: RecordingRow) -> None: ...

    async def chunk_stored(
        self, session_id: str, seq: int, start: int, length: int, at: float
    ) -> None: ...

    async def recording_closed(
        self, session_id: str, length: int, at: float, error: str | None
    ) -> None: ...

    async def recording_completed(
        self, session_id: str, size: int, sha256: str | None, at: float
    ) -> None: ...

    async def node_seen(self, node: str, at: float) -> None: ...

    async def completion_candidates(
        self, store: str, stale_before: float, now: float, limit: int = 100
    ) -> list[RecordingRow]: ...

    async def claim(self, session_id: str, node: str, now: float, until: float) -> bool: ...

    async def locate(self, session_id: str) -> RecordingRow | None: ...
