"""No audit row, no command: a store that cannot write denies, and its recovery is an alert."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from harness import (
    TARGET_NAME,
    TEST_LOGIN,
    bastion_with_target,
    make_agent,
    state_store,
    wait_until,
)

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"
PROBE = f"/home/{TEST_LOGIN}/.bastion-audit-probe"


def test_a_locked_database_denies_the_command_and_recovery_raises_an_alert(
    test_login: str, tmp_path: Path
) -> None:
    with bastion_with_target(tmp_path, test_login) as bastion:
        agent = make_agent(tmp_path / "agent", bastion.state, bastion.port)
        assert agent.run("-J", "bastion", DEST, f"rm -f {PROBE}").returncode == 0
        lock = sqlite3.connect(bastion.state.database, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            started = time.monotonic()
            held = agent.run("-J", "bastion", DEST, f"echo ran > {PROBE}", timeout=90)
            waited = time.monotonic() - started
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        assert held.returncode == 126, held.stderr
        assert b"bastion: audit unavailable, command not run" in held.stderr
        assert waited < 60
        check = agent.run("-J", "bastion", DEST, f"cat {PROBE} 2>/dev/null || echo absent")
        assert check.stdout == b"absent\n", check.stderr

        def recovered() -> bool:
            with state_store(bastion.state) as store:
                return any(a.kind == "audit-recovered" for a in store.list_alerts())

        assert wait_until(recovered, timeout=15)
