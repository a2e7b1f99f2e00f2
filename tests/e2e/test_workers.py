"""`bastion serve --workers 2`: two processes share one port, each a node; supervised."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from harness import TARGET_NAME, TEST_LOGIN, Agent, state_store, wait_until

from bastion.localsshd import free_port, wait_for_ssh
from bastion.statedir import StateDir

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def workers_of(supervisor: subprocess.Popen[bytes]) -> dict[str, int]:
    """node name -> pid of the supervisor's children (read from /proc)."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            if parent != supervisor.pid:
                continue
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
        except OSError:
            continue
        if b"--node" in argv:
            found[argv[argv.index(b"--node") + 1].decode()] = int(pid)
    return found


@pytest.mark.parametrize("share", ["reuseport", "inherit"])
def test_two_workers_share_the_port_and_a_dead_one_is_restarted(
    share: str, state: StateDir, target_sshd, agent: Agent, tmp_path
) -> None:
    port = free_port()
    log = (tmp_path / "workers.log").open("ab")
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "bastion", "serve", "--state-dir", str(state.root),
         "--listen", f"127.0.0.1:{port}", "--workers", "2", "--share", share,
         "--node", f"wk-{share}"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert wait_for_ssh(port, timeout=30, process=supervisor)
        assert wait_until(lambda: len(workers_of(supervisor)) == 2, 20)
        started = time.time()
        for n in range(12):
            result = agent.run("-J", f"bastion:{port}", DEST, f"echo w{n}")
            assert result.returncode == 0 and result.stdout == f"w{n}\n".encode(), result.stderr
        with state_store(state) as store:
            nodes = {s.node for s in store.list_sessions() if s.started >= started}
        assert nodes <= {f"wk-{share}-w1", f"wk-{share}-w2"} and nodes, nodes
        before = workers_of(supervisor)
        os.kill(before[f"wk-{share}-w1"], signal.SIGKILL)
        assert wait_until(
            lambda: (
                workers_of(supervisor).get(f"wk-{share}-w1") not in (None, before[f"wk-{share}-w1"])
            ),
            20,
        )
        result = agent.run("-J", f"bastion:{port}", DEST, "echo again")
        assert result.returncode == 0, result.stderr
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(timeout=30) == 0
        assert workers_of(supervisor) == {}
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
        for pid in workers_of(supervisor).values():
            os.kill(pid, signal.SIGKILL)
