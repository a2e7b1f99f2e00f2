"""The scp source/sink protocol as the bastion follows it (bastion/relay/scp_sink.py).

The sink's side is the real `scp -t` of this machine where it matters: its answers are
what the bastion reads. The streams a real source writes are built here byte for byte.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from bastion.relay.carried import CarriedFiles
from bastion.relay.scp_sink import ScpUpload

ID, TARGET = "alice", "web1"


def upload(record: CarriedFiles, dest: str, *, directory: bool = False) -> ScpUpload:
    return ScpUpload(record, ID, TARGET, [dest], directory=directory)


def started(record: CarriedFiles, dest: str = "/srv") -> ScpUpload:
    """An upload into the directory `dest` whose sink said it is ready."""
    up = upload(record, dest, directory=True)
    up.sink(b"\0")
    return up


def send_file(up: ScpUpload, name: str, data: bytes, *, answer: bytes = b"\0") -> None:
    up.source(f"C0644 {len(data)} {name}\n".encode())
    up.sink(b"\0")
    up.source(data + b"\0")
    up.sink(answer)


def test_a_file_to_a_directory_or_a_name() -> None:
    record = CarriedFiles()
    up = upload(record, "/home/u/run.sh")
    up.sink(b"\0")
    send_file(up, "local.sh", b"uptime\n")
    assert record.get(ID, TARGET, "/home/u/run.sh").content == "uptime\n"  # type: ignore[union-attr]
    assert record.get(ID, TARGET, "/home/u/run.sh/local.sh").content == "uptime\n"  # type: ignore[union-attr]
    up.ended()
    assert record.get(ID, TARGET, "/home/u/run.sh").known  # type: ignore[union-attr]


def test_with_d_dest_is_a_directory() -> None:
    record = CarriedFiles()
    up = started(record)
    send_file(up, "a.sh", b"ls\n")
    assert record.paths(ID, TARGET) == ["/srv/a.sh"]


def test_recursive_directories_and_times() -> None:
    record = CarriedFiles()
    up = started(record)
    for line in (b"T1700000000 0 1700000000 0\n", b"D0755 0 app\n"):
        up.source(line)
        up.sink(b"\0")
    send_file(up, "run.sh", b"id\n")
    up.source(b"E\n")
    up.sink(b"\0")
    send_file(up, "top.sh", b"ls\n")
    assert sorted(record.paths(ID, TARGET)) == ["/srv/app/run.sh", "/srv/top.sh"]


def test_the_whole_stream_in_one_piece_waits_for_the_answers() -> None:
    record = CarriedFiles()
    up = upload(record, "/srv", directory=True)
    up.source(b"C0644 3 a.sh\nls\n\0C0644 3 b.sh\nid\n\0")  # a source ahead of its answers
    for _ in range(5):
        up.sink(b"\0")
    assert sorted(record.paths(ID, TARGET)) == ["/srv/a.sh", "/srv/b.sh"]
    assert record.get(ID, TARGET, "/srv/b.sh").content == "id\n"  # type: ignore[union-attr]


def test_a_refused_file_sends_no_data_and_is_not_recorded() -> None:
    record = CarriedFiles()
    up = started(record)
    up.source(b"C0644 3 a.sh\n")
    up.sink(b"\x01scp: /srv/a.sh: Permission denied\n")
    send_file(up, "b.sh", b"ls\n")  # the next file's line is not read as a.sh's data
    assert record.paths(ID, TARGET) == ["/srv/b.sh"]


def test_a_file_the_sink_failed_to_write_is_not_understood() -> None:
    record = CarriedFiles()
    up = started(record)
    send_file(up, "a.sh", b"ls\n", answer=b"\x01scp: /srv/a.sh: No space left on device\n")
    entry = record.get(ID, TARGET, "/srv/a.sh")
    assert entry is not None and not entry.known


def test_a_source_error_after_the_data_leaves_the_file_unknown() -> None:
    record = CarriedFiles()
    up = started(record)
    up.source(b"C0644 3 a.sh\n")
    up.sink(b"\0")
    up.source(b"ls\n\x01scp: a.sh: read error\n")
    assert not record.get(ID, TARGET, "/srv/a.sh").known  # type: ignore[union-attr]


def test_an_upload_cut_short_is_not_understood() -> None:
    record = CarriedFiles()
    up = started(record)
    up.source(b"C0644 100 a.sh\n")
    up.sink(b"\0")
    up.source(b"only part of it")
    up.ended()
    entry = record.get(ID, TARGET, "/srv/a.sh")
    assert entry is not None and not entry.known


def test_malformed_streams_stop_the_following() -> None:
    for stream in (b"C0644 3 ../a.sh\n", b"Cxyz\n", b"X\n", b"C0644 3 a\n" + b"x" * 9000):
        record = CarriedFiles()
        up = upload(record, "/srv", directory=True)
        up.sink(b"\0")
        up.source(stream)
        up.sink(b"\0")
        assert up.broken is not None, stream
        assert all(
            not e.known for p in record.paths(ID, TARGET) if (e := record.get(ID, TARGET, p))
        )


def test_a_sink_that_says_something_else_stops_the_following() -> None:
    record = CarriedFiles()
    up = upload(record, "/srv", directory=True)
    up.sink(b"hello")
    assert up.broken is not None


def test_against_the_real_scp_sink(tmp_path: Path) -> None:
    """The answers of this machine's `scp -t` drive the record, and it matches the disk."""
    stream = b"C0644 7 run.sh\nuptime\n\0D0755 0 sub\nC0600 3 x\nls\n\0E\n"
    sink = subprocess.run(
        ["scp", "-t", "-d", "-r", str(tmp_path)], input=stream, capture_output=True, timeout=30
    )
    record = CarriedFiles()
    up = upload(record, str(tmp_path), directory=True)
    # replay the conversation in its real order: each answer comes before the next message
    answers = iter(sink.stdout)
    up.sink(bytes([next(answers)]))
    for piece in (
        b"C0644 7 run.sh\n",
        b"uptime\n\0",
        b"D0755 0 sub\n",
        b"C0600 3 x\n",
        b"ls\n\0",
        b"E\n",
    ):
        up.source(piece)
        up.sink(bytes([next(answers)]))
    assert (tmp_path / "run.sh").read_text() == "uptime\n"
    assert record.get(ID, TARGET, f"{tmp_path}/run.sh").content == "uptime\n"  # type: ignore[union-attr]
    assert (
        record.get(ID, TARGET, f"{tmp_path}/sub/x").content == (tmp_path / "sub" / "x").read_text()
    )  # type: ignore[union-attr]
