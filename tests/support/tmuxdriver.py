"""Drive a real terminal (tmux) running the OpenSSH client, and read its screen back."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

CONFIG = "set -g remain-on-exit on\nset -g history-limit 5000\nset -g status off\n"


class Tmux:
    """One tmux server (its own socket) with one window running `argv`."""

    def __init__(
        self, argv: list[str], workdir: Path, *, width: int = 120, height: int = 40
    ) -> None:
        tmux = shutil.which("tmux")
        if tmux is None:
            raise RuntimeError("tmux is not installed (.ci/run installs it)")
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "tmux.conf"
        config.write_text(CONFIG)
        self._base = [tmux, "-S", str(workdir / "tmux.sock"), "-f", str(config)]
        env = dict(os.environ, TERM="xterm-256color")
        self._env = env
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), "--", *argv)

    def _tmux(self, *args: str) -> str:
        result = subprocess.run(
            [*self._base, *args], capture_output=True, text=True, timeout=20, env=self._env
        )
        if result.returncode != 0:
            raise RuntimeError(f"tmux {args[0]} failed: {result.stderr.strip()}")
        return result.stdout

    def type(self, text: str) -> None:
        """Literal text, as if typed (sent as hex: tmux reads nothing into it)."""
        data = text.encode()
        for start in range(0, len(data), 200):
            chunk = data[start : start + 200]
            self._tmux("send-keys", "-t", "t", "-H", *(f"{b:02x}" for b in chunk))

    def keys(self, *names: str) -> None:
        """Named keys: Enter, C-o, Escape, Up, Left, BSpace..."""
        self._tmux("send-keys", "-t", "t", *names)

    def line(self, text: str) -> None:
        self.type(text)
        self.keys("Enter")

    def paste(self, text: str) -> None:
        """A paste, bracketed when the program asked for it (as a terminal does)."""
        self._tmux("set-buffer", "-b", "p", "--", text)
        self._tmux("paste-buffer", "-p", "-d", "-b", "p", "-t", "t")

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", "t", "-x", str(width), "-y", str(height))

    def screen(self) -> str:
        """The visible screen, one line per row."""
        return self._tmux("capture-pane", "-p", "-t", "t")

    def history(self) -> str:
        """Everything shown since the start, wrapped rows joined."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-", "-t", "t")

    def wait_for(self, text: str, timeout: float = 15.0, *, count: int = 1) -> str:
        """Poll the whole history until `text` appears `count` times; return it."""
        deadline = time.monotonic() + timeout
        while True:
            shown = self.history()
            if shown.count(text) >= count:
                return shown
            if time.monotonic() > deadline:
                raise TimeoutError(f"{text!r} not seen {count} times; screen:\n{shown[-3000:]}")
            time.sleep(0.05)

    def dead(self) -> bool:
        return self._tmux("display-message", "-p", "-t", "t", "#{pane_dead}").strip() == "1"

    def close(self) -> None:
        subprocess.run([*self._base, "kill-server"], capture_output=True, timeout=20, env=self._env)
