"""CPU the asciicast writer spends per MB of session output, and the escaping choices.

Every byte the agent sees is written into the recording as a JSON string, so
the escape runs on the data path. This compares, on the same inputs in one run:

  replace6        the previous writer's escape: ASCII only, six bytes.replace passes and
                  a translate; anything else (UTF-8, BEL, BS) went to the C encoder
  c-encoder       json.encoder.encode_basestring (C) on the decoded text, then UTF-8
  json.dumps      json.dumps(text, ensure_ascii=False), the same C code plus call overhead
  bytes-escape    recorder.cast.escape_json_utf8 after a UTF-8 check (what the writer does now)
  writer-before   the whole writer (output + flush per chunk) with the previous escape
  writer-now      the whole writer as it is

Inputs (8 MiB each, fed in 32 KiB chunks as the relay does): plain log lines,
coloured `ls`-style output (ANSI escapes), a shell session whose prompt sets
the terminal title (BEL), and UTF-8 text. Run: python bench/recorder_escape.py
"""

from __future__ import annotations

import codecs
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from json.encoder import encode_basestring
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recorder.cast import (  # noqa: E402
    _COMMON_ESCAPES,
    AsciicastWriter,
    FileSink,
    escape_json_utf8,
)

CHUNK = 32 * 1024
TOTAL = 8 * 1024 * 1024
_CONTROL = bytes(range(0x20))
_COMMON = _COMMON_ESCAPES[:6]  # the previous writer escaped these six (same order)


def replace6(data: bytes) -> bytes:
    """The escaping recorder/cast.py used before (kept here as the baseline)."""
    if data.isascii():
        escaped = data
        for raw, out in _COMMON:
            if raw in escaped:
                escaped = escaped.replace(raw, out)
        if len(escaped.translate(None, _CONTROL)) == len(escaped):
            return escaped
    return encode_basestring(data.decode("utf-8", "replace"))[1:-1].encode()


def _escape_ascii(data: bytes) -> bytes | None:
    for raw, out in _COMMON:
        if raw in data:
            data = data.replace(raw, out)
    if len(data.translate(None, _CONTROL)) != len(data):
        return None
    return data


class WriterBefore(AsciicastWriter):
    """The writer with the escape it had before (same sink, same coalescing)."""

    def _text_event(self, at: float, kind: str, data: bytes) -> None:
        decoder = self._decoders[kind]
        if data.isascii() and not decoder.getstate()[0]:
            escaped = _escape_ascii(data)
            if escaped is not None:
                stamp = f'[{at - self._started:.6f}, "{kind}", "'.encode()
                self._write_vector([stamp, escaped, b'"]\n'])
                return
        text = decoder.decode(data)
        if text:
            self._event(at, kind, text)


def bytes_escape(data: bytes) -> bytes:
    text, used = codecs.utf_8_decode(data, "strict", False)  # the writer's incremental decode
    escaped = escape_json_utf8(data[:used])
    return escaped if escaped is not None else c_encoder(data)


def c_encoder(data: bytes) -> bytes:
    return encode_basestring(data.decode("utf-8", "replace")).encode()


def json_dumps(data: bytes) -> bytes:
    return json.dumps(data.decode("utf-8", "replace"), ensure_ascii=False).encode()


def corpus(kind: str) -> bytes:
    rng = random.Random(7)
    lines = []
    size = 0
    while size < TOTAL:
        if kind == "log":
            line = (
                f"2026-11-30T12:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z INFO"
                f' request id={rng.getrandbits(64):016x} path="/api/v1/items/{rng.randrange(99999)}"'
                f" status=200 bytes={rng.randrange(10**6)}\t dur={rng.random():.4f}s\r\n"
            )
        elif kind == "shell":
            line = (
                f"\x1b]0;deploy@web1: ~/app\x07\x1b[01;32mdeploy@web1\x1b[00m:~/app$ ls -l\r\n"
                f"-rw-r--r-- 1 deploy deploy {rng.randrange(10**6)} Nov 30 12:00 file.txt\r\n"
            )
        elif kind == "ansi":
            line = (
                "".join(
                    f"\x1b[01;3{rng.randrange(1, 7)}mfile_{rng.randrange(10**6)}.txt\x1b[0m  "
                    for _ in range(6)
                )
                + "\r\n"
            )
        else:
            line = f"Grüße, {rng.randrange(10**6)} — привет мир ✓ 日本語のテキスト\r\n"
        encoded = line.encode()
        lines.append(encoded)
        size += len(encoded)
    return b"".join(lines)[:TOTAL]


def chunks_of(data: bytes) -> list[bytes]:
    """About CHUNK bytes each, cut after a newline (so every chunk is whole UTF-8)."""
    chunks, start = [], 0
    while start < len(data):
        end = data.rfind(b"\n", start, start + CHUNK) + 1 or min(len(data), start + CHUNK)
        chunks.append(data[start:end])
        start = end
    return chunks


def cpu_ms_per_mb(fn: Callable[[bytes], object], data: bytes, rounds: int = 5) -> float:
    chunks = chunks_of(data)
    times = []
    for _ in range(rounds):
        started = time.process_time()
        for chunk in chunks:
            fn(chunk)
        times.append(time.process_time() - started)
    return statistics.median(times) * 1000 / (len(data) / 1e6)


def writer_ms_per_mb(data: bytes, writer_class: type[AsciicastWriter], rounds: int = 5) -> float:
    chunks = chunks_of(data)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(rounds):
            sink = FileSink.create(Path(tmp) / f"{n}.cast")
            writer = writer_class(sink, width=80, height=24, title="b")
            started = time.process_time()
            for chunk in chunks:
                writer.output(chunk)
                writer.flush()
            times.append(time.process_time() - started)
            writer.close()
            os.unlink(Path(tmp) / f"{n}.cast")
    return statistics.median(times) * 1000 / (len(data) / 1e6)


def main() -> None:
    inputs = {name: corpus(name) for name in ("log", "ansi", "shell", "utf8")}
    for name, data in inputs.items():  # the alternatives agree on every input
        chunk = data[:CHUNK].decode("utf-8", "ignore").encode()
        assert c_encoder(chunk) == json_dumps(chunk), name
        assert b'"' + bytes_escape(chunk) + b'"' == c_encoder(chunk), name
    columns = {
        "replace6": lambda data: cpu_ms_per_mb(replace6, data),
        "c-encoder": lambda data: cpu_ms_per_mb(c_encoder, data),
        "json.dumps": lambda data: cpu_ms_per_mb(json_dumps, data),
        "bytes-escape": lambda data: cpu_ms_per_mb(bytes_escape, data),
        "writer-before": lambda data: writer_ms_per_mb(data, WriterBefore),
        "writer-now": lambda data: writer_ms_per_mb(data, AsciicastWriter),
    }
    print("CPU ms per MB of output (median of 5; process_time; machine shared with other work)")
    print(f"{'input':<8}" + "".join(f"{name:>15}" for name in columns))
    for name, data in inputs.items():
        print(f"{name:<8}" + "".join(f"{measure(data):>15.2f}" for measure in columns.values()))


if __name__ == "__main__":
    main()
