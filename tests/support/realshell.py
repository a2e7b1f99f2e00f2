"""A real bash under a pseudo-terminal whose bytes both ways also feed a TerminalModel."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time

from recorder import EnteredLine, TerminalModel


class RealShell:
    def __init__(self, rows: int = 24, cols: int = 80) -> None:
        self.model = TerminalModel(cols, rows)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            env = {"PATH": "/usr/bin:/bin", "TERM": "xterm", "PS1": "user@host:~$ ", "HOME": "/tmp"}
            os.execve("/bin/bash", ["bash", "--norc", "--noprofile", "-i"], env)
        self._winsize(rows, cols)
        self.output = b""
        self.wait_for(b"$ ")

    def _winsize(self, rows: int, cols: int) -> None:
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def resize(self, rows: int, cols: int) -> None:
        self._winsize(rows, cols)
        os.kill(self.pid, signal.SIGWINCH)
        self.model.resize(cols, rows)
        self.settle()

    def pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if ready:
            data = os.read(self.fd, 65536)
            self.output += data
            self.model.feed_output(data)

    def wait_for(self, needle: bytes, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        start = len(self.output)
        while needle not in self.output[start:] and needle not in self.output[-len(needle) - 64 :]:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{needle!r} not seen: {self.output[-300:]!r}")
            self.pump(0.05)

    def settle(self, quiet: float = 0.15) -> None:
        """Read until the shell has been quiet for `quiet` seconds (its echo has arrived)."""
        deadline = time.monotonic() + 5
        last = len(self.output)
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet and time.monotonic() < deadline:
            self.pump(0.02)
            if len(self.output) != last:
                last = len(self.output)
                quiet_since = time.monotonic()

    def type(self, keys: bytes) -> list[EnteredLine]:
        """Send keys one chunk at a time, as the bastion's gate does: Enter only after the echo."""
        lines: list[EnteredLine] = []
        for chunk in _split_at_enter(keys):
            if chunk in (b"\r", b"\n"):
                self.settle()
            lines += self.model.feed_input(chunk)
            os.write(self.fd, chunk)
            self.settle(0.05)
        return lines

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def _split_at_enter(keys: bytes) -> list[bytes]:
    """Chunks ending before each CR or LF, as the bastion's gate sends them."""
    chunks, current = [], b""
    for byte in keys:
        b = bytes([byte])
        if b in (b"\r", b"\n"):
            if current:
                chunks.append(current)
            chunks.append(b)
            current = b""
        else:
            current += b
    if current:
        chunks.append(current)
    return chunks
