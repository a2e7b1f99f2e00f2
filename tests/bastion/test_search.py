"""Screen text for `bastion search`: played through the terminal model, indexed with FTS5."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.errors import UsageError
from bastion.recordings import RecordingRow
from bastion.recordings.config import RecordingsConfig
from bastion.search import extract, index_one, search, unindexed
from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.store.db import Database
from bastion.store.recording_catalog import RecordingRepo
from bastion.store.repos import SessionRepo
from recorder.cast import AsciicastWriter
from recorder.screen_text import ScreenText


def cast(path: Path, *chunks: bytes) -> Path:
    writer = AsciicastWriter.create(path, width=40, height=5, title="t")
    for chunk in chunks:
        writer.output(chunk)
        writer.flush()
    writer.close()
    return path


def test_colour_codes_carriage_returns_and_clears_give_the_text_a_person_saw() -> None:
    text = ScreenText(40, 5)
    text.feed(0.0, "\x1b[1;31mFAILED\x1b[0m: 3 tests\r\n")
    text.feed(1.0, "downloading 10%\rdownloading 100%\r\n")
    text.feed(2.0, "\x1b[2J\x1b[Htop - load average: 0.1\r\n")
    lines = list(text.finish())
    assert lines == [
        (0.0, "FAILED: 3 tests"),
        (1.0, "downloading 100%"),
        (2.0, "top - load average: 0.1"),
    ]


def test_exec_output_without_carriage_returns_does_not_staircase(tmp_path: Path) -> None:
    path = cast(tmp_path / "e.cast", b"alpha\nbeta\n")
    assert [line for _, line in extract(path.open("rb"), "exec").lines] == ["alpha", "beta"]


def test_the_budget_bounds_work_on_huge_output() -> None:
    text = ScreenText(80, 24, newline_mode=True, max_chars=1000)
    text.feed(0.0, "x" * 79 + "\n")
    text.feed(1.0, "y" * 5000)
    assert text.skipped_chars == 5000 - (1000 - 80)
    assert sum(len(line) for _, line in text.finish()) <= 1000


STATE = "state"
CONFIG = RecordingsConfig()


@pytest.fixture()
def db(tmp_path: Path):
    state = StateDir(tmp_path / STATE)
    initialise(state)
    database = Database(state.database)
    yield database
    database.close()


def add_session(db: Database, session_id: str, kind: str = "exec") -> Path:
    """A finished session whose local recording is at the returned path."""
    repo = SessionRepo(db)
    repo.start(
        id=session_id,
        identity="ci-agent",
        login="deploy",
        target="web1",
        kind=kind,
        command="cat notes",
        started=1.0,
    )
    repo.finish(session_id, ended=2.0)
    key = f"{session_id}.cast"
    RecordingRepo(db).opened(RecordingRow(session_id, "local", key, "test", "complete", 1.0))
    return db.path.parent / "recordings" / key


def reindex(db: Database) -> None:
    for session_id, kind in unindexed(db):
        index_one(db, session_id, kind, CONFIG, db.path.parent)


def test_search_finds_phrases_and_paths_and_reports_where(db: Database) -> None:
    cast(add_session(db, "s1"), b"root:x:0:0\n", b"see /etc/shadow here\n")
    cast(add_session(db, "s2"), b"nothing of note\n")
    assert [row[0] for row in unindexed(db)] == ["s1", "s2"]
    reindex(db)
    assert unindexed(db) == []
    hits = search(db, "/etc/shadow")
    assert [h["session_id"] for h in hits] == ["s1"]
    assert "/[etc/shadow]" in hits[0]["snippet"] and hits[0]["identity"] == "ci-agent"
    assert search(db, "shadow note") == []  # a phrase, not two words anywhere
    assert {h["session_id"] for h in search(db, "shadow OR note", raw=True)} == {"s1", "s2"}
    assert search(db, "note", identity="someone-else") == []


def test_bad_queries_are_one_line_usage_errors(db: Database) -> None:
    for query, raw in (("", False), ("x" * 501, False), ('"unbalanced', True), ("AND AND", True)):
        with pytest.raises(UsageError):
            search(db, query, raw=raw)


def test_an_unreadable_recording_is_recorded_not_fatal(db: Database) -> None:
    add_session(db, "s3").write_text("not a cast\n")
    add_session(db, "s4")  # its file is missing
    reindex(db)
    rows = dict(db.conn.execute("SELECT session_id, error FROM screen_indexed").fetchall())
    assert "header" in rows["s3"] and "No such file" in rows["s4"]
