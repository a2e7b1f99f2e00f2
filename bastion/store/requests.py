"""Held commands, their approvals, and grants, in SQLite.

Every state change is one transaction (`BEGIN IMMEDIATE` takes the write
lock first), so two reviewers racing, or a reviewer racing the timeout,
give exactly one outcome, whichever process they run in.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from bastion.errors import BastionError, NotFound
from bastion.store.db import Database

STATES = ("pending", "approved", "denied", "expired", "cancelled")


MAX_NOTES = 512  # explanations waiting for their request (each at most MAX_EXPLANATION)
MAX_EXPLANATION = 4000
NOTE_SECONDS = 60.0
_notes: OrderedDict[tuple[str, str, str, str], tuple[float, str]] = OrderedDict()
_notes_lock = threading.Lock()


def note_explanation(identity: str, target: str, login: str, command: str, text: str) -> None:
    """Keep why a command is being held until its request row is created.

    The decision point knows the explanation; the request is created a moment later
    by the code that holds the channel, which today passes only the rule. This bridge
    (bounded: MAX_NOTES entries of at most MAX_EXPLANATION characters, dropped after
    NOTE_SECONDS) lets `create` store it with the request in the same process. When
    the relay hands the verdict's explanation to `create` itself (issue 11), the
    `explanation` field wins and the note is only cleaned up.
    """
    key = (identity, target, login, command[:4096])
    with _notes_lock:
        _notes[key] = (time.monotonic(), text[:MAX_EXPLANATION])
        _notes.move_to_end(key)
        while len(_notes) > MAX_NOTES:
            _notes.popitem(last=False)


def _take_note(fields: dict[str, Any]) -> str | None:
    key = (
        str(fields.get("identity")),
        str(fields.get("target")),
        str(fields.get("login")),
        str(fields.get("command", ""))[:4096],
    )
    with _notes_lock:
        found = _notes.pop(key, None)
    if found is None or time.monotonic() - found[0] > NOTE_SECONDS:
        return None
    return found[1]


class RequestClosed(BastionError):
    """The request is no longer pending (decided, expired or cancelled)."""


@dataclass(frozen=True)
class ApprovalOutcome:
    state: str  # "approved", or "pending" while more approvers are needed
    approvals: int
    needed: int


class RequestRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- the holding session's side ------------------------------------------------

    def create(self, **fields: Any) -> int:
        noted = _take_note(fields)
        if fields.get("explanation") is None and noted is not None:
            fields["explanation"] = noted
        fields.setdefault("created", time.time())
        fields.setdefault("heartbeat", fields["created"])
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        cur = self.db.conn.execute(
            f"INSERT INTO requests ({columns}) VALUES ({marks})", tuple(fields.values())
        )
        return int(cur.lastrowid or 0)

    def state(self, request_id: int) -> tuple[str, str | None, str | None]:
        row = self.db.conn.execute(
            "SELECT state, reviewer, reason FROM requests WHERE id = ?", (request_id,)
        ).fetchone()
        if row is None:
            raise NotFound(f"no request {request_id}")
        return row["state"], row["reviewer"], row["reason"]

    def heartbeat(self, request_id: int, now: float) -> None:
        self.db.conn.execute(
            "UPDATE requests SET heartbeat = ? WHERE id = ? AND state = 'pending'",
            (now, request_id),
        )

    def finish(
        self, request_id: int, state: str, *, reviewer: str | None = None, reason: str | None = None
    ) -> bool:
        """Move a pending request to `state`; False if it was no longer pending."""
        assert state in STATES[1:]
        cur = self.db.conn.execute(
            "UPDATE requests SET state = ?, decided = ?, reviewer = ?, reason = ?"
            " WHERE id = ? AND state = 'pending'",
            (state, time.time(), reviewer, reason, request_id),
        )
        return cur.rowcount == 1

    def expire_abandoned(self, stale_before: float, now: float) -> list[int]:
        """Expire pending requests past their deadline or whose holder stopped beating.

        After a restart (or on another node) the session that held a request
        is gone; its heartbeat goes stale and the request expires here.
        """
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT id, expires FROM requests WHERE state = 'pending'"
                " AND (expires < ? OR COALESCE(heartbeat, created) < ?)",
                (now, stale_before),
            ).fetchall()
            for row in rows:
                reason = "no review in time" if row["expires"] < now else "the held session is gone"
                conn.execute(
                    "UPDATE requests SET state = 'expired', decided = ?, reason = ?"
                    " WHERE id = ? AND state = 'pending'",
                    (now, reason, row["id"]),
                )
        return [row["id"] for row in rows]

    # --- the reviewer's side -------------------------------------------------------

    def get(self, request_id: int) -> dict[str, Any]:
        row = self.db.conn.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise NotFound(f"no request {request_id}")
        data = dict(row)
        data["approvals"] = self.approvals(request_id)
        return data

    def approvals(self, request_id: int) -> list[dict[str, Any]]:
        rows = self.db.conn.execute(
            "SELECT reviewer, decided, reason FROM approvals WHERE request_id = ? ORDER BY decided",
            (request_id,),
        ).fetchall()
        return [dict(row) for row in rows]

    def list(
        self, *, include_decided: bool = False, after_id: int = 0, limit: int = 1000
    ) -> list[dict[str, Any]]:
        where = "id > ?" + ("" if include_decided else " AND state = 'pending'")
        rows = self.db.conn.execute(
            "SELECT *, (SELECT COUNT(*) FROM approvals a WHERE a.request_id = requests.id)"
            f" AS approval_count FROM requests WHERE {where} ORDER BY id DESC LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [dict(row) for row in reversed(rows)]

    def approve(
        self, request_id: int, reviewer: str, reason: str | None, now: float
    ) -> ApprovalOutcome:
        """Record one reviewer's approval; the request is approved once enough distinct ones have."""
        with self.db.transaction() as conn:
            request = self._pending(conn, request_id, now)
            try:
                conn.execute(
                    "INSERT INTO approvals (request_id, reviewer, decided, reason) VALUES (?, ?, ?, ?)",
                    (request_id, reviewer, now, reason),
                )
            except sqlite3.IntegrityError:
                raise RequestClosed(
                    f"request {request_id}: {reviewer} has already approved it; "
                    "it needs another reviewer"
                ) from None
            approvals = self.approvals(request_id)
            needed = int(request["approvals_needed"] or 1)
            if len(approvals) < needed:
                return ApprovalOutcome("pending", len(approvals), needed)
            reasons = "; ".join(a["reason"] for a in approvals if a["reason"])
            conn.execute(
                "UPDATE requests SET state = 'approved', decided = ?, reviewer = ?, reason = ?"
                " WHERE id = ? AND state = 'pending'",
                (now, ", ".join(a["reviewer"] for a in approvals), reasons or None, request_id),
            )
            return ApprovalOutcome("approved", len(approvals), needed)

    def deny(self, request_id: int, reviewer: str, reason: str | None, now: float) -> None:
        with self.db.transaction() as conn:
            self._pending(conn, request_id, now)
            conn.execute(
                "UPDATE requests SET state = 'denied', decided = ?, reviewer = ?, reason = ?"
                " WHERE id = ? AND state = 'pending'",
                (now, reviewer, reason, request_id),
            )

    def _pending(self, conn: sqlite3.Connection, request_id: int, now: float) -> dict[str, Any]:
        row = conn.execute("SELECT * FROM requests WHERE id = ?", (request_id,)).fetchone()
        if row is None:
            raise NotFound(f"no request {request_id}")
        if row["state"] != "pending":
            raise RequestClosed(f"request {request_id} is already {row['state']}")
        if row["expires"] < now:
            raise RequestClosed(f"request {request_id} has expired")
        return dict(row)

    # --- grants ----------------------------------------------------------------------

    def add_grant(self, request: dict[str, Any], granted_by: str, now: float, seconds: int) -> int:
        cur = self.db.conn.execute(
            "INSERT INTO grants (request_id, identity, target, login, command, granted_by,"
            " created, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                request["id"],
                request["identity"],
                request["target"],
                request["login"],
                request["command"],
                granted_by,
                now,
                now + seconds,
            ),
        )
        return int(cur.lastrowid or 0)

    def active_grant(
        self, *, identity: str, target: str, login: str, command: str, now: float
    ) -> dict[str, Any] | None:
        """A grant for exactly this command line, identity, target and login, still valid."""
        row = self.db.conn.execute(
            "SELECT * FROM grants WHERE identity = ? AND target = ? AND login = ? AND command = ?"
            " AND expires > ? ORDER BY expires DESC LIMIT 1",
            (identity, target, login, command, now),
        ).fetchone()
        return dict(row) if row is not None else None
