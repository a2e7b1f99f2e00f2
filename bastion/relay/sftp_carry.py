"""Which files an SFTP session writes, with what bytes: the record's SFTP side.

The SFTP relay (bastion/relay/sftp.py) hands this watcher every request it
forwards to the target, and the target's replies arrive as listener events.
A file is recorded with its text only when it was opened for writing with
truncation (or created new), written in order from offset 0, every WRITE
and the CLOSE confirmed by the server, and nobody else wrote it meanwhile:

    OPEN(path, WRITE|CREAT|TRUNC) -> HANDLE h    the path is carried, not known yet
    WRITE(h, 0, ...) WRITE(h, 32768, ...)        bytes in order
    CLOSE(h) -> STATUS OK                         now known: size, sha256, text

Renames move the record (once the server says OK), removals drop it, a
size change (truncate) or a link makes it unknown. The answer to REALPATH
"." is the login's home: the record resolves relative paths with it.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from bastion.relay.carried import CarriedFiles, Writing
from bastion.relay.carried_effects import Resolver
from bastion.relay.events import Exit, Output, Stream
from bastion.relay.listeners import Listener
from bastion.relay.sftp_guard import (
    ATTR_SIZE,
    FXP_EXTENDED,
    FXP_OPEN,
    PFLAG_APPEND,
    PFLAG_CREAT,
    PFLAG_TRUNC,
    PFLAG_WRITE,
    SftpProtocolError,
    SftpRequest,
    _Reader,
)

log = logging.getLogger("bastion.sftp")

MAX_REPLY = 256 * 1024 + 1024  # a reply packet the watcher reads (longer ones are skipped)
MAX_TRACKED = 1024  # requests awaiting their reply
MAX_HANDLES = 64  # files open for writing at once
PFLAG_EXCL = 0x20
FXP_CLOSE, FXP_WRITE, FXP_FSETSTAT, FXP_SETSTAT = 4, 6, 10, 9
FXP_REMOVE, FXP_RMDIR, FXP_REALPATH, FXP_RENAME, FXP_SYMLINK = 13, 15, 16, 18, 20
FXP_STATUS, FXP_HANDLE, FXP_NAME = 101, 102, 104
_READ_REPLIES = frozenset({FXP_STATUS, FXP_HANDLE, FXP_NAME})


@dataclass
class _Open:
    writing: Writing
    outstanding: set[int] = field(default_factory=set)  # WRITE ids not yet confirmed


class SftpWatcher(Listener):
    """Feeds the CarriedFiles from one SFTP channel's requests and replies (never raises)."""

    name = "sftp-carried"

    def __init__(
        self,
        record: CarriedFiles,
        identity: str,
        target: str,
        login: str,
        on_commands: Callable[[tuple[str, ...]], None] | None = None,
    ) -> None:
        self.record = record
        self.identity = identity
        self.target = target
        self.login = login
        self.broken: str | None = None
        self._on_commands = on_commands  # effects of a request once the watcher is broken
        self._pending: dict[int, tuple] = {}  # request id -> what it was
        self._opening: dict[int, Writing] = {}  # OPEN id -> its writing, until HANDLE
        self._handles: dict[bytes, _Open] = {}
        self._buffer = bytearray()
        self._skip = 0  # bytes of a reply packet not worth reading

    # --- requests, as forwarded ------------------------------------------------------

    def forwarded(self, request: SftpRequest) -> None:
        """The relay sends `request` to the target now."""
        if self.broken is not None:
            if request.commands and self._on_commands is not None:
                self._on_commands(request.commands)
            return
        try:
            self._request(request)
        except Exception as exc:  # noqa: BLE001  fail closed: writes stay unknown
            self._break(f"{type(exc).__name__}: {exc}")
            if request.commands and self._on_commands is not None:
                self._on_commands(request.commands)

    def _path(self, raw: bytes) -> str | None:
        home = self.record.home(self.identity, self.target, self.login)
        text = raw.decode("utf-8", "surrogateescape")
        return Resolver(self.login, home).path(text or ".")

    def _track(self, request_id: int, what: tuple) -> None:
        if len(self._pending) >= MAX_TRACKED:
            self._break("too many requests awaiting replies")
            return
        self._pending[request_id] = what

    def _request(self, request: SftpRequest) -> None:
        kind, request_id = request.kind, request.request_id
        if request_id is None:
            return
        body = _Reader(request.raw[9:])
        if kind == FXP_OPEN:
            self._open(request_id, body)
        elif kind == FXP_WRITE:
            handle, offset, data = body.string(), body.uint64(), body.string()
            found = self._handles.get(handle)
            if found is not None:
                found.writing.write(offset, data)
                found.outstanding.add(request_id)
                self._track(request_id, ("write", handle))
        elif kind == FXP_CLOSE:
            handle = body.string()
            if handle in self._handles:
                self._track(request_id, ("close", handle))
        elif kind in (FXP_REMOVE, FXP_RMDIR):
            path = self._path(body.string())
            if path is not None:
                self._unknown(path, "being removed")
                self._track(request_id, ("remove", path))
        elif kind == FXP_RENAME:
            self._rename(request_id, body)
        elif kind == FXP_SYMLINK:
            self._linked()
        elif kind in (FXP_SETSTAT, FXP_FSETSTAT):
            self._setstat(kind, body)
        elif kind == FXP_REALPATH:
            if body.string() in (b".", b""):
                self._track(request_id, ("home",))
        elif kind == FXP_EXTENDED:
            name = body.string()
            if name == b"posix-rename@openssh.com":
                self._rename(request_id, body)
            elif name == b"hardlink@openssh.com":
                self._linked()

    def _open(self, request_id: int, body: _Reader) -> None:
        path = self._path(body.string())
        flags = body.uint32()
        if path is None or not flags & (PFLAG_WRITE | PFLAG_APPEND):
            return
        writing = self.record.begin(self.identity, self.target, path, via="sftp")
        if flags & PFLAG_APPEND:
            writing.fail("appended to")
        elif not (flags & PFLAG_TRUNC or flags & PFLAG_CREAT and flags & PFLAG_EXCL):
            writing.fail("opened without truncating: earlier bytes may remain")
        self._opening[request_id] = writing
        self._track(request_id, ("open",))

    def _rename(self, request_id: int, body: _Reader) -> None:
        old, new = self._path(body.string()), self._path(body.string())
        if old is None or new is None:
            self._linked()
            return
        self._unknown(new, "being replaced")
        self._track(request_id, ("rename", old, new))

    def _setstat(self, kind: int, body: _Reader) -> None:
        where = body.string()
        if kind == FXP_FSETSTAT:
            found = self._handles.get(where)
            path = found.writing.path if found else None
        else:
            path = self._path(where)
        flags = body.uint32()
        if path is not None and flags & ATTR_SIZE:
            self._unknown(path, "its size was changed")
            if kind == FXP_FSETSTAT and found is not None:
                found.writing.fail("its size was changed while written")

    def _unknown(self, path: str, why: str) -> None:
        for found in self.record.matching(self.identity, self.target, path):
            self.record.mark_unknown(self.identity, self.target, found, why, via="sftp")

    def _linked(self) -> None:
        self.record.poison(
            self.identity, self.target, "an SFTP link", spread="an SFTP link was made"
        )

    # --- replies ----------------------------------------------------------------------

    def on_output(self, event: Output) -> None:
        if event.stream is not Stream.STDOUT or not event.raw or self.broken is not None:
            return
        try:
            self._replies(event.raw)
        except (SftpProtocolError, struct.error) as exc:
            self._break(f"a reply not understood: {exc}")

    def on_exit(self, event: Exit) -> None:
        self._break("the channel ended", quiet=True)

    def _replies(self, data: bytes) -> None:
        if self._skip:
            skipped = min(self._skip, len(data))
            self._skip -= skipped
            data = data[skipped:]
        self._buffer += data
        while len(self._buffer) >= 9 and not self._skip:
            length, kind = struct.unpack_from(">IB", self._buffer)
            if kind not in _READ_REPLIES or length > MAX_REPLY:
                if kind in (FXP_STATUS, FXP_HANDLE):
                    self._break("a status reply too long")
                    return
                have = min(len(self._buffer), 4 + length)
                self._skip = 4 + length - have
                del self._buffer[:have]
                continue
            if len(self._buffer) < 4 + length:
                return
            packet = bytes(self._buffer[5 : 4 + length])
            del self._buffer[: 4 + length]
            self._reply(kind, _Reader(packet))

    def _reply(self, kind: int, body: _Reader) -> None:
        request_id = body.uint32()
        what = self._pending.pop(request_id, None)
        if what is None:
            return
        if kind == FXP_HANDLE and what[0] == "open":
            handle = body.string()
            writing = self._opening.pop(request_id)
            if len(self._handles) >= MAX_HANDLES:
                writing.fail("too many files open for writing at once")
                self.record.finish(writing)
            else:
                self._handles[handle] = _Open(writing)
            return
        if kind == FXP_NAME and what[0] == "home":
            if body.uint32() >= 1:
                home = body.string().decode("utf-8", "surrogateescape")
                self.record.learn_home(self.identity, self.target, self.login, home)
            return
        ok = kind == FXP_STATUS and body.uint32() == 0
        self._status(what, request_id, ok)

    def _status(self, what: tuple, request_id: int, ok: bool) -> None:
        if what[0] == "open":  # no handle: the open failed
            self.record.finish(self._opening.pop(request_id), ok=False, why="the open failed")
        elif what[0] == "write":
            found = self._handles.get(what[1])
            if found is not None:
                found.outstanding.discard(request_id)
                if not ok:
                    found.writing.fail("a write failed")
        elif what[0] == "close":
            found = self._handles.pop(what[1], None)
            if found is not None:
                confirmed = ok and not found.outstanding
                self.record.finish(found.writing, ok=confirmed, why="the close was not confirmed")
        elif what[0] == "remove" and ok:
            self.record.remove(self.identity, self.target, what[1])
        elif what[0] == "rename" and ok:
            self.record.move(self.identity, self.target, what[1], what[2])

    def _break(self, why: str, *, quiet: bool = False) -> None:
        if self.broken is None and not quiet:
            log.warning("SFTP transfers not followed any more: %s", why)
        self.broken = self.broken or why
        for writing in list(self._opening.values()) + [o.writing for o in self._handles.values()]:
            self.record.finish(writing, ok=False, why=f"not followed to its end ({why})")
        self._opening.clear()
        self._handles.clear()
        self._pending.clear()
