"""Output masking through the real OpenSSH client: what the agent and the recording see."""

from __future__ import annotations

import os
import re
import shutil
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
    recording_path,
    state_store,
    wait_until,
)
from ptydriver import PtyProcess
from tmuxterm import TmuxTerminal

from masking import fill

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
CARD = "4111 1111 1111 1111"
EMAIL = "jane.doe@example.com"


def asciinema_cat(path: Path) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("asciinema")
    argv = [exe] if exe else [sys.executable, "-m", "asciinema"]
    return subprocess.run([*argv, "cat", str(path)], capture_output=True, timeout=60)


def find_session(state, predicate, timeout: float = 10.0):
    def lookup():
        with state_store(state) as store:
            return next((s for s in reversed(store.list_sessions()) if predicate(s)), None)

    return wait_until(lookup, timeout)


def _finished_session(bastion: BastionProcess, marker: str):
    return find_session(bastion.state, lambda s: s.command and marker in s.command and s.ended)


def test_exec_output_is_masked_and_the_recording_holds_the_masked_text(
    agent: Agent, bastion: BastionProcess
) -> None:
    tag = uuid.uuid4().hex[:8]
    # The secrets are assembled by the target's printf, so the command line itself holds none.
    command = (
        f"printf 'run {tag}\\nkey=%s\\ncard %s\\nmail %s\\n' "
        f"AKIAIOSFODNN7''EXAMPLE '{CARD[:10]}''{CARD[10:]}' jane.doe@'example.com'; "
        f"printf 'err %s\\n' '{AWS_KEY[:8]}''{AWS_KEY[8:]}' >&2"
    )
    result = agent.run("-J", "bastion", DEST, command)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout
        == (
            f"run {tag}\nkey=[MASKED:aws-access-key]\ncard [MASKED:card]\nmail [MASKED:email]\n"
        ).encode()
    )
    assert b"err [MASKED:aws-access-key]" in result.stderr
    assert AWS_KEY.encode() not in result.stderr

    session = _finished_session(bastion, tag)
    assert session is not None
    played = asciinema_cat(recording_path(bastion.state, session.id))
    assert played.returncode == 0, played.stderr
    assert b"key=[MASKED:aws-access-key]" in played.stdout
    recorded = recording_path(bastion.state, session.id).read_bytes()
    for secret in (AWS_KEY, CARD, EMAIL):
        assert secret.encode() not in recorded and secret.encode() not in played.stdout
    rows = wait_until(
        lambda: [
            r
            for r in audit_rows(bastion.state)
            if r.session_id == session.id and r.kind == "masked"
        ]
    )
    assert rows, [r.kind for r in audit_rows(bastion.state) if r.session_id == session.id]
    counts: dict[str, int] = {}
    for row in rows:  # one row when masking starts, then the rest as the channel ends
        assert AWS_KEY not in (row.detail or "")
        for item in (row.detail or "").split():
            name, _, count = item.partition("=")
            counts[name] = counts.get(name, 0) + int(count)
    assert counts == {"aws-access-key": 2, "card": 1, "email": 1}


def test_secret_written_in_two_pieces_is_masked(agent: Agent) -> None:
    result = agent.run(
        "-J", "bastion", DEST, "printf 'id AKIAIOSF'; sleep 0.01; printf 'ODNN7EXAMPLE ok\\n'"
    )
    assert result.stdout == b"id [MASKED:aws-access-key] ok\n"


def test_private_key_printed_by_cat_is_masked(agent: Agent) -> None:
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" * 30
        + "-----END OPENSSH PRIVATE KEY-----\n"
    )
    name = f"key-{uuid.uuid4().hex[:8]}"
    agent.run("-J", "bastion", DEST, f"cat > {name}", input=key.encode())
    result = agent.run("-J", "bastion", DEST, f"echo before; cat {name}; echo after; rm -f {name}")
    assert result.stdout == b"before\n[MASKED:private-key]\nafter\n"


def test_shell_output_is_masked_on_the_terminal_and_in_the_recording(
    agent: Agent, bastion: BastionProcess
) -> None:
    tag = uuid.uuid4().hex[:8]
    shell = PtyProcess(agent.ssh("-tt", "-J", "bastion", DEST), rows=30, cols=120)
    try:
        shell.expect(b"$ ")
        shell.send(f"printf 'shell-{tag} %s\\n' AKIAIOSFODNN7EXAMP''LE\r".encode())
        seen = shell.expect(f"shell-{tag} [MASKED:aws-access-key]".encode())
        assert AWS_KEY.encode() not in seen
        shell.send(b"exit\r")
        assert shell.wait() == 0
    finally:
        shell.kill()
    session = find_session(
        bastion.state, lambda s: s.kind == "shell" and s.ended and _holds(bastion.state, s, tag)
    )
    assert session is not None
    recorded = recording_path(bastion.state, session.id).read_bytes()
    assert b"[MASKED:aws-access-key]" in recorded and AWS_KEY.encode() not in recorded
    played = asciinema_cat(recording_path(bastion.state, session.id))
    assert played.returncode == 0 and AWS_KEY.encode() not in played.stdout


def _holds(state, session, tag: str) -> bool:
    try:
        return tag.encode() in recording_path(state, session.id).read_bytes()
    except OSError:
        return False


def test_binary_output_is_scanned_and_its_secret_overwritten_in_place(
    agent: Agent, bastion: BastionProcess
) -> None:
    tag = uuid.uuid4().hex[:8]
    # A tar-like stream: a header with runs of NULs, a secret and an address, random bytes.
    tail = os.urandom(300_000).replace(b"@", b"!")
    payload = b"header\0\0\0\0" + AWS_KEY.encode() + b" " + EMAIL.encode() + b"\n" + tail
    result = agent.run("-J", "bastion", DEST, f"cat # {tag}", input=payload, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout) == len(payload)  # same length: offsets in the file do not move
    assert AWS_KEY.encode() not in result.stdout and EMAIL.encode() not in result.stdout
    assert result.stdout.startswith(b"header\0\0\0\0" + fill("aws-access-key", len(AWS_KEY)))
    assert result.stdout.endswith(tail)


def test_environ_with_single_nuls_is_still_masked(agent: Agent) -> None:
    result = agent.run(
        "-J", "bastion", DEST, f"printf 'A=1\\0KEY=%s\\0B=2\\0' {AWS_KEY[:10]}{AWS_KEY[10:]}"
    )
    assert result.stdout == b"A=1\0KEY=[MASKED:aws-access-key]\0B=2\0"


def test_sftp_is_not_masked(agent: Agent, tmp_path: Path) -> None:
    name = f"secrets-{uuid.uuid4().hex[:8]}.txt"
    local = tmp_path / "local.txt"
    local.write_bytes(f"key={AWS_KEY}\nmail {EMAIL}\n".encode() * 100)
    batch = f"put {local} {name}\nget {name} {tmp_path / 'back.txt'}\nrm {name}\n".encode()
    result = subprocess.run(
        ["sftp", "-F", str(agent.config), "-b", "-", "-J", "bastion", DEST],
        input=batch,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "back.txt").read_bytes() == local.read_bytes()


def test_scp_download_of_a_file_with_secrets_is_intact(agent: Agent, tmp_path: Path) -> None:
    name = f"scp-secrets-{uuid.uuid4().hex[:8]}.txt"
    content = f"key={AWS_KEY}\nmail {EMAIL}\n".encode() * 50
    agent.run("-J", "bastion", DEST, f"cat > {name}", input=content)
    back = tmp_path / "back.txt"
    for legacy in ([], ["-O"]):
        result = subprocess.run(
            ["scp", "-F", str(agent.config), *legacy, "-J", "bastion", f"{DEST}:{name}", str(back)],
            capture_output=True,
            timeout=120,
        )
        assert result.returncode == 0, (legacy, result.stderr)
        assert back.read_bytes() == content
    agent.run("-J", "bastion", DEST, f"rm -f {name}")


def _put(agent: Agent, name: str, content: bytes) -> None:
    """A file on the target, written through stdin (input is not output: not masked)."""
    result = agent.run("-J", "bastion", DEST, f"cat > {name}", input=content)
    assert result.returncode == 0, result.stderr


def shown(data: bytes) -> bytes:
    """What a terminal shows of some output: escapes removed, backspaces applied."""
    out = []
    for line in data.split(b"\n"):
        cells: list[int] = []
        col = 0
        text = re.sub(rb"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]", b"", line)
        for byte in text.replace(b"\x00", b""):
            if byte == 8:
                col = max(0, col - 1)
            elif byte == 13:
                col = 0
            else:
                cells[col : col + 1] = [byte]
                col += 1
        out.append(bytes(cells))
    return b"\n".join(out)


def test_exec_output_is_masked_however_a_terminal_would_show_it(agent: Agent) -> None:
    name = f"notes-{uuid.uuid4().hex[:8]}.txt"
    _put(agent, name, f"id {AWS_KEY}\nmail {EMAIL}\n".encode())
    cases = {
        "colour inside": f"sed 's/IOSF/IOSF\\x1b[1m/' {name}",
        "backspace": f"sed 's/IOSF/IOSFX\\x08/' {name}",
        "zero-width space": f"sed 's/IOSF/IOSF\\xe2\\x80\\x8b/' {name}",
        "utf-16": f"iconv -f UTF-8 -t UTF-16LE {name}",
        "utf-32": f"iconv -f UTF-8 -t UTF-32 {name}",
        "reversed": f"rev {name}",
        "folded": f"fold -w 8 {name}",
    }
    for label, command in cases.items():
        result = agent.run("-J", "bastion", DEST, command)
        assert result.returncode == 0, (label, result.stderr)
        for seen in (result.stdout, shown(result.stdout), result.stdout.replace(b"\0", b"")):
            flat = seen.replace(b"\n", b"")
            assert AWS_KEY.encode() not in flat, (label, result.stdout)
        assert b"MASKED" in result.stdout.replace(b"\0", b""), (label, result.stdout)
    agent.run("-J", "bastion", DEST, f"rm -f {name}")


def test_exec_output_masks_each_family_the_issue_names(agent: Agent) -> None:
    """One fake secret of each kind, in a file, printed by cat: none comes through."""
    cases = [  # (line, the part that must not come through)
        ("AZURE_CLIENT_SECRET=Kx78Q~Zm2.P4vR9_sT6uW1yB3dF5hJ7kL0nQ2sV", "Kx78Q~Zm2.P4vR9"),
        ("https://hooks.slack.com/services/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",
         "q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds"),
        ("xapp-1-A0ABCDE1234-5512345678901-0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
         "0a1b2c3d4e5f6071"),
        ("//registry.npmjs.org/:_authToken=npm_q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj0Kl2Mn", "q8Zt2LmVx9Rk4"),
        ("pypi-AgEIcHlwaS5vcmcCJDk4ZjRjYTNhLTQ0ZGUtNDFhZS1hZDM4LTk3ZDRiMGFhZGY1NAACKlszLCJmMGE",
         "CJDk4ZjRjYTNh"),
        ("SK0123456789abcdef0123456789abcdef", "0123456789abcdef0123"),
        ("SG.q8Zt2LmVx9Rk4Pw7Yb3Nc6.Ds1Fg5Hj0Kl2MnQ8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj0K", "q8Zt2LmVx9Rk4"),
        ("curl -u deploy:Xq7-pw2hb https://ci.example.com/api", "Xq7-pw2hb"),
        ("password=Tr0ub4dor&3", "Tr0ub4dor"),
        ('api_key: "a8f5f167f44f4964e6c998dee827110c"', "a8f5f167f44f4964e6c998dee827110c"),
        ("sk_test_51H8q2LmVx9Rk4Pw7Yb3Nc6Ds rk_live_61H8q2LmVx9Rk4Pw7Yb3Nc6Ds", "H8q2LmVx9Rk4"),
        ("glrt-q8Zt2LmVx9Rk4Pw7Yb3N glpat-r8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg.01.0f1e2d3c4", "Zt2LmVx9Rk4"),
        ("glpat-r8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj.01150gy1z", "01150gy1z"),
        ("cards 4111.1111.1111.1111, 5555 5555 5555 4444 and 3782-822463-10005", "4444"),
        ("IBAN DE89-3704-0044-0532-0130-00", "3704-0044"),
        ("mail ops@xn--bcher-kva.example", "xn--bcher-kva"),
    ]  # fmt: skip
    secrets = [line for line, _ in cases]
    name = f"notes-{uuid.uuid4().hex[:8]}.txt"
    _put(agent, name, ("\n".join(secrets) + "\n").encode())
    result = agent.run("-J", "bastion", DEST, f"cat {name}; rm -f {name}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(secrets)
    for line, (_, secret) in zip(lines, cases, strict=True):
        assert "[MASKED:" in line, line
        assert secret not in line, line


def test_everyday_output_passes_unchanged_through_the_relay(agent: Agent) -> None:
    command = (
        "printf 'getty@tty1.service user@1000.service loaded active running\\n'; "
        "printf '20190427014516 2 6 100 2047 2 E00F4F6C9F8A3B1C5D7E9F0A2B4C6D8E\\n'; "
        "printf 'commit 9fceb02d0ae598e95dc970b74767f19372d61af8\\n'; "
        "printf '123e4567-e89b-12d3-a456-426614174000 10.1.2.3 1.22.3\\n'; "
        "printf '0123456789012345678901234567890123456789' | xxd; "
        "seq 1 2000"
    )
    result = agent.run("-J", "bastion", DEST, command)
    assert result.returncode == 0, result.stderr
    assert b"MASKED" not in result.stdout, result.stdout[:2000]


def test_a_private_key_body_without_its_begin_line_is_masked(agent: Agent) -> None:
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\n"
        + "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n" * 20
        + "-----END OPENSSH PRIVATE KEY-----\n"
    )
    name = f"key-{uuid.uuid4().hex[:8]}"
    _put(agent, name, key.encode())
    result = agent.run("-J", "bastion", DEST, f"tail -n +2 {name}; rm -f {name}")
    assert result.returncode == 0, result.stderr
    assert b"b3BlbnNzaC1rZXktdjE" not in result.stdout
    assert b"[MASKED:private-key-body]" in result.stdout


def test_the_pty_screen_never_shows_the_secret(agent: Agent) -> None:
    tag = uuid.uuid4().hex[:8]
    name = f"notes-{tag}.txt"
    _put(agent, name, f"id {AWS_KEY}\n".encode())
    term = TmuxTerminal(agent.ssh("-tt", "-J", "bastion", DEST), cols=100, rows=30)
    try:
        term.wait_for(":~$")
        term.type(f"echo start-{tag}; cat {name}; sed 's/IOSF/IOSF\\x1b[7m/' {name}")
        term.type(f"fold -w 8 {name}; rev {name}; echo done-{tag}")
        # The key put together on the screen out of order, by cursor moves: no stream view
        # holds it (the bytes say ODNN7EXAMPLE, then AKIAIOSF), only the screen does.
        term.type(
            "printf '\\033[2J\\033[5;9HODNN7EXA\\033[9;1Hx\\033[5;17HMPLE\\033[5;1HAKIAIOSF"
            f"\\033[12;1Hmoved-{tag}\\n'"
        )
        term.wait_for(f"moved-{tag}")
        time.sleep(1.0)  # output paused: the screen check ran
        screen = term.screen()
        history = term.history()
        assert AWS_KEY not in history.replace("\n", ""), history
        assert AWS_KEY not in screen.replace("\n", ""), screen
        assert "[MASKED:aws-access-key]" in history
        term.type(f"rm -f {name}; exit")
    finally:
        term.close()
