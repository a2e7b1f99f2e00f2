"""Legacy scp uploads (`scp -O`, the exec `scp -t DEST`): which files arrive, with what bytes.

The agent's stdin is the scp source protocol and the target's stdout its
acknowledgements, in lock step:

    sink -> \\0                          ready
    source -> T<mtime> 0 <atime> 0\\n     sink -> \\0   (with -p)
    source -> C0644 5 run.sh\\n           sink -> \\0   then 5 bytes and \\0 from the source,
    source -> echo\\n\\0                   sink -> \\0   the file is written
    source -> D0755 0 dir\\n ... E\\n       directories (-r)

ScpUpload reads both directions as listener events (it never changes the
bytes) and records each file in the CarriedFiles only when its data and the
sink's acknowledgement both arrived whole; anything out of step, malformed
or refused leaves the file carried but not understood. The sink's name for
a file depends on whether DEST is a directory, which the bastion cannot see:
both DEST/name and DEST are recorded (the one that is not the file cannot
be run as one).

    >>> from bastion.relay.carried import CarriedFiles
    >>> record = CarriedFiles()
    >>> upload = ScpUpload(record, "alice", "web1", ["/home/u/run.sh"], directory=False)
    >>> upload.sink(b"\\0"); upload.source(b"C0644 7 x\\n"); upload.sink(b"\\0")
    >>> upload.source(b"uptime\\n\\0"); upload.sink(b"\\0")
    >>> record.get("alice", "web1", "/home/u/run.sh").content
    'uptime\\n'
"""

from __future__ import annotations

import logging
import re
from collections import deque

from bastion.relay.carried import CarriedFiles, Writing
from bastion.relay.events import Exit, Input, Output, Stream
from bastion.relay.listeners import Listener

log = logging.getLogger("bastion.scp")

MAX_LINE = 8192
MAX_DEPTH = 32
MAX_FILES = 4096  # per upload; past it the upload is not followed
_FILE = re.compile(rb"C([0-7]{4}) ([0-9]{1,19}) ([^/\n]+)")
_DIRECTORY = re.compile(rb"D([0-7]{4}) 0 ([^/\n]+)")
_TIMES = re.compile(rb"T[0-9]{1,19} [0-9]{1,6} [0-9]{1,19} [0-9]{1,6}")


class ScpUpload:
    """One `scp -t` sink's upload, fed the source's bytes and the sink's replies."""

    def __init__(
        self,
        record: CarriedFiles,
        identity: str,
        target: str,
        destinations: list[str],
        *,
        directory: bool,
    ) -> None:
        self.record = record
        self.identity = identity
        self.target = target
        self.broken: str | None = None
        self.files = 0
        # Candidate directories new names go under; at the top, DEST may also be the name.
        self._dirs: list[list[str]] = [destinations]
        self._top_is_name = not directory
        self._in = bytearray()
        self._out = bytearray()
        # line | c-ack (a C line waits for its answer) | data | data-end
        self._state = "line"
        self._left = 0  # data bytes still to come for the current file
        self._pending_file: tuple[str, int] | None = None
        self._writings: list[Writing] = []
        self._acks: deque[tuple[str, list[Writing]]] = deque([("start", [])])

    # --- the two directions --------------------------------------------------------

    def source(self, data: bytes) -> None:
        if self.broken is None:
            self._in += data
            self._parse_source()

    def sink(self, data: bytes) -> None:
        if self.broken is None:
            self._out += data
            self._parse_sink()
            self._parse_source()

    def ended(self) -> None:
        self._break("the upload ended before the sink confirmed it", quiet=True)

    # --- the source ---------------------------------------------------------------

    def _parse_source(self) -> None:
        while self._in and self.broken is None and self._state != "c-ack":
            if self._state == "data":
                take = bytes(self._in[: self._left])
                del self._in[: len(take)]
                for writing in self._writings:
                    writing.write(writing.size, take)
                self._left -= len(take)
                if self._left == 0:
                    self._state = "data-end"
                continue
            if self._state == "data-end" and self._in[0] == 0:
                del self._in[:1]
                self._acks.append(("file", self._writings))
                self._writings = []
                self._state = "line"
                continue
            newline = self._in.find(b"\n")
            if newline < 0:
                if len(self._in) > MAX_LINE:
                    self._break("an scp control line too long")
                return
            line = bytes(self._in[:newline])
            del self._in[: newline + 1]
            self._line(line)
        if len(self._in) > MAX_LINE and self._state == "c-ack":
            self._break("the source sent data before the sink answered")

    def _line(self, line: bytes) -> None:
        if line[:1] in (b"\x01", b"\x02"):  # the source reports an error: no answer comes
            if self._state == "data-end":
                self._finish(self._writings, ok=False, why="the source failed reading the file")
                self._writings = []
                self._state = "line"
            if line[:1] == b"\x02":
                self._break("the source gave up")
            return
        if self._state != "line":
            self._break("file data not followed by its end byte")
        elif line == b"E":
            self._acks.append(("leave", []))
        elif _TIMES.fullmatch(line):
            self._acks.append(("times", []))
        elif match := _FILE.fullmatch(line):
            self._pending_file = (_name(match.group(3)), int(match.group(2)))
            self._acks.append(("file-line", []))
            self._state = "c-ack"
        elif match := _DIRECTORY.fullmatch(line):
            self._acks.append(("enter", []))
            self._pending_dir = _name(match.group(2))
        else:
            self._break(f"an scp control line not understood: {line[:40]!r}")

    _pending_dir = ""

    # --- the sink -------------------------------------------------------------------

    def _parse_sink(self) -> None:
        while self._out and self.broken is None:
            first = self._out[0]
            if first == 0:
                del self._out[:1]
                self._answered(True)
                continue
            if first not in (1, 2):
                self._break("the sink said something else than an answer")
                return
            newline = self._out.find(b"\n")
            if newline < 0:
                if len(self._out) > MAX_LINE:
                    self._break("an scp error line too long")
                return
            del self._out[: newline + 1]
            self._answered(False)
            if first == 2:
                self._break("the sink gave up")

    def _answered(self, ok: bool) -> None:
        if not self._acks:
            self._break("an answer nobody asked for")
            return
        kind, writings = self._acks.popleft()
        if kind == "file":
            self._finish(writings, ok=ok, why="the sink refused the file")
        elif kind == "file-line":
            assert self._pending_file is not None
            name, size = self._pending_file
            self._pending_file = None
            self._state = "line"
            if ok:
                self._start_file(name, size)
        elif kind == "enter" and ok:
            if len(self._dirs) >= MAX_DEPTH:
                self._break("directories nested too deeply")
            else:
                self._dirs.append(self._names(self._pending_dir))
        elif kind == "leave" and ok:
            if len(self._dirs) <= 1:
                self._break("an E line at the top")
            else:
                self._dirs.pop()

    def _names(self, name: str) -> list[str]:
        if name in (".", ".."):
            self._break(f"the name {name!r}")
            return []
        parents = self._dirs[-1]
        names = [f"{parent.rstrip('/')}/{name}" for parent in parents]
        if len(self._dirs) == 1 and self._top_is_name:
            names += parents  # DEST may be the new name itself
        return names[:8]

    def _start_file(self, name: str, size: int) -> None:
        self.files += 1
        if self.files > MAX_FILES:
            self._break(f"more than {MAX_FILES} files")
            return
        self._writings = [
            self.record.begin(self.identity, self.target, path, via="scp")
            for path in self._names(name)
        ]
        self._left = size
        self._state = "data" if size else "data-end"

    def _finish(self, writings: list[Writing], *, ok: bool, why: str) -> None:
        for writing in writings:
            self.record.finish(writing, ok=ok, why=why)

    def _break(self, why: str, *, quiet: bool = False) -> None:
        if self.broken is None and not quiet:
            log.warning("scp upload not followed: %s", why)
        self.broken = self.broken or why
        failed = f"the scp stream was not followed ({why})"
        self._finish(self._writings, ok=False, why=failed)
        self._writings = []
        for _kind, writings in self._acks:
            self._finish(writings, ok=False, why=failed)
        self._acks.clear()


def _name(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


class ScpUploadListener(Listener):
    """Feeds an ScpUpload from a relayed channel's events."""

    name = "scp-upload"

    def __init__(self, upload: ScpUpload) -> None:
        self.upload = upload

    def on_input(self, event: Input) -> None:
        self.upload.source(event.data)

    def on_output(self, event: Output) -> None:
        if event.stream is Stream.STDOUT and event.raw:
            self.upload.sink(event.raw)

    def on_exit(self, event: Exit) -> None:
        self.upload.ended()
