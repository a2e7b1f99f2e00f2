"""`bastion search` finds a session by what it put on screen, exec and interactive shell alike."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

from harness import TARGET_NAME, TEST_LOGIN, Agent, BastionProcess, wait_until
from ptydriver import PtyProcess

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def search(bastion: BastionProcess, text: str) -> list[dict]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bastion",
            "search",
            text,
            "--json",
            "--state-dir",
            str(bastion.state.root),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_exec_output_is_searchable_after_the_session(agent: Agent, bastion: BastionProcess) -> None:
    token = f"needle-{uuid.uuid4().hex[:12]}"
    result = agent.run("-J", "bastion", DEST, f"printf 'a\\n%s found\\n' {token}")
    assert result.returncode == 0 and token.encode() in result.stdout
    hits = wait_until(lambda: search(bastion, f"{token} found"), 20, interval=0.3)
    assert hits and len(hits) == 1, hits
    assert hits[0]["identity"] == "test-agent" and hits[0]["target"] == TARGET_NAME
    assert hits[0]["kind"] == "exec" and token in hits[0]["snippet"]


def test_shell_screen_text_is_searchable(agent: Agent, bastion: BastionProcess) -> None:
    word = uuid.uuid4().hex[:10]
    shell = PtyProcess(agent.ssh("-tt", "-J", "bastion", DEST))
    try:
        shell.expect(b"$ ")
        shell.send(f"echo shell-{word}-$((6*7))\r".encode())
        shell.expect(f"shell-{word}-42".encode())
        shell.send(b"exit\r")
        assert shell.wait() == 0
    finally:
        shell.kill()
    hits = wait_until(lambda: search(bastion, f"shell-{word}-42"), 20, interval=0.3)
    assert hits and {h["kind"] for h in hits} == {"shell"}
