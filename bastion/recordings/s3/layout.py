"""Where a recording's objects sit under the store's prefix.

    ID.cast                          the completed recording (one object)
    parts/ID/00000003-0000000000041210   chunk 3, holding bytes from offset 41210

A chunk's name carries its sequence number and offset, so a completer on any
node can check from a listing alone that the chunks join without a gap.
"""

from __future__ import annotations

from dataclasses import dataclass

from bastion.recordings.s3.objects import StoredObject


@dataclass(frozen=True)
class Chunk:
    key: str
    seq: int
    start: int
    size: int


def final_key(session_id: str) -> str:
    return f"{session_id}.cast"


def parts_prefix(session_id: str) -> str:
    return f"parts/{session_id}"


def chunk_key(session_id: str, seq: int, start: int) -> str:
    return f"{parts_prefix(session_id)}/{seq:08d}-{start:016d}"


def contiguous_chunks(objects: list[StoredObject]) -> list[Chunk]:
    """The chunks that join from offset 0 without a gap, in order (the rest is ignored)."""
    chunks = []
    for item in objects:
        name = item.key.rsplit("/", 1)[-1]
        seq_text, _, start_text = name.partition("-")
        if seq_text.isdigit() and start_text.isdigit():
            chunks.append(Chunk(item.key, int(seq_text), int(start_text), item.size))
    chunks.sort(key=lambda chunk: chunk.seq)
    joined, offset = [], 0
    for chunk in chunks:
        if chunk.start != offset or chunk.seq != len(joined):
            break
        joined.append(chunk)
        offset += chunk.size
    return joined
