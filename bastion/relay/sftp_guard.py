"""Reads the SFTP requests an agent sends, so the command rules govern file transfer too.

SFTP (and scp, which OpenSSH 9 runs over SFTP) carries file operations as
binary packets, not command lines. Each path-bearing request is turned into
the shell command that would have the same effect (`get /etc/shadow` is
`cat -- /etc/shadow`, `rm` is `rm -- PATH`, a chmod via SETSTAT is
`chmod 4755 -- PATH`), so one rule set covers exec, shells and file
transfer. Requests on open handles (READ, WRITE, CLOSE...) were decided when
the handle was opened. Unknown requests are refused: the guard fails closed.

    >>> guard = SftpGuard()
    >>> [r.commands for r in guard.feed(packet(17, 7, string(b"/etc/hostname")))]
    [('stat -- /etc/hostname',)]
"""

from __future__ import annotations

import shlex
import struct
from collections.abc import Iterator
from dataclasses import dataclass

MAX_PACKET = 256 * 1024 + 1024  # OpenSSH's sftp-server limit, plus headers

FXP_INIT, FXP_OPEN, FXP_SETSTAT, FXP_EXTENDED = 1, 3, 9, 200
FXP_STATUS = 101
FX_PERMISSION_DENIED = 3
FX_OP_UNSUPPORTED = 8

PFLAG_READ, PFLAG_WRITE, PFLAG_APPEND, PFLAG_CREAT, PFLAG_TRUNC = 1, 2, 4, 8, 0x10
ATTR_SIZE, ATTR_UIDGID, ATTR_PERMISSIONS, ATTR_ACMODTIME = 1, 2, 4, 8
ATTR_EXTENDED = 0x80000000

# Requests that name one path, and the command with the same reach.
_ONE_PATH = {
    7: "stat",
    11: "ls",
    13: "rm",
    14: "mkdir",
    15: "rmdir",
    16: "stat",
    17: "stat",
    19: "readlink",
}
# Requests on an already opened handle, or replies-only: nothing new to decide.
_HANDLE_OPS = {4, 5, 6, 8, 10, 12}
_EXTENDED_TWO_PATHS = {b"posix-rename@openssh.com": "mv", b"hardlink@openssh.com": "ln"}
_EXTENDED_ONE_PATH = {
    b"statvfs@openssh.com": "stat",
    b"expand-path@openssh.com": "stat",
    b"lsetstat@openssh.com": None,
}
_EXTENDED_HARMLESS = {
    b"fstatvfs@openssh.com",
    b"fsync@openssh.com",
    b"limits@openssh.com",
    b"home-directory",
    b"users-groups-by-id@openssh.com",
}


class SftpProtocolError(Exception):
    """The agent's stream is not well-formed SFTP; the session must end."""


@dataclass(frozen=True)
class SftpRequest:
    """One complete packet from the agent, with the commands it amounts to."""

    raw: bytes
    kind: int
    request_id: int | None
    commands: tuple[str, ...]  # empty: nothing to decide (handle ops, init)
    refusal: str | None = None  # set when the guard itself refuses (unknown op)


def string(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def packet(kind: int, request_id: int | None, payload: bytes = b"") -> bytes:
    body = (
        bytes([kind]) + (struct.pack(">I", request_id) if request_id is not None else b"") + payload
    )
    return struct.pack(">I", len(body)) + body


def status_reply(request_id: int, code: int, message: str) -> bytes:
    """The SSH_FXP_STATUS packet the bastion sends instead of forwarding a refused request."""
    payload = struct.pack(">I", code) + string(message.encode()[:1024]) + string(b"en")
    return packet(FXP_STATUS, request_id, payload)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def uint32(self) -> int:
        if self.pos + 4 > len(self.data):
            raise SftpProtocolError("truncated SFTP packet")
        (value,) = struct.unpack_from(">I", self.data, self.pos)
        self.pos += 4
        return int(value)

    def uint64(self) -> int:
        if self.pos + 8 > len(self.data):
            raise SftpProtocolError("truncated SFTP packet")
        (value,) = struct.unpack_from(">Q", self.data, self.pos)
        self.pos += 8
        return int(value)

    def string(self) -> bytes:
        length = self.uint32()
        if self.pos + length > len(self.data):
            raise SftpProtocolError("truncated SFTP string")
        value = self.data[self.pos : self.pos + length]
        self.pos += length
        return value

    def attrs(self) -> dict[str, int]:
        flags = self.uint32()
        found: dict[str, int] = {}
        if flags & ATTR_SIZE:
            found["size"] = self.uint64()
        if flags & ATTR_UIDGID:
            found["uid"], found["gid"] = self.uint32(), self.uint32()
        if flags & ATTR_PERMISSIONS:
            found["permissions"] = self.uint32()
        if flags & ATTR_ACMODTIME:
            self.uint32()
            self.uint32()
        if flags & ATTR_EXTENDED:
            for _ in range(min(self.uint32(), 64)):
                self.string()
                self.string()
        return found


def _path(raw: bytes) -> str:
    return shlex.quote(raw.decode("utf-8", errors="surrogateescape"))


def _attr_commands(attrs: dict[str, int], path: str) -> list[str]:
    commands = []
    if "permissions" in attrs:
        commands.append(f"chmod {attrs['permissions'] & 0o7777:o} -- {path}")
    if "uid" in attrs:
        commands.append(f"chown {attrs['uid']}:{attrs['gid']} -- {path}")
    if "size" in attrs:
        commands.append(f"truncate -s {attrs['size']} -- {path}")
    return commands or [f"touch -- {path}"]


def describe(kind: int, body: _Reader) -> tuple[tuple[str, ...], str | None]:
    """Commands equivalent to one request (after its id), or a refusal reason."""
    if kind in _HANDLE_OPS:
        return (), None
    if kind == FXP_OPEN:
        path = _path(body.string())
        flags = body.uint32()
        commands = []
        if flags & PFLAG_READ or not flags & (PFLAG_WRITE | PFLAG_APPEND):
            commands.append(f"cat -- {path}")
        if flags & (PFLAG_WRITE | PFLAG_APPEND | PFLAG_CREAT | PFLAG_TRUNC):
            commands.append(f"tee -- {path}")
        return tuple(commands), None
    if kind in _ONE_PATH:
        return (f"{_ONE_PATH[kind]} -- {_path(body.string())}",), None
    if kind == FXP_SETSTAT:
        path = _path(body.string())
        return tuple(_attr_commands(body.attrs(), path)), None
    if kind == 18:  # RENAME
        old, new = _path(body.string()), _path(body.string())
        return (f"mv -- {old} {new}",), None
    if kind == 20:  # SYMLINK: OpenSSH sends (target, link), reversed from the RFC draft
        target, link = _path(body.string()), _path(body.string())
        return (f"ln -s -- {target} {link}",), None
    if kind == FXP_EXTENDED:
        name = body.string()
        if name in _EXTENDED_TWO_PATHS:
            old, new = _path(body.string()), _path(body.string())
            verb = _EXTENDED_TWO_PATHS[name]
            return (f"{verb} -- {old} {new}",), None
        if name in _EXTENDED_ONE_PATH:
            path = _path(body.string())
            if _EXTENDED_ONE_PATH[name] is None:  # lsetstat: like setstat
                return tuple(_attr_commands(body.attrs(), path)), None
            return (f"{_EXTENDED_ONE_PATH[name]} -- {path}",), None
        if name in _EXTENDED_HARMLESS:
            return (), None
        return (), f"SFTP extension {name.decode(errors='replace')!r} is not supported"
    return (), f"SFTP request type {kind} is not supported"


class SftpGuard:
    """Splits the agent's byte stream into SFTP packets and describes each."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> Iterator[SftpRequest]:
        self.add(data)
        return self.requests()

    def add(self, data: bytes) -> None:
        """Buffer bytes without reading them (the session holds them behind a review)."""
        self._buffer += data

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def requests(self) -> Iterator[SftpRequest]:
        """Complete packets, in order; stopping early leaves the rest buffered."""
        while len(self._buffer) >= 4:
            (length,) = struct.unpack_from(">I", self._buffer, 0)
            if length < 1 or length > MAX_PACKET:
                raise SftpProtocolError(f"SFTP packet of {length} bytes refused")
            if len(self._buffer) < 4 + length:
                return
            raw = bytes(self._buffer[: 4 + length])
            del self._buffer[: 4 + length]
            yield self._describe(raw)

    @staticmethod
    def _describe(raw: bytes) -> SftpRequest:
        kind = raw[4]
        if kind == FXP_INIT:
            return SftpRequest(raw, kind, None, ())
        body = _Reader(raw[5:])
        request_id = body.uint32()
        commands, refusal = describe(kind, body)
        return SftpRequest(raw, kind, request_id, commands, refusal)
