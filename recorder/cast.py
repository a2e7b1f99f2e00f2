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
every 100 ms). Each event is one JSON line written with a single os.write,
so a process killed with SIGKILL leaves a file that players read, missing at
most the output of the last ~100 ms.
"""

from __future__ import annotations

import codecs
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from json.encoder import encode_basestring  # the C encoder, ensure_ascii=False
from pathlib import Path

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


class AsciicastWriter:
    def __init__(self, fd: int, started: float) -> None:
        self._fd = fd
        self._started = started
        self._out: list[bytes] = []
        self._out_size = 0
        self._out_since = 0.0
        self._decoders = {
            kind: codecs.getincrementaldecoder("utf-8")(errors="replace") for kind in "oi"
        }
        self.bytes_written = 0

    @classmethod
    def create(
        cls,
        path: Path,
        *,
        width: int,
        height: int,
        title: str,
        timestamp: int | None = None,
        command: str | None = None,
        env: dict[str, str] | None = None,
    ) -> AsciicastWriter:
        """Create `path` (mode 0600, never overwriting) and write the header."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
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
        writer = cls(fd, time.monotonic())
        writer._write_line(json.dumps(header, ensure_ascii=False))
        return writer

    def output(self, data: bytes) -> None:
        if not data:
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
        text = self._decoders["i"].decode(data)
        if text:
            self._event(time.monotonic(), "i", text)

    def resize(self, width: int, height: int) -> None:
        self._flush_output()
        self._event(time.monotonic(), "r", f"{int(width)}x{int(height)}")

    def marker(self, label: str) -> None:
        self._flush_output()
        self._event(time.monotonic(), "m", label)

    def flush(self) -> None:
        self._flush_output()

    def close(self) -> None:
        if self._fd < 0:
            return
        self._flush_output()
        for kind, decoder in self._decoders.items():
            tail = decoder.decode(b"", final=True)
            if tail:
                self._event(time.monotonic(), kind, tail)
        os.close(self._fd)
        self._fd = -1

    def abandon(self) -> None:
        """Close the file after a failed write, dropping what was buffered."""
        self._out.clear()
        self._out_size = 0
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            try:
                os.close(fd)
            except OSError:
                pass

    def _flush_output(self) -> None:
        if not self._out:
            return
        data = b"".join(self._out) if len(self._out) > 1 else self._out[0]
        self._out.clear()
        self._out_size = 0
        decoder = self._decoders["o"]
        if data.isascii() and not decoder.getstate()[0]:
            escaped = _escape_ascii(data)
            if escaped is not None:
                stamp = f'[{self._out_since - self._started:.6f}, "o", "'.encode()
                self._write_vector([stamp, escaped, b'"]\n'])
                return
        text = decoder.decode(data)
        if text:
            self._event(self._out_since, "o", text)

    def _event(self, at: float, kind: str, text: str) -> None:
        self._write_line(f'[{at - self._started:.6f}, "{kind}", {encode_basestring(text)}]')

    def _write_line(self, line: str) -> None:
        self._write_bytes((line + "\n").encode("utf-8", errors="surrogateescape"))

    def _write_bytes(self, data: bytes) -> None:
        self._write_vector([data])

    def _write_vector(self, parts: list[bytes]) -> None:
        """One writev for a whole event line, so a crash never leaves half of one."""
        if self._fd < 0:
            raise ValueError("recording is closed")
        total = sum(len(part) for part in parts)
        written = os.writev(self._fd, parts)
        if written < total:  # rare: finish the line from where the kernel stopped
            rest = memoryview(b"".join(parts))[written:]
            while rest:
                rest = rest[os.write(self._fd, rest) :]
        self.bytes_written += total


# Control characters other than these five are rare in text output: the slow path takes them.
_CONTROL = bytes(range(0x20))
_COMMON_ESCAPES = (
    (b"\\", b"\\\\"),
    (b'"', b'\\"'),
    (b"\n", b"\\n"),
    (b"\r", b"\\r"),
    (b"\t", b"\\t"),
    (b"\x1b", b"\\u001b"),
)


def _escape_ascii(data: bytes) -> bytes | None:
    """JSON string body for ASCII bytes using C-speed replaces; None if a rarer escape is needed.

    Every byte of a session is recorded, so the common case (ASCII text with
    newlines and colour codes) must cost a few memchr passes, not a per-
    character encoder.
    """
    for raw, escaped in _COMMON_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    if len(data.translate(None, _CONTROL)) != len(data):
        return None
    return data


def read_cast(path: Path) -> Cast:
    """Read a recording; a truncated last line (a crashed writer) is ignored."""
    with CastReader(path) as reader:
        return Cast(reader.header, list(reader))


class CastReader:
    """A recording read event by event, for files too large to hold in memory:
    `with CastReader(path) as reader:` then `reader.header` and `for event in reader`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle = path.open("rb")
        try:
            first = self._handle.readline(MAX_HEADER_LINE + 1)
            if len(first) > MAX_HEADER_LINE:
                raise CastFormatError(f"{path}: header line longer than {MAX_HEADER_LINE} bytes")
            self.header = _header(first, path)
        except BaseException:
            self._handle.close()
            raise

    def __enter__(self) -> CastReader:
        return self

    def __exit__(self, *_: object) -> None:
        self._handle.close()

    def bytes_left(self) -> int:
        """What the file holds past the events read so far (to count what is not read)."""
        here = self._handle.tell()
        return max(0, os.fstat(self._handle.fileno()).st_size - here)

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


def _header(line: bytes, path: Path) -> CastHeader:
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
