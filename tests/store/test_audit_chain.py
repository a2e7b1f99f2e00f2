"""The audit chain on both backends: several writers never fork it, and tampering shows."""

from __future__ import annotations

import asyncio
import time

from storetest import certificate, two_nodes

from bastion.store import Store
from bastion.store.records import AlertRecord, AuditEvent, SessionEnd, SessionRecord

WRITERS = 8
ROWS_EACH = 25


async def write_rows(store: Store, writer: int) -> None:
    for n in range(ROWS_EACH):
        row = await store.append_audit(
            AuditEvent(
                kind="exec", identity=f"agent-{writer}", command=f"echo {n}", decision="allow"
            )
        )
        await store.update_audit(row, ended=time.time(), exit_status=0, bytes_out=n)


async def test_eight_writers_on_two_nodes_never_fork_the_chain(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        await asyncio.gather(*(write_rows(a if w % 2 else b, w) for w in range(WRITERS)))
        result = await b.verify_chain()
        assert result.problems == []
        assert result.entries == WRITERS * ROWS_EACH * 2
        assert result.rows == WRITERS * ROWS_EACH
        head = await a.chain_head()
        assert (head.seq, head.hash) == (result.seq, result.head)


async def test_sessions_alerts_and_certificates_join_the_chain(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        await a.start_session(
            SessionRecord("s1", "alice", 5, "deploy", "web1", "exec", "id", "10.0.0.9:5555", 100.0)
        )
        await b.finish_session("s1", SessionEnd(ended=101.0, exit_status=0, bytes_out=12))
        await a.add_alert(AlertRecord("burst", "alice", "31 commands within 10 s", 102.0))
        assert (await b.verify_chain()).intact
        session = await b.get_session("s1")
        assert session.node == "node-a" and session.ended == 101.0


async def tamper(store: Store, sql: str, *params: object) -> None:
    """Write behind the store's back, as someone with database access could."""
    async with store.transaction() as tx:
        await tx.execute(sql, params)


async def chained_log(store: Store) -> None:
    for n in range(5):
        row = await store.append_audit(AuditEvent(kind="exec", identity="ci", command=f"echo {n}"))
        await store.update_audit(row, exit_status=0)


async def test_edits_of_sessions_alerts_and_unrevoking_show(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        await a.start_session(
            SessionRecord("s1", "alice", 5, "deploy", "web1", "exec", "id", None, 1.0)
        )
        await a.add_alert(AlertRecord("rule", "alice", "rule x matched", 2.0))
        await a.record_certificate(certificate(77))
        await a.revoke_serial(77, by="op")
        await tamper(b, "UPDATE sessions SET command = 'true' WHERE id = 's1'")
        await tamper(b, "DELETE FROM alerts")
        await tamper(b, "UPDATE certificates SET revoked = NULL WHERE serial = 77")
        assert sorted((await a.verify_chain()).problems) == [
            "alert 1: deleted",
            "certificate 77: revoked edited",
            "session s1: command edited",
        ]


async def test_a_cut_of_the_newest_rows_and_entries_fails_against_an_anchor(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        await chained_log(a)
        anchor = await b.chain_head()
        assert (await a.verify_chain(anchor.hash)).anchored is True
        await chained_log(b)
        assert (await a.verify_chain(anchor.hash)).intact  # the chain extends the anchor
        # Cut the newest three rows with their entries and set the head back: consistent...
        cut = anchor.seq - 2
        await tamper(a, "DELETE FROM audit WHERE id > ?", cut // 2)  # two entries per row
        await tamper(a, "DELETE FROM audit_chain WHERE seq > ?", cut)
        await tamper(
            a,
            "UPDATE audit_head SET seq = ?, hash = (SELECT hash FROM audit_chain WHERE seq = ?)",
            cut,
            cut,
        )
        assert (await b.verify_chain()).intact
        # ...except against the anchor kept elsewhere.
        result = await b.verify_chain(anchor.hash)
        assert not result.intact and result.anchored is False
        assert any("neither ends at nor extends head" in p for p in result.problems)


async def test_a_middle_row_deleted_and_the_chain_recomputed_fails_against_an_anchor(
    store_url: str,
) -> None:
    from bastion.store import chain

    async with two_nodes(store_url) as (a, b):
        await chained_log(a)
        anchor = await a.chain_head()
        await tamper(a, "DELETE FROM audit WHERE id = 2")
        await tamper(a, "DELETE FROM audit_chain WHERE tbl = 'audit' AND row_key = '2'")
        # recompute every hash after the gap, as a careful attacker would
        async with a.transaction() as tx:
            rows = await tx.all(
                "SELECT seq, tbl, row_key, op, fields FROM audit_chain ORDER BY seq"
            )
            await tx.execute("DELETE FROM audit_chain")
            prev = chain.GENESIS
            for seq, row in enumerate(rows, 1):
                ref = chain.ref(row["tbl"], row["row_key"])
                digest = chain.entry_hash(prev, row["op"], ref, row["fields"])
                await tx.execute(
                    "INSERT INTO audit_chain (seq, tbl, row_key, op, fields, prev, hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (seq, row["tbl"], row["row_key"], row["op"], row["fields"], prev, digest),
                )
                prev = digest
            await tx.execute("UPDATE audit_head SET seq = ?, hash = ?", (len(rows), prev))
        assert (await b.verify_chain()).intact
        assert not (await b.verify_chain(anchor.hash)).intact


async def test_a_row_slipped_in_and_a_removed_entry_show(store_url: str) -> None:
    async with two_nodes(store_url) as (a, b):
        await chained_log(a)
        await tamper(b, "INSERT INTO audit (time, kind, command) VALUES (1.0, 'exec', 'forged')")
        assert (await a.verify_chain()).problems == [
            "audit row 6: not in the chain (added behind the bastion)"
        ]
        await tamper(b, "DELETE FROM audit WHERE id = 6")
        await tamper(b, "DELETE FROM audit_chain WHERE seq = 4")
        problems = (await a.verify_chain()).problems
        assert any("does not follow entry before it" in p for p in problems), problems
