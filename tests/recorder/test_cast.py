"""asciicast v2 writing and reading, crash safety, and asciinema reading what we write."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recorder import AsciicastWriter, CastFormatError, read_cast
from recorder.cast import COALESCE_BYTES


def asciinema_cat(path: Path) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("asciinema")
    argv = [exe] if exe else [sys.executable, "-m", "asciinema"]
    return subprocess.run([*argv, "cat", str(path)], capture_output=True, timeout=60)


def test_round_trip_header_and_events(tmp_path: Path) -> None:
    path = tmp_path / "a.cast"
    writer = AsciicastWriter.create(
        path, width=100, height=30, title="t", timestamp=1700000000, command="ls"
    )
    writer.output(b"hello ")
    writer.input(b"x")
    writer.output(b"world\r\n")
    writer.resize(120, 40)
    writer.marker("denied: r1")
    writer.close()
    cast = read_cast(path)
    assert (cast.header.width, cast.header.height, cast.header.title, cast.header.command) == (
        100,
        30,
        "t",
        "ls",
    )
    assert cast.header.timestamp == 1700000000
    assert [(e.kind, e.data) for e in cast.events] == [
        ("o", "hello "),
        ("i", "x"),
        ("o", "world\r\n"),
        ("r", "120x40"),
        ("m", "denied: r1"),
    ]
    times = [e.time for e in cast.events]
    assert times == sorted(times)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_never_overwrites_an_existing_recording(tmp_path: Path) -> None:
    path = tmp_path / "a.cast"
    path.write_text("keep")
    with pytest.raises(FileExistsError):
        AsciicastWriter.create(path, width=80, height=24, title="t")
    assert path.read_text() == "keep"


def test_utf8_split_across_chunks_is_kept_whole(tmp_path: Path) -> None:
    path = tmp_path / "u.cast"
    writer = AsciicastWriter.create(path, width=80, height=24, title="t")
    text = "naïve → 日本語 🙂".encode()
    for i in range(len(text)):
        writer.output(text[i : i + 1])
        writer.flush()
    writer.close()
    assert "".join(e.data for e in read_cast(path).events) == "naïve → 日本語 🙂"


def test_coalescing_keeps_every_byte_in_order(tmp_path: Path) -> None:
    path = tmp_path / "c.cast"
    writer = AsciicastWriter.create(path, width=80, height=24, title="t")
    chunks = [f"line {i}\n".encode() * 50 for i in range(2000)]
    for chunk in chunks:
        writer.output(chunk)
    writer.close()
    events = read_cast(path).events
    assert "".join(e.data for e in events) == b"".join(chunks).decode()
    assert 1 < len(events) < len(chunks)  # coalesced, but not into one giant line
    assert max(len(e.data) for e in events) <= COALESCE_BYTES + max(len(c) for c in chunks)


def test_binary_output_is_recorded_with_replacement_characters(tmp_path: Path) -> None:
    path = tmp_path / "b.cast"
    writer = AsciicastWriter.create(path, width=80, height=24, title="t")
    writer.output(bytes(range(256)))
    writer.close()
    data = "".join(e.data for e in read_cast(path).events)
    assert data.startswith("\x00\x01") and "\ufffd" in data


def test_asciinema_reads_a_finished_recording(tmp_path: Path) -> None:
    path = tmp_path / "f.cast"
    writer = AsciicastWriter.create(path, width=80, height=24, title="t")
    writer.output(b"\x1b[1mbold\x1b[0m and plain\r\n")
    writer.close()
    played = asciinema_cat(path)
    assert played.returncode == 0, played.stderr
    assert b"and plain" in played.stdout


WRITER_THEN_SLEEP = """
import sys, time
from pathlib import Path
from recorder import AsciicastWriter
w = AsciicastWriter.create(Path(sys.argv[1]), width=80, height=24, title="crash")
w.output(b"first line\\r\\n"); w.flush()
w.output(b"second line\\r\\n"); w.flush()
w.output(b"never flushed")
print("ready", flush=True)
time.sleep(60)
"""


def test_sigkill_leaves_a_recording_asciinema_reads(tmp_path: Path) -> None:
    path = tmp_path / "k.cast"
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER_THEN_SLEEP, str(path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.stdout is not None
    assert child.stdout.readline() == b"ready\n"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    played = asciinema_cat(path)
    assert played.returncode == 0, played.stderr
    assert b"first line" in played.stdout and b"second line" in played.stdout
    assert [e.data for e in read_cast(path).events] == ["first line\r\n", "second line\r\n"]


def test_reader_tolerates_a_truncated_last_line_only(tmp_path: Path) -> None:
    path = tmp_path / "t.cast"
    header = json.dumps({"version": 2, "width": 80, "height": 24})
    path.write_text(header + '\n[0.1, "o", "ok"]\n[0.2, "o", "cut sh')
    assert [e.data for e in read_cast(path).events] == ["ok"]
    path.write_text(header + '\n[0.1, "o", "ok"]\nnot json\n[0.3, "o", "x"]\n')
    with pytest.raises(CastFormatError, match=":3:"):
        read_cast(path)


@pytest.mark.parametrize(
    "first", ['{"version": 1, "width": 80, "height": 24}', '{"version": 2}', "[1, 2]", "garbage"]
)
def test_reader_refuses_bad_headers(tmp_path: Path, first: str) -> None:
    path = tmp_path / "h.cast"
    path.write_text(first + "\n")
    with pytest.raises(CastFormatError):
        read_cast(path)


def test_output_goes_out_within_the_coalescing_window(tmp_path: Path) -> None:
    path = tmp_path / "w.cast"
    writer = AsciicastWriter.create(path, width=80, height=24, title="t")
    writer.output(b"early")
    time.sleep(0.08)
    writer.output(b"late")  # the early bytes are older than the window: written now
    assert b"early" in path.read_bytes() and b"late" not in path.read_bytes()
    writer.close()
    assert os.path.getsize(path) == writer.bytes_written


_TERMINAL_BYTES = st.sampled_from(
    [b"\\", b'"', b"\n", b"\r", b"\t", b"\x1b[1m", b"\x07", b"\x08", b"\x00", b"\x0f", b"\x7f"]
)
_TEXT_BYTES = st.text(max_size=40).map(lambda t: t.encode("utf-8", "surrogatepass"))
_CHUNKS = st.lists(
    st.lists(st.one_of(_TERMINAL_BYTES, _TEXT_BYTES, st.binary(max_size=20)), max_size=8).map(
        b"".join
    ),
    max_size=12,
)


@given(st.text(max_size=300))
def test_byte_escaping_matches_the_c_json_encoder(text: str) -> None:
    from json.encoder import encode_basestring

    from recorder.cast import escape_json_utf8

    data = text.encode("utf-8", "surrogatepass")
    try:
        expected = encode_basestring(data.decode("utf-8"))[1:-1].encode()
    except UnicodeDecodeError:
        return  # lone surrogates are not UTF-8 text
    escaped = escape_json_utf8(data)
    assert escaped is None or escaped == expected


class ListSink:
    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write_lines(self, parts) -> None:
        self.lines.append(b"".join(parts))

    def close(self) -> None:
        pass


def _reference_events(chunks: list[bytes]) -> list[bytes]:
    """What the writer wrote before its byte path: decode, then the C encoder, per event."""
    import codecs
    from json.encoder import encode_basestring

    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    out = []
    for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            out.append(encode_basestring(text).encode("utf-8", "surrogateescape"))
    tail = decoder.decode(b"", final=True)
    if tail:
        out.append(encode_basestring(tail).encode())
    return out


@given(_CHUNKS)
def test_writer_output_is_byte_identical_to_the_c_encoder(chunks: list[bytes]) -> None:
    sink = ListSink()
    writer = AsciicastWriter(sink, width=80, height=24, title="t")
    for chunk in chunks:
        writer.output(chunk)
        writer.flush()
    writer.close()
    events = [line.split(b', "o", ', 1)[1][:-2] for line in sink.lines[1:]]
    assert events == _reference_events([c for c in chunks if c])
    assert all(line.endswith(b"]\n") for line in sink.lines[1:])


def test_asciinema_accepts_every_kind_of_escaped_output(tmp_path: Path) -> None:
    path = tmp_path / "e.cast"
    writer = AsciicastWriter.create(path, width=80, height=24, title="t")
    pieces = [
        b'plain \\ back "quoted"\r\n',
        b"\x1b]0;title\x07\x1b[01;34mblue\x1b[0m\tTAB\x08\r\n",
        "naïve → 日本語 🙂\r\n".encode(),
        "split ü".encode()[:-1],
        "split ü".encode()[-1:] + b"\r\n",
        b"bad \xff\xfe utf8 and \x00 nul \x0f si\r\n",
    ]
    for piece in pieces:
        writer.output(piece)
        writer.flush()
    writer.close()
    played = asciinema_cat(path)
    assert played.returncode == 0, played.stderr
    for word in (b"back", b"blue", "日本語".encode(), "split ü".encode(), b"nul"):
        assert word in played.stdout
    assert "".join(e.data for e in read_cast(path).events) == b"".join(pieces).decode(
        errors="replace"
    )


WRITER_UNTIL_FULL = """
import resource, signal, sys
from pathlib import Path
from recorder import AsciicastWriter
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # past the limit, writes fail with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))
w = AsciicastWriter.create(Path(sys.argv[1]), width=80, height=24, title="full")
try:
    for n in range(1000):
        w.output(b"line %d of output that fills the file\\r\\n" % n); w.flush()
except OSError as exc:
    print("failed", exc.errno, w.bytes_written, flush=True)
w.abandon()
"""


def test_a_failed_write_cuts_the_file_back_to_its_last_whole_line(tmp_path: Path) -> None:
    """A file size limit makes the kernel write part of a line and then refuse: a real
    short write followed by an error, as on a full disk."""
    path = tmp_path / "f.cast"
    child = subprocess.run(
        [sys.executable, "-c", WRITER_UNTIL_FULL, str(path)],
        capture_output=True,
        timeout=60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert child.returncode == 0, child.stderr
    word, errno_text, written = child.stdout.split()
    assert word == b"failed" and int(errno_text) == errno.EFBIG
    assert path.stat().st_size == int(written) < 1000
    assert path.read_bytes().endswith(b"]\n")
    played = asciinema_cat(path)
    assert played.returncode == 0, played.stderr
    assert b"line 0 of output" in played.stdout


def test_whole_lines_length_ignores_a_cut_last_line(tmp_path: Path) -> None:
    import io

    from recorder.cast import whole_lines_length

    data = b'{"version": 2, "width": 80, "height": 24}\n[0.1, "o", "ok"]\n[0.2, "o", "cu'
    assert whole_lines_length(io.BytesIO(data), len(data)) == data.rindex(b"\n") + 1
    big = b"x" * 200_000 + b"\n" + b"y" * 100_000
    assert whole_lines_length(io.BytesIO(big), len(big)) == 200_001
    assert whole_lines_length(io.BytesIO(b"no newline"), 10) == 0


@given(st.lists(st.binary(max_size=200), max_size=20))
def test_any_output_round_trips_as_utf8_with_replacement(chunks: list[bytes]) -> None:
    import tempfile

    path = Path(tempfile.mkdtemp()) / "p.cast"
    writer = AsciicastWriter.create(path, width=80, height=24, title="t")
    for chunk in chunks:
        writer.output(chunk)
        writer.flush()
    writer.close()
    assert "".join(e.data for e in read_cast(path).events) == b"".join(chunks).decode(
        errors="replace"
    )
