"""The local file a recording is written to first, and reading files back as whole lines.

Every store writes a session's asciicast to a local spool file (for the local
store that file is the recording). The writer appends whole lines only, and
`SpoolFile.length` says how many bytes of whole lines are on disk, so an
uploader can send `[uploaded, length)` without looking for line ends.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from recorder.cast import FileSink, whole_lines_length


class SpoolFile(FileSink):
    """A FileSink that remembers its path."""

    def __init__(self, fd: int, path: Path) -> None:
        super().__init__(fd)
        self.path = path

    @classmethod
    def create(cls, path: Path) -> SpoolFile:
        return cls(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600), path)


def read_range(path: Path, start: int, length: int) -> bytes:
    """Blocking: `length` bytes of `path` from `start` (run it in a thread)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        parts = []
        while length > 0:
            part = os.pread(fd, length, start)
            if not part:
                break
            parts.append(part)
            start += len(part)
            length -= len(part)
        return b"".join(parts)
    finally:
        os.close(fd)


def open_whole_lines(path: Path) -> BinaryIO:
    """`path` opened for reading up to its last newline: a line cut by a crash or a full
    disk is left out, so what a player or an export gets is a valid recording."""
    handle = path.open("rb")
    try:
        limit = whole_lines_length(handle, os.fstat(handle.fileno()).st_size)
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return io.BufferedReader(_Limited(handle, limit))  # type: ignore[return-value]


class _Limited(io.RawIOBase):
    def __init__(self, handle: BinaryIO, limit: int) -> None:
        self._handle = handle
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: self._left]
        count = self._handle.readinto(view)  # type: ignore[attr-defined]
        self._left -= count or 0
        return count or 0

    def close(self) -> None:
        self._handle.close()
        super().close()


class ChunkStream(io.RawIOBase):
    """A readable stream over an iterator of byte strings (an object store's body)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while not self._pending:
            try:
                self._pending = bytes(next(self._chunks))
            except StopIteration:
                return 0
            except OSError:
                raise
            except Exception as exc:  # the store's own errors read as I/O errors
                raise OSError(f"reading the recording failed: {exc}") from None
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count


def stream_of(chunks: Iterator[bytes]) -> BinaryIO:
    return io.BufferedReader(ChunkStream(chunks), 1 << 20)  # type: ignore[return-value]
