"""`bastion audit verify` and `anchor` on a state dir (the chain itself: tests/store/)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.store import BlockingStore, open_store
from bastion.store.records import AuditEvent


@pytest.fixture()
def state(tmp_path: Path) -> StateDir:
    state = StateDir(tmp_path / "state")
    initialise(state)
    with store_of(state) as store:
        for n in range(5):
            row = store.append_audit(
                AuditEvent(kind="exec", identity="ci-agent", command=f"echo {n}", decision="allow")
            )
            store.update_audit(row, ended=1000.0 + n, exit_status=0, certain=True)
    return state


def store_of(state: StateDir) -> BlockingStore:
    return BlockingStore(open_store(state.store_url(), node="test"))


def verify(state: StateDir) -> list[str]:
    with store_of(state) as store:
        result = store.verify_chain()
        assert result.entries == 10 or not result.intact
        return result.problems


def tamper(state: StateDir, sql: str, *params: object) -> None:
    """A write behind the bastion's back."""

    async def write(store) -> None:
        async with store.transaction() as tx:
            await tx.execute(sql, params)

    with store_of(state) as store:
        store.call(write(store.store))


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
        "UPDATE audit_chain SET fields = replace(fields, 'echo 2', 'echo X') WHERE row_key = '3'",
    )
    tamper(state, "UPDATE audit SET command = 'echo X' WHERE id = 3")
    problems = verify(state)
    assert any("hash does not match its content" in p for p in problems), problems


def test_removing_journal_entries_breaks_the_links(state: StateDir) -> None:
    tamper(state, "DELETE FROM audit_chain WHERE seq IN (5, 6)")
    tamper(state, "UPDATE audit_head SET seq = 8")
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


def cli(state: StateDir, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", "audit", *args, "--state-dir", str(state.root)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_anchor_kept_elsewhere_catches_a_cut_of_the_newest_rows(state: StateDir) -> None:
    import json

    anchor = json.loads(cli(state, "anchor").stdout)
    assert anchor["seq"] == 10 and len(anchor["head"]) == 64 and anchor["time"] > 0
    assert cli(state, "verify", "--head", anchor["head"]).returncode == 0
    # the last row and its two entries go, and the head is set back: the chain alone is fine
    tamper(state, "DELETE FROM audit WHERE id = 5")
    tamper(state, "DELETE FROM audit_chain WHERE seq > 8")
    tamper(
        state, "UPDATE audit_head SET seq = 8, hash = (SELECT hash FROM audit_chain WHERE seq = 8)"
    )
    assert cli(state, "verify").returncode == 0
    cut = cli(state, "verify", "--head", anchor["head"])
    assert cut.returncode == 1 and "neither ends at nor extends head" in cut.stderr
    assert cli(state, "verify", "--head", "nothex").returncode == 2


def test_a_signed_anchor_is_checked_before_it_is_trusted(state: StateDir, tmp_path: Path) -> None:
    import json

    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(state.root / "anchor_key")],
        check=True,
    )
    with state.config_file.open("a") as handle:
        handle.write('\n[audit]\nanchor_key = "anchor_key"\n')
    signed = cli(state, "anchor", "--sign")
    assert signed.returncode == 0, signed.stderr
    anchor = json.loads(signed.stdout)
    assert anchor["signature"] and anchor["key"].startswith("ssh-ed25519 ")
    path = tmp_path / "anchor.json"
    path.write_text(json.dumps(anchor))
    assert cli(state, "verify", "--anchor", str(path)).returncode == 0
    forged = dict(anchor, head="0" * 64)
    path.write_text(json.dumps(forged))
    refused = cli(state, "verify", "--anchor", str(path))
    assert refused.returncode == 1 and "signature does not match" in refused.stderr
