"""Screen text for `bastion search`: played through the terminal model, then indexed
(the store's contract suite covers the search itself on both backends)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.errors import UsageError
from bastion.recordings.config import RecordingsConfig
from bastion.search import extract, index_one
from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.store import BlockingStore, open_store
from bastion.store.records import SessionEnd, SessionRecord
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


@pytest.fixture()
def db(tmp_path: Path):
    state = StateDir(tmp_path / "state")
    initialise(state)
    with BlockingStore(open_store(state.store_url(), node="test")) as store:
        yield store


def add_session(db: BlockingStore, session_id: str, recording: Path, kind: str = "exec") -> None:
    db.start_session(
        SessionRecord(
            session_id,
            "ci-agent",
            None,
            "deploy",
            "web1",
            kind,
            "cat notes",
            None,
            1.0,
            recording=str(recording),
        )  # fmt: skip
    )
    db.finish_session(session_id, SessionEnd(ended=2.0))


def index_all(db: BlockingStore) -> None:
    for item in db.unindexed_sessions():
        db.call(index_one(db.store, item, RecordingsConfig(), Path("/nonexistent-state")))


def test_search_finds_phrases_and_paths_and_reports_where(
    db: BlockingStore, tmp_path: Path
) -> None:
    add_session(db, "s1", cast(tmp_path / "s1.cast", b"root:x:0:0\n", b"see /etc/shadow here\n"))
    add_session(db, "s2", cast(tmp_path / "s2.cast", b"nothing of note\n"))
    assert [item.session_id for item in db.unindexed_sessions()] == ["s1", "s2"]
    index_all(db)
    assert db.unindexed_sessions() == []
    hits = db.search_screen("/etc/shadow")
    assert [h.session_id for h in hits] == ["s1"]
    assert "/[etc/shadow]" in hits[0].snippet and hits[0].identity == "ci-agent"
    assert db.search_screen("shadow note") == []  # a phrase, not two words anywhere
    assert {h.session_id for h in db.search_screen("shadow OR note", raw=True)} == {"s1", "s2"}
    assert db.search_screen("note", identity="someone-else") == []


def test_bad_queries_are_one_line_usage_errors(db: BlockingStore) -> None:
    for query, raw in (("", False), ("x" * 501, False), ('"unbalanced', True), ("AND AND", True)):
        with pytest.raises(UsageError):
            db.search_screen(query, raw=raw)


def test_an_unreadable_recording_is_recorded_not_fatal(db: BlockingStore, tmp_path: Path) -> None:
    bad = tmp_path / "bad.cast"
    bad.write_text("not a cast\n")
    add_session(db, "s3", bad)
    add_session(db, "s4", tmp_path / "missing.cast")
    index_all(db)
    state = db.screen_index_state("s3")
    assert state is not None and state.lines == 0 and "header" in state.error
    missing = db.screen_index_state("s4")
    assert missing is not None and missing.lines == 0 and "No such file" in missing.error
