"""A real terminal for end-to-end tests: tmux runs a command, the test types and reads the screen.

tmux is a terminal emulator: `capture-pane` returns what a person would see
on the screen (escape sequences interpreted, cursor moves applied), which is
what the masker must keep secrets off. Each instance runs its own tmux
server on a private socket, so tests do not share state.
"""

from __future__ import annotations

import shlex
import subprocess
import time
import uuid


class TmuxTerminal:
    def __init__(self, argv: list[str], *, cols: int = 100, rows: int = 30) -> None:
        self.socket = f"bastion-test-{uuid.uuid4().hex[:12]}"
        self._tmux(
            "new-session", "-d", "-x", str(cols), "-y", str(rows), "-s", "t",
            " ".join(shlex.quote(a) for a in argv),
        )  # fmt: skip
        self._tmux("set-option", "-t", "t", "remain-on-exit", "on")

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-f", "/dev/null", "-L", self.socket, *args],
            capture_output=True,
            timeout=20,
        )
        if result.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {result.stderr.decode(errors='replace')}")
        return result.stdout.decode("utf-8", "replace")

    def type(self, text: str) -> None:
        """Type text (literally) and press Enter."""
        self._tmux("send-keys", "-t", "t", "-l", text)
        self._tmux("send-keys", "-t", "t", "Enter")

    def screen(self) -> str:
        """What the terminal shows now (its visible lines, joined)."""
        return self._tmux("capture-pane", "-t", "t", "-p")

    def history(self) -> str:
        """The screen and the lines that scrolled off it."""
        return self._tmux("capture-pane", "-t", "t", "-p", "-S", "-")

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            shown = self.history()
            if text in shown:
                return shown
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not on the screen; it shows:\n{shown[-2000:]}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-f", "/dev/null", "-L", self.socket, "kill-server"],
            capture_output=True,
            timeout=20,
        )
