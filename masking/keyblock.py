"""Inside a private key block: swallow lines until END, over any number of reads.

The BEGIN line is masked by the `private-key` detector, which opens the
block; from then on every line that can belong to a key (base64 body, RFC
1421 headers such as `Proc-Type: 4,ENCRYPTED`, blank lines) is dropped as it
arrives, before END is seen. The block ends at its END line (the rest of
that line is text again) or at the first line that cannot be part of a key:
a truncated key followed by a prompt does not swallow the session.

One rule decides every line, whole or cut in pieces by the reads: a line
whose leading base64 run (blanks allowed) is longer than HOLD bytes has that
run swallowed and the rest is text; any other line is swallowed whole if it
is a key line and is text whole if not. A partial line is held (at most
HOLD bytes) until the rule can decide it.
"""

from __future__ import annotations

import re

HOLD = 4096
_NAME = rb"[A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----"
_END = re.compile(rb"-----END" + _NAME)
_BODY = rb"[A-Za-z0-9+/= \t\r]"  # base64, with the blanks and CR a terminal adds
_BODY_LINES = re.compile(rb"(?:" + _BODY + rb"*\n)+")
_BODY_RUN = re.compile(_BODY + rb"*")


def _run_end(buf: bytes, pos: int, end: int) -> int:
    """End of the base64 run at pos (the pattern matches the empty string, so always a match)."""
    match = _BODY_RUN.match(buf, pos, end)
    return pos if match is None else match.end()


_KEY_LINE = re.compile(_BODY + rb"*|[A-Za-z][A-Za-z0-9-]{0,40}:[ \t][\x20-\x7e]{0,1000}\r?")
_KEY_LINE_PREFIX = re.compile(
    rb"[A-Za-z][A-Za-z0-9-]{0,40}(?::(?:[ \t][\x20-\x7e]{0,1000})?)?|-[-A-Z0-9 ]{0,60}"
)
_TAIL = 80  # bytes of a swallowed partial line kept to find an END split across reads


class KeyBlock:
    """The state of one open key block. `consume` is called with the text after BEGIN."""

    def __init__(self) -> None:
        self.eol = b""  # terminator of the last line swallowed, re-emitted if the block aborts
        self.aborted = False
        self._mid_line = False  # part of the current line was swallowed already (long, or flushed)
        self._tail = b""

    def consume(self, buf: bytes, pos: int, final: bool) -> tuple[int, bool]:
        """Swallow key lines from buf[pos:]; returns (position reached, still inside).

        Still inside with position < len(buf): a partial line is held. Not
        inside: the block ended at END (position just after it) or aborted
        (position at the text that follows; `aborted` is set).
        """
        n = len(buf)
        while pos < n:
            if not self._mid_line:
                body = _BODY_LINES.match(buf, pos)
                if body is not None:
                    pos = body.end()
                    self.eol = b"\r\n" if buf[pos - 2 : pos - 1] == b"\r" else b"\n"
                    continue
            newline = buf.find(b"\n", pos)
            line_end = n if newline < 0 else newline
            end = _END.search(self._tail + buf[pos:line_end])
            if end is not None:
                return pos + end.end() - len(self._tail), False
            if newline < 0:
                return self._partial(buf, pos, final)
            if self._mid_line:
                whole = _run_end(buf, pos, line_end) == line_end
            else:
                whole = _KEY_LINE.fullmatch(buf, pos, line_end) is not None
            if not whole:
                return self._abort(buf, pos, line_end)
            pos = newline + 1
            self.eol = b"\r\n" if buf[newline - 1 : newline] == b"\r" else b"\n"
            self._mid_line, self._tail = False, b""
        return pos, True

    def _partial(self, buf: bytes, pos: int, final: bool) -> tuple[int, bool]:
        """A line without its end yet: swallow it, hold it, or give it back as text.

        A flush (`final`) swallows a base64 partial line, since the block may
        go on; a header or END fragment stays held (bounded) even then.
        """
        n = len(buf)
        run = _run_end(buf, pos, n)
        if self._mid_line or run - pos > HOLD or (final and run == n):
            if run < n:  # a byte no key line holds, after the run
                return self._abort(buf, pos, n)
            self._swallow_partial(buf, pos, n)
            return n, True
        if run == n or _KEY_LINE_PREFIX.fullmatch(buf, pos, n) is not None:
            return pos, True  # hold until the line can be decided
        return self._abort(buf, pos, n)

    def _swallow_partial(self, buf: bytes, pos: int, end: int) -> None:
        self._mid_line = True
        self._tail = (self._tail + buf[pos:end])[-_TAIL:]

    def _abort(self, buf: bytes, pos: int, line_end: int) -> tuple[int, bool]:
        """Not a key line: a long base64 run heading it is swallowed, the rest is text."""
        run = _run_end(buf, pos, line_end)
        if self._mid_line or run - pos > HOLD:
            pos = run
        self.aborted = True
        return pos, False
