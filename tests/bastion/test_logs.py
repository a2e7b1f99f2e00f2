"""The serve log: JSON or text lines, who and where on each, bounded whatever an agent sends."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys

import pytest

from bastion import logs
from bastion.errors import UsageError


@pytest.fixture
def capture() -> io.StringIO:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def _json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_event_and_bound_fields(capture) -> None:
    logs.configure("info", "json", capture)
    log = logging.getLogger("bastion.session")
    with logs.context(session_id="s-1", identity="ci-deploy", target="web1"):
        log.info("started %s", "exec", extra={"event": "session.start"})
    log.warning("outside any session")
    first, second = _json_lines(capture)
    assert first["event"] == "session.start" and first["message"] == "started exec"
    assert (first["session_id"], first["identity"], first["target"]) == ("s-1", "ci-deploy", "web1")
    assert first["level"] == "info" and first["logger"] == "bastion.session"
    assert first["time"].endswith("Z") and "T" in first["time"]
    assert "session_id" not in second and second["event"] == "bastion.session.warning"


def test_tasks_created_in_a_bound_context_keep_its_fields(capture) -> None:
    logs.configure("info", "json", capture)

    async def later() -> None:
        await asyncio.sleep(0)
        logging.getLogger("bastion").info("from a task")

    async def main() -> None:
        logs.bind(identity="agent-7")
        await asyncio.ensure_future(later())

    asyncio.run(main())
    assert _json_lines(capture)[0]["identity"] == "agent-7"


def test_a_traceback_is_one_field_and_logged_once_per_kind(capture) -> None:
    logs.configure("info", "json", capture)
    log = logging.getLogger("bastion")
    for _ in range(3):
        try:
            {}["missing"]
        except KeyError:
            log.exception("decision failed")
    first, second, third = _json_lines(capture)
    assert "Traceback (most recent call last)" in first["traceback"]
    assert "KeyError" in first["error_kind"]
    assert "traceback" not in second and "2 times" in second["message"]
    assert "3 times" in third["message"]


def test_a_deep_recursion_traceback_is_cut(capture) -> None:
    logs.configure("info", "text", capture)

    # Mutual recursion, as in a parser: Python folds only a line repeated as is.
    def down(n: int) -> int:
        return across(n + 1) + 1

    def across(n: int) -> int:
        return down(n + 1) + 1

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        try:
            down(0)
        except RecursionError:
            logging.getLogger("bastion").exception("parse failed")
    finally:
        sys.setrecursionlimit(limit)
    text = capture.getvalue()
    assert "RecursionError" in text and "characters of traceback cut" in text
    assert len(text) < logs.MAX_TRACEBACK + 500


def test_long_messages_are_cut_with_the_length_and_hash_of_the_whole(capture) -> None:
    logs.configure("info", "text", capture)
    command = "echo " + "A" * 10_000
    logging.getLogger("bastion.session").info("session s: %s", command)
    line = capture.getvalue()
    import hashlib

    digest = hashlib.sha256(f"session s: {command}".encode()).hexdigest()[:16]
    assert len(line) < logs.MAX_MESSAGE + 300
    assert f"[cut: {len('session s: ') + len(command)} bytes in all, sha256 {digest}]" in line


def test_text_lines_name_the_session_fields(capture) -> None:
    logs.configure("debug", "text", capture)
    logging.getLogger("bastion").info(
        "refused", extra={"identity": "ci", "target": "db9", "event": "refused"}
    )
    assert capture.getvalue().rstrip().endswith("refused [identity=ci target=db9]")


@pytest.mark.parametrize(("level", "fmt"), [("bogus", "text"), ("info", "xml"), ("", "json")])
def test_bad_levels_and_formats_are_refused(level: str, fmt: str) -> None:
    with pytest.raises(UsageError):
        logs.configure(level, fmt, io.StringIO())
