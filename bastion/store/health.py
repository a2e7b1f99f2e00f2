"""Is the state database writable right now? (for /readyz)."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def database_problem(path: Path, timeout: float = 1.0) -> str | None:
    """None if a write transaction can begin on `path` within `timeout`, else why not.

    Takes the write lock (BEGIN IMMEDIATE) and rolls back: proves a write
    would succeed without writing anything. Its own short-lived connection,
    so a locked database makes the probe fail fast instead of queueing behind
    (or in front of) the bastion's own writes.
    """
    if not path.is_file():
        return f"no database at {path}"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=timeout)
    except sqlite3.Error as exc:
        return f"cannot open the database: {exc}"
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"database not writable: {exc}"
    finally:
        conn.close()
    return None
