"""How a line the bastion itself writes to an agent's channel ends.

On a terminal (a pty was requested) lines end in CRLF: the terminal is in
raw mode and a bare LF would leave the cursor mid-line. Without one, output
is read by programs, and a stray CR becomes part of the last field a script
parses (`...denied\\r`), so lines end in LF as every Unix tool's do.

The relay (bastion/ssh/session.py) writes its messages with `agent_line`.
"""

from __future__ import annotations


def line_end(*, pty: bool) -> bytes:
    return b"\r\n" if pty else b"\n"


def agent_line(message: str, *, pty: bool) -> bytes:
    """`message` as one line for the agent's stderr or terminal."""
    return message.encode("utf-8", "replace") + line_end(pty=pty)
