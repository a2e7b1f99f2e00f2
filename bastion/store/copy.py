"""`bastion store migrate`: copy every table of one store into an empty other one.

Rows keep their ids and the audit chain is copied entry by entry with its
head, so the chain verifies on the new store exactly as on the old (the
same head hash: an anchor taken before the move still holds). Screen text
goes through each backend's own full-text table. Node heartbeats, alert
counters and old events are state of running nodes and start afresh; the
event counter continues past the old one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bastion.errors import BastionError
from bastion.store.sql.store import COPIED_TABLES, SqlStore


@dataclass
class CopyReport:
    rows: dict[str, int] = field(default_factory=dict)
    head: str = ""
    verified: bool = False


async def copy_store(source: SqlStore, target: SqlStore) -> CopyReport:
    """Copy `source` into `target` (which must be empty), then verify the chain there."""
    before = await source.verify_chain()
    if not before.intact:
        raise BastionError(
            f"the source's audit chain is broken ({before.problems[0]}); fix or keep it, not copy it"
        )
    if not await target.is_empty():
        raise BastionError("the target store is not empty: migrate into a fresh database")
    report = CopyReport()
    for table, order in COPIED_TABLES:
        count = 0
        async for rows in source.export_rows(table, order):
            await target.import_rows(table, rows)
            count += len(rows)
        report.rows[table] = count
    count = 0
    async for rows in source.export_screen_text():
        await target.import_screen_text(rows)
        count += len(rows)
    report.rows["screen_text"] = count
    await target.finish_import()
    after = await target.verify_chain()
    if not after.intact or after.head != before.head:
        raise BastionError(
            "the copied audit chain does not verify: "
            + (after.problems[0] if after.problems else f"head {after.head} != {before.head}")
        )
    report.head, report.verified = after.head, True
    return report
