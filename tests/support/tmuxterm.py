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
        self.send(text)
        self.press("Enter")

    def send(self, text: str) -> None:
        """Type text as it is, no Enter (as bytes: tmux reads nothing into it, not even `;`)."""
        data = text.encode()
        for start in range(0, len(data), 200):
            chunk = data[start : start + 200]
            self._tmux("send-keys", "-t", "t", "-H", *(f"{b:02x}" for b in chunk))

    def press(self, *keys: str) -> None:
        """Named keys: Enter, C-o, Escape, Up, Left, BSpace..."""
        self._tmux("send-keys", "-t", "t", *keys)

    def paste(self, text: str) -> None:
        """A paste, bracketed when the program asked for it (as a terminal does)."""
        self._tmux("set-buffer", "-b", "p", "--", text)
        self._tmux("paste-buffer", "-p", "-d", "-b", "p", "-t", "t")

    def resize(self, cols: int, rows: int) -> None:
        self._tmux("resize-window", "-t", "t", "-x", str(cols), "-y", str(rows))

    def screen(self) -> str:
        """What the terminal shows now (its visible lines, joined)."""
        return self._tmux("capture-pane", "-t", "t", "-p")

    def history(self, *, joined: bool = False) -> str:
        """The screen and the lines that scrolled off it (`joined`: rows it wrapped, one line)."""
        return self._tmux("capture-pane", "-t", "t", "-p", "-S", "-", *(["-J"] if joined else []))

    def wait_for(
        self, text: str, timeout: float = 30.0, *, count: int = 1, joined: bool = False
    ) -> str:
        """Poll until `text` has been shown `count` times; return the history."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.history(joined=joined)
            if shown.count(text) >= count:
                return shown
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{text!r} not on the screen {count} times; it shows:\n{shown[-3000:]}"
                )
            time.sleep(0.05)

    def close(self) -> None:
        subprocess.run(
            ["tmux", "-f", "/dev/null", "-L", self.socket, "kill-server"],
            capture_output=True,
            timeout=20,
        )
