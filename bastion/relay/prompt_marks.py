"""The bastion's own prompt marks, found in a shell's output and taken out of it.

The upstream shell prints OSC 133 semantic-prompt marks (the sequences
terminals' shell integration uses) carrying this session's nonce:

    ESC ] 133 ; D ; <exit status> ; bastion=<nonce> BEL    a command ended (sync request)
    ESC ] 133 ; A ; bastion=<nonce> ; t=<token> BEL       the prompt starts
    ESC ] 133 ; B ; bastion=<nonce> BEL                   the prompt ends: the shell reads

    >>> scanner = MarkScanner("n0nce")
    >>> scanner.feed(b"out\\x1b]133;D;1;bastion=n0")
    [b'out']
    >>> scanner.feed(b"nce\\x07\\x1b]133;A;other=1\\x07$ ")
    [Mark(kind='D', status=1, token=None), b'\\x1b]133;A;other=1\\x07$ ']

A mark with another nonce, or none, is output like any other (passed on,
never acted on). The nonce itself is cut out of any output it appears in
(a shell trace, a listing of the bastion's prompt function), so the agent
never reads it. Marks split across reads are put together: a tail that
could still become a mark or the nonce is held back until the next read or
`flush()`.
"""

from __future__ import annotations

from dataclasses import dataclass

OSC_133 = b"\x1b]133;"
BEL = b"\x07"
ST = b"\x1b\\"
MAX_MARK = 160  # longer than any mark of ours: such an OSC is somebody else's
NONCE_REDACTED = b"[bastion]"


@dataclass(frozen=True)
class Mark:
    kind: str  # A | B | D (another kind carrying our nonce is reported, and ignored)
    status: int | None = None  # D: the exit status of what ran
    token: str | None = None  # A: the sync token the shell read back


Piece = bytes | Mark


class MarkScanner:
    def __init__(self, nonce: str) -> None:
        if not nonce or not nonce.isalnum():
            raise ValueError("the nonce must be non-empty and alphanumeric")
        self.nonce = nonce.encode("ascii")
        self._tag = b"bastion=" + self.nonce
        self._held = b""

    @property
    def pending(self) -> bool:
        return bool(self._held)

    def feed(self, data: bytes) -> list[Piece]:
        """Output in, output out: text pieces and this session's marks, in order."""
        buf = self._held + data
        self._held = b""
        pieces: list[Piece] = []
        text = bytearray()
        i = 0
        while i < len(buf):
            start = buf.find(b"\x1b", i)
            if start < 0:
                text += buf[i:]
                break
            text += buf[i:start]
            end, mark = self._mark_at(buf, start)
            if end is None:  # could still become a mark: wait for more
                self._held = buf[start:]
                break
            if mark is None:
                text += buf[start:end]
            else:
                self._emit_text(text, pieces)
                text = bytearray()
                pieces.append(mark)
            i = end
        self._emit_text(text, pieces, final=False)
        return pieces

    def flush(self) -> bytes:
        """What was held back, as plain output (no more output is coming for now)."""
        held, self._held = self._held, b""
        return held.replace(self.nonce, NONCE_REDACTED)

    # --- inside ---------------------------------------------------------------------

    def _emit_text(self, text: bytearray, pieces: list[Piece], *, final: bool = True) -> None:
        data = bytes(text).replace(self.nonce, NONCE_REDACTED)
        if not final:
            keep = _partial_suffix(data, self.nonce)
            if keep:
                self._held = data[-keep:] + self._held
                data = data[:-keep]
        if data:
            if pieces and isinstance(pieces[-1], bytes):
                pieces[-1] += data
            else:
                pieces.append(data)

    def _mark_at(self, buf: bytes, start: int) -> tuple[int | None, Mark | None]:
        """(end of the escape at `start`, our mark or None); end None: incomplete."""
        head = buf[start : start + len(OSC_133)]
        if not OSC_133.startswith(head):
            return start + 1, None  # another escape: the ESC is plain output
        if len(head) < len(OSC_133):
            return (None, None) if start + len(head) == len(buf) else (start + 1, None)
        body_start = start + len(OSC_133)
        limit = min(len(buf), start + MAX_MARK)
        for j in range(body_start, limit):
            byte = buf[j]
            if byte == 0x07:
                return j + 1, self._parse(buf[body_start:j])
            if byte == 0x1B:
                if j + 1 == len(buf):
                    return None, None
                if buf[j + 1 : j + 2] == b"\\":
                    return j + 2, self._parse(buf[body_start:j])
                return start + 1, None
        if limit == len(buf) and limit < start + MAX_MARK:
            return None, None
        return start + 1, None  # too long to be ours

    def _parse(self, body: bytes) -> Mark | None:
        fields = body.split(b";")
        if self._tag not in fields[1:]:
            return None
        kind = fields[0]
        if kind == b"D":
            status = fields[1] if len(fields) > 2 else b""
            return Mark("D", int(status) if status.isdigit() and len(status) < 4 else None)
        if kind == b"A":
            token = next((f[2:] for f in fields[1:] if f.startswith(b"t=")), b"")
            return Mark("A", token=token.decode("ascii", "replace"))
        return Mark(kind.decode("ascii", "replace")[:8])  # B, or a kind the gate ignores


def _partial_suffix(data: bytes, nonce: bytes) -> int:
    """How many bytes at the end of `data` could be the start of the nonce."""
    for n in range(min(len(nonce) - 1, len(data)), 0, -1):
        if nonce.startswith(data[-n:]):
            return n
    return 0
