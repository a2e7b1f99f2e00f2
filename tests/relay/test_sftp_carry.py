"""The SFTP side of the record (bastion/relay/sftp_carry.py), against this machine's real
`sftp-server`: requests go to it as the relay forwards them, its replies feed the watcher,
and what the record says is compared with what landed on disk."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from bastion.relay.carried import CarriedFiles
from bastion.relay.events import Output, Stream
from bastion.relay.sftp_carry import SftpWatcher
from bastion.relay.sftp_guard import SftpGuard, packet, string

SFTP_SERVER = next(
    (p for p in ("/usr/lib/openssh/sftp-server", "/usr/lib/sftp-server") if Path(p).exists()), None
)
ID, TARGET, LOGIN = "alice", "web1", "deploy"
READ, WRITE, CREAT, TRUNC, EXCL, APPEND = 1, 2, 8, 0x10, 0x20, 4


class Server:
    """A real sftp-server in a directory, spoken to one request at a time."""

    def __init__(self, root: Path, watcher: SftpWatcher) -> None:
        assert SFTP_SERVER, "openssh-sftp-server is installed with the OpenSSH server"
        self.process = subprocess.Popen(
            [SFTP_SERVER, "-d", str(root)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self.watcher = watcher
        self.guard = SftpGuard()
        self.next_id = 0
        self.send(packet(1, None, struct.pack(">I", 3)))  # INIT, version 3

    def send(self, raw: bytes) -> bytes:
        (request,) = list(self.guard.feed(raw))
        self.watcher.forwarded(request)
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(raw)
        self.process.stdin.flush()
        header = self.process.stdout.read(4)
        (length,) = struct.unpack(">I", header)
        reply = header + self.process.stdout.read(length)
        half = len(reply) // 2  # replies arrive in pieces
        for piece in (reply[:half], reply[half:]):
            self.watcher.on_output(Output(piece, Stream.STDOUT, piece))
        return reply

    def request(self, kind: int, payload: bytes) -> bytes:
        self.next_id += 1
        return self.send(packet(kind, self.next_id, payload))

    def open(self, path: str, flags: int) -> bytes:
        reply = self.request(3, string(path.encode()) + struct.pack(">II", flags, 0))
        assert reply[4] == 102, reply  # HANDLE
        (length,) = struct.unpack_from(">I", reply, 9)
        return reply[13 : 13 + length]

    def write(self, handle: bytes, offset: int, data: bytes) -> None:
        reply = self.request(6, string(handle) + struct.pack(">Q", offset) + string(data))
        assert reply[4] == 101

    def close(self, handle: bytes) -> None:
        self.request(4, string(handle))

    def put(self, path: str, data: bytes) -> None:
        """An upload as OpenSSH's `sftp put` makes it."""
        handle = self.open(path, WRITE | CREAT | TRUNC)
        self.write(handle, 0, data)
        self.close(handle)

    def stop(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=10)


@pytest.fixture
def served(tmp_path: Path):  # type: ignore[no-untyped-def]
    record = CarriedFiles()
    watcher = SftpWatcher(record, ID, TARGET, LOGIN)
    server = Server(tmp_path, watcher)
    yield record, server, tmp_path
    server.stop()


def test_an_upload_is_recorded_with_what_landed_on_disk(served) -> None:  # type: ignore[no-untyped-def]
    record, server, root = served
    path = f"{root}/run.sh"
    handle = server.open(path, WRITE | CREAT | TRUNC)
    assert not record.get(ID, TARGET, path).known  # carried, not known yet
    server.write(handle, 0, b"uptime\n")
    server.write(handle, 7, b"ls -la\n")
    server.close(handle)
    entry = record.get(ID, TARGET, path)
    assert (
        entry is not None and entry.content == (root / "run.sh").read_text() == "uptime\nls -la\n"
    )


def test_realpath_of_dot_tells_the_home(served) -> None:  # type: ignore[no-untyped-def]
    record, server, root = served
    server.request(16, string(b"."))
    assert record.home(ID, TARGET, LOGIN) == str(root)
    handle = server.open("rel.sh", WRITE | CREAT | TRUNC)  # relative: under that home
    server.write(handle, 0, b"id\n")
    server.close(handle)
    assert record.get(ID, TARGET, f"{root}/rel.sh").content == "id\n"  # type: ignore[union-attr]


def test_out_of_order_writes_or_no_truncation_are_not_understood(served) -> None:  # type: ignore[no-untyped-def]
    record, server, root = served
    handle = server.open(f"{root}/a.sh", WRITE | CREAT | TRUNC)
    server.write(handle, 4, b"ime\n")
    server.write(handle, 0, b"upt")
    server.close(handle)
    assert "out of order" in (record.get(ID, TARGET, f"{root}/a.sh").why or "")  # type: ignore[union-attr]
    (root / "b.sh").write_text("echo harmless; cat /etc/shadow\n")
    handle = server.open(f"{root}/b.sh", WRITE)  # no TRUNC: the old tail stays
    server.write(handle, 0, b"uptime\n")
    server.close(handle)
    assert not record.get(ID, TARGET, f"{root}/b.sh").known  # type: ignore[union-attr]
    handle = server.open(f"{root}/c.sh", WRITE | CREAT | EXCL)  # new: nothing to keep
    server.write(handle, 0, b"ls\n")
    server.close(handle)
    assert record.get(ID, TARGET, f"{root}/c.sh").content == "ls\n"  # type: ignore[union-attr]


def test_a_failed_open_is_not_recorded_as_known(served) -> None:  # type: ignore[no-untyped-def]
    record, server, root = served
    reply = server.request(
        3, string(f"{root}/no/such/dir/x".encode()) + struct.pack(">II", WRITE | CREAT, 0)
    )
    assert reply[4] == 101  # STATUS: the open failed
    assert not record.get(ID, TARGET, f"{root}/no/such/dir/x").known  # type: ignore[union-attr]


def test_rename_moves_and_remove_drops(served) -> None:  # type: ignore[no-untyped-def]
    record, server, root = served
    server.put(f"{root}/a.sh", b"ls\n")
    server.request(
        200,
        string(b"posix-rename@openssh.com")
        + string(f"{root}/a.sh".encode())
        + string(f"{root}/b.sh".encode()),
    )
    assert record.get(ID, TARGET, f"{root}/a.sh") is None
    assert record.get(ID, TARGET, f"{root}/b.sh").content == "ls\n" == (root / "b.sh").read_text()  # type: ignore[union-attr]
    server.request(13, string(f"{root}/b.sh".encode()))
    assert record.paths(ID, TARGET) == []


def test_a_failed_rename_leaves_the_destination_unknown(served) -> None:  # type: ignore[no-untyped-def]
    record, server, root = served
    for name in ("a.sh", "b.sh"):
        server.put(f"{root}/{name}", b"ls\n")
    reply = server.request(18, string(f"{root}/a.sh".encode()) + string(f"{root}/b.sh".encode()))
    assert reply[4] == 101  # plain RENAME refuses to overwrite
    assert record.get(ID, TARGET, f"{root}/a.sh").known  # type: ignore[union-attr]
    assert not record.get(ID, TARGET, f"{root}/b.sh").known  # type: ignore[union-attr]


def test_a_size_change_or_a_link_makes_files_unknown(served) -> None:  # type: ignore[no-untyped-def]
    record, server, root = served
    server.put(f"{root}/a.sh", b"echo one; echo two\n")
    server.request(9, string(f"{root}/a.sh".encode()) + struct.pack(">IQ", 1, 4))  # truncate
    assert not record.get(ID, TARGET, f"{root}/a.sh").known  # type: ignore[union-attr]
    server.request(20, string(f"{root}/a.sh".encode()) + string(f"{root}/l.sh".encode()))
    assert record.poisoned(ID, TARGET) is not None


def test_appending_is_not_understood(served) -> None:  # type: ignore[no-untyped-def]
    record, server, root = served
    handle = server.open(f"{root}/a.sh", WRITE | CREAT | APPEND)
    server.write(handle, 0, b"ls\n")
    server.close(handle)
    assert not record.get(ID, TARGET, f"{root}/a.sh").known  # type: ignore[union-attr]


def test_a_channel_that_ends_mid_upload_leaves_the_file_unknown(served) -> None:  # type: ignore[no-untyped-def]
    record, server, root = served
    handle = server.open(f"{root}/a.sh", WRITE | CREAT | TRUNC)
    server.write(handle, 0, b"ls\n")
    from bastion.relay.events import Exit

    server.watcher.on_exit(Exit(None, None, "gone"))
    assert not record.get(ID, TARGET, f"{root}/a.sh").known  # type: ignore[union-attr]


def test_a_reply_stream_that_is_not_sftp_stops_the_following() -> None:
    record = CarriedFiles()
    watcher = SftpWatcher(record, ID, TARGET, LOGIN)
    watcher.on_output(Output(b"\0\0\0\x05\x65\0\0", Stream.STDOUT, b"\xff" * 4 + b"\x65" * 20))
    assert watcher.broken is not None
    guard = SftpGuard()
    (request,) = list(
        guard.feed(packet(3, 1, string(b"/x") + struct.pack(">II", WRITE | CREAT | TRUNC, 0)))
    )
    seen: list[tuple[str, ...]] = []
    broken = SftpWatcher(record, ID, TARGET, LOGIN, on_commands=seen.append)
    broken.broken = "test"
    broken.forwarded(request)
    assert seen == [("tee -- /x",)]  # once broken, the equivalent commands' effects apply
