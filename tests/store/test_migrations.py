"""Upgrading an existing SQLite bastion, and moving one to PostgreSQL with its chain intact."""

from __future__ import annotations

import json
import sqlite3  # the store's own tests may build an old database by hand
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

from postgres import PostgresServer
from storetest import certificate

from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.store import BlockingStore, chain, open_store
from bastion.store.records import AlertRecord, AuditEvent, NewRequest, SessionEnd, SessionRecord
from bastion.targets import Target


def old_database(path: Path) -> None:
    """A bastion.db as the last release left it: migrations 1-6, one chained audit row."""
    conn = sqlite3.connect(path)
    folder = resources.files("bastion.store.sqlite").joinpath("migrations")
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied REAL)")
    for version in range(1, 7):
        (entry,) = [e for e in folder.iterdir() if e.name.startswith(f"{version:04d}_")]
        conn.executescript(entry.read_text())
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, 1.0))
    fields = {"time": 5.0, "kind": "exec", "command": "id", "decision": "allow"}
    conn.execute(
        "INSERT INTO audit (time, kind, command, decision) VALUES (5.0, 'exec', 'id', 'allow')"
    )
    fields_json = chain.canonical(fields)
    digest = chain.entry_hash(chain.GENESIS, "insert", "1", fields_json)
    conn.execute(
        "INSERT INTO audit_chain (audit_id, op, fields, prev, hash) VALUES (1, 'insert', ?, ?, ?)",
        (fields_json, chain.GENESIS, digest),
    )
    conn.execute(
        "INSERT INTO targets (name, host, port, host_key, labels, created)"
        " VALUES ('web1', '10.0.0.1', 22, 'ssh-ed25519 AAAA', '{}', 1.0)"
    )
    conn.execute(
        "INSERT INTO sessions (id, identity, login, target, kind, started)"
        " VALUES ('old1', 'alice', 'deploy', 'web1', 'shell', 2.0)"
    )
    conn.commit()
    conn.close()


def test_an_old_sqlite_database_is_upgraded_with_its_chain_and_rows_adopted(tmp_path: Path) -> None:
    path = tmp_path / "bastion.db"
    old_database(path)
    with BlockingStore(open_store(f"sqlite://{path}", node="n1")) as store:
        result = store.verify_chain()
        assert result.problems == []
        assert result.entries == 3  # the old audit entry, then the target and session adopted
        assert store.close_interrupted_sessions(["n1"], unassigned=True) == ["old1"]
        store.append_audit(AuditEvent(kind="exec", command="true"))
        assert store.verify_chain().intact
        # from now on the adopted rows are covered like any other
        store.call(_tamper(store, "UPDATE targets SET host = '10.6.6.6'"))
        assert store.verify_chain().problems == ["target web1: host edited"]


async def _tamper(store: BlockingStore, sql: str) -> None:
    async with store.store.transaction() as tx:
        await tx.execute(sql)


def filled_state(root: Path) -> StateDir:
    state = StateDir(root)
    initialise(state)
    with BlockingStore(open_store(state.store_url(), node="old-node")) as store:
        store.add_target(Target("web1", "10.0.0.1", 22, host_key="ssh-ed25519 AAAA"))
        store.record_certificate(certificate(41))
        store.revoke_serial(41, by="op")
        store.start_session(
            SessionRecord("s1", "alice", 41, "deploy", "web1", "exec", "id", None, 1.0)
        )
        store.finish_session("s1", SessionEnd(ended=2.0, exit_status=0))
        store.index_screen("s1", [(0.5, "uid=1000(deploy) groups=deploy")])
        now = time.time()
        request = store.create_request(
            NewRequest("alice", "web1", "deploy", "uname", None, "s1", now, now + 60)
        )
        store.approve_request(request.id, "bob", "fine", now)
        store.add_alert(AlertRecord("burst", "alice", "31 commands", 3.0))
        for n in range(30):
            store.append_audit(AuditEvent(kind="exec", identity="alice", command=f"echo {n}"))
        store.record_config("ab" * 32, "bastion.toml")
    return state


def test_store_migrate_moves_sqlite_to_postgresql_with_the_chain_intact(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    state = filled_state(tmp_path / "state")
    with BlockingStore(open_store(state.store_url(), node="x")) as old:
        head = old.chain_head()
    url = postgres_server.new_database("migrate")
    cli = [sys.executable, "-m", "bastion", "store", "migrate", "--state-dir", str(state.root)]
    done = subprocess.run([*cli, "--to", url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"head {head.hash}" in done.stdout and f'url = "{url}"' in done.stdout
    with BlockingStore(open_store(url, node="new-node")) as new:
        result = new.verify_chain(head.hash)
        assert result.intact and result.anchored and result.head == head.hash
        assert [t.name for t in new.list_targets()] == ["web1"]
        assert new.revoked_among([41]) == {41}
        assert [h.session_id for h in new.search_screen("groups=deploy")] == ["s1"]
        assert new.get_request(1).state == "approved"
        # new rows continue the ids and the chain
        newest = new.list_audit(limit=1)[0].id
        assert new.append_audit(AuditEvent(kind="exec", command="after the move")) == newest + 1
        assert new.verify_chain().intact
        assert json.loads(json.dumps(new.list_alerts()[0].to_json()))["kind"] == "burst"
    again = subprocess.run([*cli, "--to", url], capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "not empty" in again.stderr


async def test_migrations_are_versioned_and_idempotent(store_url: str) -> None:
    from storetest import two_nodes

    async with two_nodes(store_url) as (a, b):
        version = await a.migrate()
        assert version >= 1 and await b.migrate() == version
        async with a.transaction(write=False) as tx:
            rows = await tx.all("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == list(range(1, version + 1))
