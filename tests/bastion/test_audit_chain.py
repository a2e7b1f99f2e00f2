"""The audit hash chain notices edits, deletions and rows written behind the bastion's back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.store.db import Database
from bastion.store.repos import AuditRepo


@pytest.fixture()
def state(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path / "state")
    initialise(state)
    db = Database(state.database)
    repo = AuditRepo(db)
    for n in range(5):
        row = repo.add(kind="exec", identity="ci-agent", command=f"echo {n}", decision="allow")
        repo.update(row, ended=1000.0 + n, exit_status=0, certain=True)
    db.close()
    return state


def verify(state: StateDir) -> list[str]:
    db = Database(state.database)
    try:
        result = AuditRepo(db).verify()
        assert result.entries == 10 or not result.intact
        return result.problems
    finally:
        db.close()


def tamper(state: StateDir, sql: str, *params: object) -> None:
    db = Database(state.database)
    db.conn.execute(sql, params)
    db.close()


def test_an_untouched_log_verifies(state: StateDir) -> None:
    assert verify(state) == []


def test_an_edited_row_is_reported(state: StateDir) -> None:
    tamper(state, "UPDATE audit SET command = 'echo nothing to see' WHERE id = 3")
    assert verify(state) == ["audit row 3: command edited"]


def test_an_edited_update_is_reported(state: StateDir) -> None:
    tamper(state, "UPDATE audit SET exit_status = 1 WHERE id = 2")
    assert verify(state) == ["audit row 2: exit_status edited"]


def test_a_deleted_row_is_reported(state: StateDir) -> None:
    tamper(state, "DELETE FROM audit WHERE id = 4")
    assert verify(state) == ["audit row 4: deleted"]


def test_a_row_added_behind_the_bastion_is_reported(state: StateDir) -> None:
    tamper(state, "INSERT INTO audit (time, kind, command) VALUES (1.0, 'exec', 'forged')")
    assert verify(state) == ["audit row 6: not in the chain (added behind the bastion)"]


def test_rewriting_the_journal_breaks_the_links(state: StateDir) -> None:
    tamper(
        state,
        "UPDATE audit_chain SET fields = replace(fields, 'echo 2', 'echo X') WHERE audit_id = 3",
    )
    tamper(state, "UPDATE audit SET command = 'echo X' WHERE id = 3")
    problems = verify(state)
    assert any("hash does not match its content" in p for p in problems), problems


def test_removing_journal_entries_breaks_the_links(state: StateDir) -> None:
    tamper(state, "DELETE FROM audit_chain WHERE seq IN (5, 6)")
    tamper(state, "DELETE FROM audit WHERE id = 3")
    problems = verify(state)
    assert any("does not follow entry before it" in p for p in problems), problems


def test_the_cli_exits_non_zero_when_broken(state: StateDir) -> None:
    def cli() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "bastion", "audit", "verify", "--state-dir", str(state.root)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    good = cli()
    assert good.returncode == 0 and "audit chain intact: 5 rows, 10 entries" in good.stdout
    tamper(state, "DELETE FROM audit WHERE id = 1")
    bad = cli()
    assert bad.returncode == 1
    assert "audit row 1: deleted" in bad.stderr and "BROKEN (1 problems)" in bad.stdout
