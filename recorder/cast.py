"""asciicast v2 files: written while a session runs, read back after.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "s.cast"
    >>> w = AsciicastWriter.create(path, width=80, height=24, title="demo"); w.output(b"hi\\r\\n"); w.close()
    >>> [(e.kind, e.data) for e in read_cast(path).events]
    [('o', 'hi\\r\\n')]

Every byte of a session passes through `output()`, so it only appends to a
buffer; buffered output becomes one event when it exceeds 64 KiB, when an
event of another kind arrives, when the oldest buffered byte is older than
50 ms at the next call, or when `flush()` is called (the bastion calls it
every 100 ms). Each event is one JSON line handed to the writer's sink in
one call (`FileSink`: one writev), so a process killed with SIGKILL leaves a
file that players read, missing at most the output of the last ~100 ms.
The writer knows nothing of where its sink keeps the lines (a local file, a
spool uploaded elsewhere); `CastReader` reads any binary stream.
"""

from __future__ import annotations

import codecs
import json
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # the C encoder, ensure_ascii=False
from pathlib import Path
from typing import Any, BinaryIO, Protocol

COALESCE_BYTES = 64 * 1024
COALESCE_SECONDS = 0.05
MAX_HEADER_LINE = 64 * 1024
MAX_EVENT_LINE = 16 * 1024 * 1024


class CastFormatError(ValueError):
    """The file is not an asciicast v2 recording this reader accepts."""


@dataclass(frozen=True)
class CastHeader:
    width: int
    height: int
    timestamp: int | None = None
    title: str | None = None
    command: str | None = None
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Event:
    time: float
    kind: str  # "o" output, "i" input, "r" resize ("COLSxROWS"), "m" marker
    data: str


@dataclass(frozen=True)
class Cast:
    header: CastHeader
    events: list[Event]


class LineSink(Protocol):
    """Where a writer's lines go (a spool file, a test's list).

    Each call carries whole event lines and must land whole or not at all, so
    a reader never sees half a line from a writer that is still alive; a sink
    that fails raises OSError and stays as it was before the call.
    """

    def write_lines(self, parts: Sequence[bytes]) -> None: ...

    def close(self) -> None: ...


class FileSink:
    """A recording file created mode 0600 (never overwriting), appended with one writev a line.

    `length` counts the bytes of whole lines on disk. A write that fails (a full
    disk, an I/O error) cuts the file back to that length before raising, so the
    file stays a valid recording.
    """

    def __init__(self, fd: int, length: int = 0) -> None:
        self.fd = fd
        self.length = length

    @classmethod
    def create(cls, path: Path) -> FileSink:
        return cls(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600))

    def write_lines(self, parts: Sequence[bytes]) -> None:
        if self.fd < 0:
            raise ValueError("recording is closed")
        total = sum(len(part) for part in parts)
        try:
            written = os.writev(self.fd, parts)
            if written < total:  # rare: finish the line from where the kernel stopped
                rest = memoryview(b"".join(parts))[written:]
                while rest:
                    rest = rest[os.write(self.fd, rest) :]
        except OSError:
            self._cut_back()
            raise
        self.length += total

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self.fd, self.length)
        except OSError:
            pass  # the reader trims a cut last line anyway

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


class AsciicastWriter:
    def __init__(
        self,
        sink: LineSink,
        *,
        width: int,
        height: int,
        title: str,
        timestamp: int | None = None,
        command: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        """Write the header to `sink`; events follow as the session runs."""
        self._sink: LineSink | None = sink
        self._started = time.monotonic()
        self._out: list[bytes] = []
        self._out_size = 0
        self._out_since = 0.0
        self._decoders = {
            kind: codecs.getincrementaldecoder("utf-8")(errors="replace") for kind in "oi"
        }
        self.bytes_written = 0
        header: dict[str, object] = {
            "version": 2,
            "width": max(1, int(width)),
            "height": max(1, int(height)),
            "timestamp": int(time.time() if timestamp is None else timestamp),
            "title": title,
        }
        if command is not None:
            header["command"] = command
        if env:
            header["env"] = env
        self._write_line(json.dumps(header, ensure_ascii=False))

    @classmethod
    def create(cls, path: Path, **header: Any) -> AsciicastWriter:
        """Create `path` (mode 0600, never overwriting) and write the header (`__init__`'s
        keywords)."""
        sink = FileSink.create(path)
        try:
            return cls(sink, **header)
        except BaseException:
            sink.close()
            raise

    @property
    def closed(self) -> bool:
        return self._sink is None

    def output(self, data: bytes) -> None:
        if not data:
            return
        if len(data) > COALESCE_BYTES:
            # The relay hands over what one loop turn read (a megabyte or more): as events
            # of at most COALESCE_BYTES, lines stay bounded for readers, and a full disk
            # keeps the events that fitted instead of losing one huge one.
            for start in range(0, len(data), COALESCE_BYTES):
                self.output(data[start : start + COALESCE_BYTES])
            return
        now = time.monotonic()
        if not self._out:
            self._out_since = now
        elif now - self._out_since > COALESCE_SECONDS:
            self._flush_output()
            self._out_since = now
        self._out.append(data)
        self._out_size += len(data)
        if self._out_size >= COALESCE_BYTES:
            self._flush_output()

    def input(self, data: bytes) -> None:
        self._flush_output()
        self._text_event(time.monotonic(), "i", data)

    def resize(self, width: int, height: int) -> None:
        self._flush_output()
        self._event(time.monotonic(), "r", f"{int(width)}x{int(height)}")

    def marker(self, label: str) -> None:
        self._flush_output()
        self._event(time.monotonic(), "m", label)

    def flush(self) -> None:
        self._flush_output()

    def close(self) -> None:
        """Write what is buffered and close the sink; the sink is closed even if that fails."""
        if self._sink is None:
            return
        try:
            self._flush_output()
            for kind, decoder in self._decoders.items():
                tail = decoder.decode(b"", final=True)
                if tail:
                    self._event(time.monotonic(), kind, tail)
        finally:
            self.abandon()

    def abandon(self) -> None:
        """Close the sink without writing anything more (after a failed write)."""
        sink, self._sink = self._sink, None
        self._out.clear()
        self._out_size = 0
        if sink is not None:
            try:
                sink.close()
            except OSError:
                pass  # the descriptor is released either way

    def _flush_output(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        self._out_size = 0
        self._text_event(self._out_since, "o", data)

    def _text_event(self, at: float, kind: str, data: bytes) -> None:
        """One event of session bytes: escaped as bytes when they are valid UTF-8 (nearly always)."""
        decoder = self._decoders[kind]
        held = decoder.getstate()[0]
        if not held and data.isascii():
            raw = data  # the decoder has nothing to add or keep
        else:
            text = decoder.decode(data)
            if not text:
                return
            if "\ufffd" in text:  # invalid UTF-8 (or a literal U+FFFD): the C encoder
                self._event(at, kind, text)
                return
            raw = held + data if held else data
            kept = decoder.getstate()[0]
            if kept:
                raw = raw[: len(raw) - len(kept)]
        escaped = escape_json_utf8(raw)
        if escaped is None:
            self._event(at, kind, raw.decode("utf-8"))
            return
        self._write_vector([f'[{at - self._started:.6f}, "{kind}", "'.encode(), escaped, b'"]\n'])

    def _event(self, at: float, kind: str, text: str) -> None:
        self._write_line(f'[{at - self._started:.6f}, "{kind}", {encode_basestring(text)}]')

    def _write_line(self, line: str) -> None:
        self._write_vector([(line + "\n").encode("utf-8", errors="surrogateescape")])

    def _write_vector(self, parts: list[bytes]) -> None:
        """One sink call for a whole event line, so a crash never leaves half of one."""
        if self._sink is None:
            raise ValueError("recording is closed")
        self._sink.write_lines(parts)
        self.bytes_written += sum(len(part) for part in parts)


# What json.encoder.encode_basestring writes for the bytes terminal output holds most
# often (bell and backspace included: prompts set titles with BEL, progress bars use BS).
_COMMON_ESCAPES = (
    (b"\\", b"\\\\"),
    (b'"', b'\\"'),
    (b"\n", b"\\n"),
    (b"\r", b"\\r"),
    (b"\t", b"\\t"),
    (b"\x1b", b"\\u001b"),
    (b"\x08", b"\\b"),
    (b"\x07", b"\\u0007"),
)
_RARE_CONTROLS = tuple(
    bytes([byte]) for byte in range(0x20) if bytes([byte]) not in dict(_COMMON_ESCAPES)
)


def escape_json_utf8(data: bytes) -> bytes | None:
    """The JSON string body (as encode_basestring writes it) of valid UTF-8 `data`; None if
    a rarer control character needs the general encoder.

    Every byte of a session is recorded, so this works on the bytes themselves:
    a few C-speed `in`/`replace` passes, no decode to str and back (UTF-8
    multi-byte sequences never contain bytes below 0x80, so byte replaces are
    exact). bench/recorder_escape.py compares it with the C encoder.
    """
    for raw, escaped in _COMMON_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    for control in _RARE_CONTROLS:
        if control in data:
            return None
    return data


def whole_lines_length(handle: BinaryIO, size: int) -> int:
    """Bytes of `handle` (of `size` bytes) up to and including its last newline.

    A recording cut mid-line (a writer killed or a disk filled during a write)
    is read up to there, so players and exports see a valid file.
    """
    block = 64 * 1024
    end = size
    while end > 0:
        start = max(0, end - block)
        handle.seek(start)
        chunk = handle.read(end - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def read_cast(source: Path | BinaryIO, name: str | None = None) -> Cast:
    """Read a recording; a truncated last line (a crashed writer) is ignored."""
    with CastReader(source, name) as reader:
        return Cast(reader.header, list(reader))


class CastReader:
    """A recording read event by event, for files too large to hold in memory:
    `with CastReader(path_or_stream) as reader:` then `reader.header` and `for event in reader`.
    A stream given here is closed with the reader; `name` is what errors call it.
    """

    def __init__(self, source: Path | BinaryIO, name: str | None = None) -> None:
        self.path = name or str(source if isinstance(source, Path) else "recording")
        self._handle: BinaryIO = source.open("rb") if isinstance(source, Path) else source
        try:
            first = self._handle.readline(MAX_HEADER_LINE + 1)
            if len(first) > MAX_HEADER_LINE:
                raise CastFormatError(
                    f"{self.path}: header line longer than {MAX_HEADER_LINE} bytes"
                )
            self.header = _header(first, self.path)
        except BaseException:
            self._handle.close()
            raise

    def __enter__(self) -> CastReader:
        return self

    def __exit__(self, *_: object) -> None:
        self._handle.close()

    def skip_rest(self) -> int:
        """Read past every event left without parsing any; return how many bytes that was."""
        skipped = 0
        while block := self._handle.read(1 << 20):
            skipped += len(block)
        return skipped

    def __iter__(self) -> Iterator[Event]:
        number = 1
        while True:
            line = self._handle.readline(MAX_EVENT_LINE + 1)
            number += 1
            if not line:
                return
            if len(line) > MAX_EVENT_LINE:
                raise CastFormatError(
                    f"{self.path}:{number}: event longer than {MAX_EVENT_LINE} bytes"
                )
            try:
                event = _event(json.loads(line))
            except (ValueError, TypeError) as exc:
                if not line.endswith(b"\n") and not self._handle.read(1):
                    return  # the writer died mid-line
                raise CastFormatError(f"{self.path}:{number}: bad event: {exc}") from None
            yield event


def _header(line: bytes, path: str) -> CastHeader:
    try:
        data = json.loads(line)
    except ValueError:
        raise CastFormatError(f"{path}: first line is not a JSON header") from None
    if not isinstance(data, dict) or data.get("version") != 2:
        raise CastFormatError(f"{path}: not an asciicast v2 header")
    width, height = data.get("width"), data.get("height")
    if not isinstance(width, int) or not isinstance(height, int) or width < 1 or height < 1:
        raise CastFormatError(f"{path}: header lacks a valid width and height")
    env = data.get("env") or {}
    return CastHeader(
        width=width,
        height=height,
        timestamp=data.get("timestamp") if isinstance(data.get("timestamp"), int) else None,
        title=data.get("title") if isinstance(data.get("title"), str) else None,
        command=data.get("command") if isinstance(data.get("command"), str) else None,
        env={str(k): str(v) for k, v in env.items()} if isinstance(env, dict) else {},
    )


def _event(data: object) -> Event:
    if (
        not isinstance(data, list)
        or len(data) != 3
        or not isinstance(data[0], (int, float))
        or not isinstance(data[1], str)
        or not isinstance(data[2], str)
    ):
        raise ValueError("expected [time, kind, data]")
    return Event(float(data[0]), data[1], data[2])
