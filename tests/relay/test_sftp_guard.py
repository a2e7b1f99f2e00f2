"""SFTP requests become the shell commands with the same reach; the stream parser fails closed."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.relay.sftp_guard import (
    ATTR_PERMISSIONS,
    ATTR_UIDGID,
    PFLAG_CREAT,
    PFLAG_READ,
    PFLAG_TRUNC,
    PFLAG_WRITE,
    SftpGuard,
    SftpProtocolError,
    packet,
    status_reply,
    string,
)


def attrs(flags: int, *values: int) -> bytes:
    return struct.pack(">I", flags) + b"".join(struct.pack(">I", v) for v in values)


def commands(raw: bytes) -> list[tuple[str, ...]]:
    return [r.commands for r in SftpGuard().feed(raw)]


def test_open_for_read_is_cat_and_for_write_is_tee() -> None:
    read = packet(3, 1, string(b"/etc/shadow") + struct.pack(">I", PFLAG_READ) + attrs(0))
    write = packet(
        3,
        2,
        string(b"up.bin") + struct.pack(">I", PFLAG_WRITE | PFLAG_CREAT | PFLAG_TRUNC) + attrs(0),
    )
    assert commands(read + write) == [("cat -- /etc/shadow",), ("tee -- up.bin",)]


def test_paths_are_quoted_for_the_shell_parser() -> None:
    raw = packet(13, 3, string(b"my file; rm -rf /"))
    assert commands(raw) == [("rm -- 'my file; rm -rf /'",)]


def test_setstat_permissions_and_owner() -> None:
    raw = packet(
        9, 4, string(b"/usr/bin/tool") + attrs(ATTR_PERMISSIONS | ATTR_UIDGID, 0, 0, 0o104755)
    )
    assert commands(raw) == [("chmod 4755 -- /usr/bin/tool", "chown 0:0 -- /usr/bin/tool")]


def test_rename_symlink_and_extensions() -> None:
    raw = (
        packet(18, 5, string(b"a") + string(b"b"))
        + packet(20, 6, string(b"/etc/passwd") + string(b"link"))
        + packet(200, 7, string(b"posix-rename@openssh.com") + string(b"c") + string(b"d"))
        + packet(200, 8, string(b"limits@openssh.com"))
    )
    assert commands(raw) == [("mv -- a b",), ("ln -s -- /etc/passwd link",), ("mv -- c d",), ()]


def test_unknown_requests_are_refused_not_forwarded() -> None:
    [ext, other] = list(
        SftpGuard().feed(packet(200, 9, string(b"evil@example.com")) + packet(99, 10))
    )
    assert ext.refusal and "not supported" in ext.refusal
    assert other.refusal and "type 99" in other.refusal


def test_handle_operations_need_no_decision() -> None:
    raw = packet(5, 11, string(b"h") + struct.pack(">QI", 0, 32768)) + packet(4, 12, string(b"h"))
    assert commands(raw) == [(), ()]


def test_packets_split_across_reads_are_reassembled() -> None:
    raw = packet(17, 13, string(b"/tmp/x"))
    guard = SftpGuard()
    seen = []
    for i in range(len(raw)):
        seen += [r.commands for r in guard.feed(raw[i : i + 1])]
    assert seen == [("stat -- /tmp/x",)]


def test_oversized_and_truncated_packets_raise() -> None:
    with pytest.raises(SftpProtocolError):
        list(SftpGuard().feed(struct.pack(">I", 10_000_000) + b"\x03"))
    with pytest.raises(SftpProtocolError):
        list(
            SftpGuard().feed(
                struct.pack(">I", 9) + b"\x03" + b"\x00\x00\x00\x01" + b"\xff\xff\xff\xff"
            )
        )


def test_status_reply_is_a_well_formed_status_packet() -> None:
    reply = status_reply(42, 3, "bastion: denied")
    (length,) = struct.unpack(">I", reply[:4])
    assert length == len(reply) - 4 and reply[4] == 101
    assert struct.unpack(">II", reply[5:13]) == (42, 3)


@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_raise_anything_but_protocol_errors(data: bytes) -> None:
    try:
        for request in SftpGuard().feed(data):
            assert isinstance(request.commands, tuple)
    except SftpProtocolError:
        pass
