"""A full recordings disk: an alert, a valid file, no descriptor leak, and with
`[recordings] on_failure = "close"` the session ends with a one-line reason.

The recordings directory is a small tmpfs, which needs root (CI runs as root);
elsewhere these tests are skipped with the reason.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from harness import (
    TARGET_NAME,
    TEST_LOGIN,
    BastionProcess,
    bastion_with_target,
    make_agent,
    state_store,
    wait_until,
)

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"
BIG_OUTPUT = "yes 'a line of output that fills the small recordings disk' | head -c 3000000"


@pytest.fixture()
def small_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs as the recordings dir needs root (CI runs as root)")
    mount = tmp_path / "recordings-tmpfs"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def faulty_bastion(root: Path, login: str, disk: Path, on_failure: str):
    keys = f'spool = "{disk}"\n'
    return bastion_with_target(
        root,
        login,
        edit=lambda text: text.replace(
            'on_failure = "continue"', f'on_failure = "{on_failure}"\n{keys}'
        ),
        # The test waits for ended sessions to be indexed: at full speed, not the default share.
        config="\n[search]\nindex_cpu_share = 1.0\n",
    )


def free(disk: Path) -> None:
    for path in disk.iterdir():
        path.unlink()


def fill(disk: Path) -> None:
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)


def open_paths(bastion: BastionProcess) -> list[str]:
    found = []
    for fd in os.listdir(f"/proc/{bastion.process.pid}/fd"):
        try:
            found.append(os.readlink(f"/proc/{bastion.process.pid}/fd/{fd}"))
        except OSError:
            pass
    return found


def descriptors(bastion: BastionProcess) -> int:
    return len(open_paths(bastion))


def _indexed_all(bastion: BastionProcess) -> bool:
    with state_store(bastion.state) as store:
        ended = [s for s in store.list_sessions() if s.ended is not None]
        return bool(ended) and all(store.screen_index_state(s.id) for s in ended)


def alerts(bastion: BastionProcess) -> list[dict]:  # oldest first
    with state_store(bastion.state) as store:
        return [a.to_json() for a in store.list_alerts(kind="recording-failed")]


def export(bastion: BastionProcess, session_id: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "bastion",
            "export",
            session_id,
            "--state-dir",
            str(bastion.state.root),
        ],
        capture_output=True,
        timeout=60,
    )


def test_a_full_disk_alerts_keeps_the_file_valid_and_leaks_no_descriptor(
    small_disk: Path, test_login: str, tmp_path: Path
) -> None:
    with faulty_bastion(tmp_path / "b", test_login, small_disk, "continue") as bastion:
        agent = make_agent(tmp_path / "agent", bastion.state, bastion.port)
        # One failed recording first: the search indexer's child process and its pipes
        # start with the first ended session, and are not per recording.
        free(small_disk)
        assert agent.run("-J", "bastion", DEST, BIG_OUTPUT).returncode == 0
        assert wait_until(lambda: alerts(bastion), 15)
        assert wait_until(lambda: _indexed_all(bastion), 15)
        before = descriptors(bastion)
        for _ in range(5):
            # The indexer reads each ended session's recording: a file it still has open
            # keeps its space after free() deletes it, and the next session would find the
            # disk full before its first event (the recording then holds only its header).
            assert wait_until(lambda: _indexed_all(bastion), 15)
            free(small_disk)
            result = agent.run("-J", "bastion", DEST, BIG_OUTPUT)
            assert result.returncode == 0 and len(result.stdout) == 3000000  # the session went on
        assert wait_until(lambda: len(alerts(bastion)) >= 6, 15)
        assert not [path for path in open_paths(bastion) if path.startswith(str(small_disk))]
        assert wait_until(lambda: descriptors(bastion) <= before, 10), (before, open_paths(bastion))
        alert = alerts(bastion)[-1]
        assert "No space left on device" in alert["detail"]
        assert "continued unrecorded" in alert["detail"]
        session_id = alert["session_id"]
        exported = export(bastion, session_id)
        assert exported.returncode == 0, exported.stderr
        assert exported.stdout.endswith(b"\n") and b'"o", "a line of output' in exported.stdout
        cast = tmp_path / "exported.cast"
        cast.write_bytes(exported.stdout)
        played = subprocess.run(
            [sys.executable, "-m", "asciinema", "cat", str(cast)], capture_output=True, timeout=60
        )
        assert played.returncode == 0, played.stderr
        assert "ALERT recording-failed" in bastion.log()


def test_on_failure_close_ends_the_session_with_one_line(
    small_disk: Path, test_login: str, tmp_path: Path
) -> None:
    with faulty_bastion(tmp_path / "b", test_login, small_disk, "close") as bastion:
        agent = make_agent(tmp_path / "agent", bastion.state, bastion.port)
        free(small_disk)
        result = agent.run("-J", "bastion", DEST, BIG_OUTPUT + "; sleep 5; echo not-reached")
        assert result.returncode != 0 and b"not-reached" not in result.stdout
        assert len(result.stdout) < 3000000
        assert result.stderr.splitlines() == [
            b"bastion: recording failed: No space left on device; session closed"
        ], result.stderr
        fill(small_disk)  # now not even a recording's header fits: nothing may run
        marker = f"never-ran-{uuid.uuid4().hex[:8]}"
        result = agent.run("-J", "bastion", DEST, f"echo {marker}")
        assert result.returncode != 0 and marker.encode() not in result.stdout
        assert result.stderr.splitlines() == [
            b"bastion: recording failed: No space left on device; session not started"
        ], result.stderr
        assert wait_until(lambda: len(alerts(bastion)) >= 2, 15)
