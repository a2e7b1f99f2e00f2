"""Interactive shells with a pty, and every session on record as asciicast v2."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from harness import (
    TARGET_NAME,
    TEST_LOGIN,
    Agent,
    BastionProcess,
    audit_rows,
    make_agent,
    recording_path,
    start_bastion,
    state_store,
    wait_until,
)
from ptydriver import PtyProcess

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def asciinema_cat(path: Path) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("asciinema")
    argv = [exe] if exe else [sys.executable, "-m", "asciinema"]
    return subprocess.run([*argv, "cat", str(path)], capture_output=True, timeout=60)


def output_recorded(path: Path, text: str) -> bool:
    """True once an output event (not the header's title) holds `text`."""
    if not path.exists():
        return False
    lines = path.read_text(errors="replace").splitlines()[1:]
    return any(text in line for line in lines if '"o"' in line)


def find_session(state, predicate, timeout: float = 10.0):
    def lookup():
        with state_store(state) as store:
            return next((s for s in reversed(store.list_sessions()) if predicate(s)), None)

    return wait_until(lookup, timeout)


def test_interactive_shell_pty_size_resize_and_audited_line(
    agent: Agent, bastion: BastionProcess
) -> None:
    shell = PtyProcess(agent.ssh("-tt", "-J", "bastion", DEST), rows=30, cols=100)
    try:
        shell.expect(b"$ ")
        shell.send(b"stty size\r")
        shell.expect(b"30 100")
        shell.set_size(40, 120)
        time.sleep(0.3)
        shell.send(b"stty size\r")
        shell.expect(b"40 120")
        shell.send(b"echo typed-$((6*7))\r")
        shell.expect(b"typed-42")
        shell.send(b"exit\r")
        assert shell.wait() == 0
    finally:
        shell.kill()
    rows = wait_until(
        lambda: [
            r
            for r in audit_rows(bastion.state)
            if r.kind == "line" and r.command == "echo typed-$((6*7))"
        ]
    )
    assert rows, [r.command for r in audit_rows(bastion.state) if r.kind == "line"]
    wait_until(  # the last line's row is written asynchronously too
        lambda: any(
            r.session_id == rows[-1].session_id and r.command == "exit"
            for r in audit_rows(bastion.state)
        )
    )
    session_lines = [
        (r.command, r.certain)
        for r in audit_rows(bastion.state)
        if r.session_id == rows[-1].session_id
    ]
    assert session_lines == [
        ("stty size", True),
        ("stty size", True),
        ("echo typed-$((6*7))", True),
        ("exit", True),
    ]
    line = rows[-1]
    assert (line.identity, line.target, line.login) == ("test-agent", TARGET_NAME, TEST_LOGIN)
    assert line.session_id and line.started is not None

    session = find_session(bastion.state, lambda s: s.id == line.session_id and s.ended is not None)
    assert session is not None and session.kind == "shell"
    events = [
        json.loads(raw)
        for raw in recording_path(bastion.state, session.id).read_text().splitlines()[1:]
    ]
    kinds = {event[1] for event in events}
    assert {"o", "i", "r"} <= kinds
    resize = next(e[2] for e in events if e[1] == "r")
    assert resize == "120x40"


def test_exec_is_recorded_and_asciinema_reads_it(agent: Agent, bastion: BastionProcess) -> None:
    result = agent.run("-J", "bastion", DEST, "echo recorded-$((40+2)); echo to-err >&2")
    assert result.returncode == 0
    session = find_session(
        bastion.state, lambda s: s.command and "recorded-$((40+2))" in s.command and s.ended
    )
    assert session is not None
    assert session.exit_status == 0 and session.bytes_out > 0
    header = json.loads(recording_path(bastion.state, session.id).read_text().splitlines()[0])
    assert header["version"] == 2 and header["width"] and header["height"]
    assert "test-agent" in header["title"] and TARGET_NAME in header["title"]
    assert "recorded-$((40+2))" in header["title"]
    played = asciinema_cat(recording_path(bastion.state, session.id))
    assert played.returncode == 0, played.stderr
    assert b"recorded-42" in played.stdout
    rows = [r for r in audit_rows(bastion.state) if r.session_id == session.id and r.kind == "exec"]
    assert rows and wait_until(
        lambda: [
            r
            for r in audit_rows(bastion.state)
            if r.session_id == session.id and r.exit_status == 0
        ]
    )


def test_killed_bastion_leaves_readable_recording(bastion: BastionProcess, tmp_path: Path) -> None:
    victim = start_bastion(bastion.state)
    try:
        agent = make_agent(tmp_path, bastion.state, victim.port, identity="kill-test")
        client = subprocess.Popen(
            agent.ssh("-J", "bastion", DEST, "echo before-the-kill; sleep 60"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        session = find_session(bastion.state, lambda s: s.identity == "kill-test", timeout=20)
        assert session is not None
        path = recording_path(bastion.state, session.id)
        assert wait_until(lambda: output_recorded(path, "before-the-kill"), 10)
        victim.stop(signal.SIGKILL)
        client.wait(timeout=30)
        played = asciinema_cat(path)
        assert played.returncode == 0, played.stderr
        assert b"before-the-kill" in played.stdout
    finally:
        victim.stop()


def test_recording_is_readable_while_session_runs(agent: Agent, bastion: BastionProcess) -> None:
    client = subprocess.Popen(
        agent.ssh("-J", "bastion", DEST, "echo live-$((1+1)); sleep 20"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        session = find_session(bastion.state, lambda s: s.command and "live-$((1+1))" in s.command)
        assert session is not None
        path = recording_path(bastion.state, session.id)
        assert wait_until(lambda: output_recorded(path, "live-2"), 10)
        played = asciinema_cat(path)
        assert played.returncode == 0 and b"live-2" in played.stdout
    finally:
        client.kill()
        client.wait(timeout=10)


def test_pty_terminal_type_is_relayed(agent: Agent) -> None:
    import os

    result = subprocess.run(
        agent.ssh("-tt", "-J", "bastion", DEST, "echo term=$TERM; stty size"),
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
        env=dict(os.environ, TERM="vt220"),
    )
    assert result.returncode == 0, result.stderr
    assert b"term=vt220" in result.stdout


def test_sessions_replay_and_export_verbs(agent: Agent, bastion: BastionProcess) -> None:
    result = agent.run("-J", "bastion", DEST, "printf 'replayed-%s\\n' ok")
    assert result.returncode == 0
    session = find_session(
        bastion.state, lambda s: s.command and "replayed-" in s.command and s.ended
    )
    assert session is not None
    base = [sys.executable, "-m", "bastion"]
    state = ["--state-dir", str(bastion.state.root)]
    listed = subprocess.run([*base, "sessions", "--json", *state], capture_output=True, timeout=60)
    assert any(s["id"] == session.id and s["exit_status"] == 0 for s in json.loads(listed.stdout))
    table = subprocess.run([*base, "sessions", *state], capture_output=True, text=True, timeout=60)
    assert session.id in table.stdout
    replayed = subprocess.run(
        [*base, "replay", session.id, "--speed", "100", "--idle-limit", "0.1", *state],
        capture_output=True,
        timeout=60,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert b"replayed-ok" in replayed.stdout
    exported = subprocess.run(
        [*base, "export", session.id, *state], capture_output=True, timeout=60
    )
    assert exported.stdout == recording_path(bastion.state, session.id).read_bytes()
    audit = subprocess.run(
        [*base, "audit", "--json", "--session", session.id, *state], capture_output=True, timeout=60
    )
    rows = json.loads(audit.stdout)
    assert (
        rows and rows[0]["command"] == "printf 'replayed-%s\\n' ok" and rows[0]["exit_status"] == 0
    )
    missing = subprocess.run(
        [*base, "replay", "nosuchsession", *state], capture_output=True, text=True
    )
    assert missing.returncode == 4 and "no session" in missing.stderr
    bad_speed = subprocess.run(
        [*base, "replay", session.id, "--speed", "0", *state], capture_output=True, text=True
    )
    assert bad_speed.returncode == 2


def test_exec_stdin_is_recorded_as_input_events(agent: Agent, bastion: BastionProcess) -> None:
    name = f"rt-{uuid.uuid4().hex[:8]}.sh"
    result = agent.run("-J", "bastion", DEST, f"cat > {name}; rm -f {name}", input=b"id\n")
    assert result.returncode == 0, result.stderr
    session = find_session(bastion.state, lambda s: s.command and name in s.command and s.ended)
    assert session is not None and session.bytes_in == 3
    path = recording_path(bastion.state, session.id)
    events = [json.loads(raw) for raw in path.read_text().splitlines()[1:]]
    assert [e[2] for e in events if e[1] == "i"] == ["id\n"]
    assert asciinema_cat(path).returncode == 0


def test_exec_stdin_past_the_limit_is_counted_not_recorded(
    agent: Agent, bastion: BastionProcess
) -> None:
    """The default limit is 1 MiB of input per session; 3 MiB go through whole."""
    data = b"".join(b"upload line %07d\n" % n for n in range(3 * 1024 * 1024 // 20))
    result = agent.run("-J", "bastion", DEST, "wc -c", input=data)
    assert result.returncode == 0 and int(result.stdout) == len(data)
    session = find_session(
        bastion.state, lambda s: s.command == "wc -c" and s.ended and s.bytes_in == len(data)
    )
    assert session is not None
    events = [
        json.loads(raw)
        for raw in recording_path(bastion.state, session.id).read_text().splitlines()[1:]
    ]
    recorded = "".join(e[2] for e in events if e[1] == "i").encode()
    assert recorded == data[: 1 << 20]
    markers = [e[2] for e in events if e[1] == "m"]
    assert f"input not recorded: {len(data) - (1 << 20)} bytes" in markers
