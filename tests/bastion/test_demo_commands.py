"""Every command `bastion demo` prints works when pasted, in the order printed.

The demo runs as a real process (bastion, sshd target, dev issuer); each
printed line is run as a person would run it: `bastion ...` lines with this
venv's bastion, the interactive shell under a pty, the held command in the
background while the reviewer's lines approve it, and the placeholders N and
SESSION_ID replaced by what the earlier commands showed.
"""

from __future__ import annotations

import json
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest
from ptydriver import PtyProcess

from bastion.demo import DEMO_IDENTITY

BASTION = [sys.executable, "-m", "bastion"]


@pytest.fixture(scope="module")
def demo(test_login: str) -> Iterator[list[str]]:
    process = subprocess.Popen(
        [*BASTION, "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    commands: list[str] = []
    printed: list[str] = []
    deadline = time.monotonic() + 120
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        printed.append(line)
        if line.startswith("  ") and line.strip():
            commands.append(line.strip())
        elif commands and not line.strip():
            break
    try:
        assert commands, "".join(printed)
        yield commands
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


def _argv(command: str) -> list[str]:
    words = shlex.split(command, comments=True)
    return [*BASTION, *words[1:]] if words[0] == "bastion" else words


def _run(command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(command), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


def _find(commands: list[str], pattern: str) -> str:
    found = [c for c in commands if re.search(pattern, c)]
    assert len(found) == 1, (pattern, commands)
    return found[0]


def _device_login(command: str) -> subprocess.CompletedProcess[str]:
    """Run `bastion login --device` and sign in at the URL it prints, as the demo agent."""
    process = subprocess.Popen(
        _argv(command), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stderr is not None
    lines: list[str] = []

    def read() -> None:
        for line in process.stderr:  # type: ignore[union-attr]
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    url = None
    while url is None and time.monotonic() < deadline:
        found = [m for line in lines for m in re.findall(r"https?://\S+user_code=\S+", line)]
        url = found[0] if found else None
        time.sleep(0.1)
    assert url, lines
    with urllib.request.urlopen(f"{url}&identity={DEMO_IDENTITY}", timeout=10) as reply:
        assert reply.status == 200
    out, _ = process.communicate(timeout=60)
    reader.join(timeout=5)
    return subprocess.CompletedProcess(process.args, process.returncode, out, "".join(lines))


def test_every_printed_command_works(demo: list[str]) -> None:
    done: set[str] = set()

    def ran(command: str) -> str:
        done.add(command)
        return command

    token = ran(_find(demo, r"^bastion login .*--token-file"))
    assert _run(token).returncode == 0
    device = ran(_find(demo, r"^bastion login .*--device"))
    result = _device_login(device)
    assert result.returncode == 0, result.stderr
    assert "certificate serial" in result.stdout

    hello = _run(ran(_find(demo, r"echo hello from")))
    assert hello.returncode == 0 and "hello from" in hello.stdout, hello.stderr

    shell = PtyProcess(_argv(ran(_find(demo, r"an interactive shell"))))
    try:
        shell.expect(b"$ ", timeout=30)
        shell.send(b"echo in-the-shell\r")
        shell.expect(b"in-the-shell")
        shell.send(b"exit\r")
        assert shell.wait(timeout=20) == 0
    finally:
        shell.kill()

    direct = _run(ran(_find(demo, r"%demo-target@127\.0\.0\.1")))
    assert direct.returncode == 0 and "load average" in direct.stdout, direct.stderr

    held_line = ran(_find(demo, r"held for review"))
    held = subprocess.Popen(
        _argv(held_line), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    listing = ran(_find(demo, r"bastion requests$"))
    request_id = None
    deadline = time.monotonic() + 30
    while request_id is None and time.monotonic() < deadline:
        shown = _run(listing)
        assert shown.returncode == 0, shown.stderr
        ids = re.findall(r"^(\d+)\s", shown.stdout, re.M)
        request_id = ids[0] if ids else None
        time.sleep(0.3)
    assert request_id, f"not in the reviewer's listing: {shown.stdout} {shown.stderr}"
    approve = _run(ran(_find(demo, r"'approve N'")).replace("approve N", f"approve {request_id}"))
    assert approve.returncode == 0, approve.stderr
    out, err = held.communicate(timeout=30)
    assert held.returncode == 0 and out.strip() == "42", err

    for pattern in (r"^bastion requests --state-dir", r"^bastion sessions ", r"^bastion audit "):
        result = _run(ran(_find(demo, pattern)))
        assert result.returncode == 0, result.stderr

    sessions = _find(demo, r"^bastion sessions ")
    rows = json.loads(_run(sessions + " --json").stdout)
    recorded = [r["id"] for r in rows if r["kind"] == "shell"]
    replay = ran(_find(demo, r"^bastion replay SESSION_ID"))
    played = _run(replay.replace("SESSION_ID", recorded[-1]) + " --speed 1000 --idle-limit 0.01")
    assert played.returncode == 0 and "in-the-shell" in played.stdout, played.stderr

    search = ran(_find(demo, r"^bastion search"))
    deadline = time.monotonic() + 30
    while True:  # screen text is indexed in the background once a session ends
        found = _run(search)
        if "hello from" in found.stdout or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert found.returncode == 0 and "hello from" in found.stdout, found.stdout + found.stderr

    commands = [c for c in demo if not c.startswith("#")]
    assert sorted(set(commands) - done) == [], "a printed command no test ran"
