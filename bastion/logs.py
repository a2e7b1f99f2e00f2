"""`bastion serve`'s log: text or JSON lines, bounded, with who and where on each line.

Fields that say whose work a line is about (session id, identity, target,
peer) come from two places: `extra={...}` on the call, or a context
variable set with `bind()` (asyncio tasks copy it when they are created, so
binding it where a connection or session starts labels everything logged
by the tasks it spawns). The JSON formatter writes one object per line:

    {"time": "2025-01-01T12:00:00.123Z", "level": "info", "logger": "bastion",
     "event": "session.start", "message": "...", "session_id": "...", ...}

A log must stay readable when an agent is hostile, so two filters bound it:

- a message longer than MAX_MESSAGE characters is cut, and the line says how
  long the whole was and its SHA-256 (to match it against the audit row);
- a traceback is written once per kind (exception type and the line that
  raised it); later ones of the same kind are one line with a count, and
  even the first is cut to MAX_TRACEBACK characters (a RecursionError in a
  parser is otherwise hundreds of KiB per attempt).
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import sys
import time
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import IO, Any

from bastion import metrics
from bastion.errors import UsageError

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING}
LEVELS |= {"error": logging.ERROR}
FORMATS = ("text", "json")
FIELDS = ("session_id", "identity", "target", "login", "peer")
MAX_MESSAGE = 2000
MAX_TRACEBACK = 8000
MAX_KINDS = 1000  # traceback kinds remembered; past this, counting starts afresh

_NOTHING_BOUND: Mapping[str, str] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "bastion_log_context", default=_NOTHING_BOUND
)


def bind(**fields: str | None) -> contextvars.Token[Mapping[str, str]]:
    """Add fields to every record logged from this context (and tasks created from it)."""
    merged = dict(_context.get())
    merged.update({key: str(value) for key, value in fields.items() if value is not None})
    return _context.set(merged)


@contextmanager
def context(**fields: str | None) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        _context.reset(token)


def fields(
    event: str,
    identity: str | None = None,
    session_id: str | None = None,
    target: str | None = None,
    **more: str | None,
) -> dict[str, str | None]:
    """`extra=` for a log call: an event name and who and where it is about."""
    return {
        "event": event,
        "identity": identity,
        "session_id": session_id,
        "target": target,
        **more,
    }


def parse_level(text: str) -> int:
    level = LEVELS.get(text.lower())
    if level is None:
        raise UsageError(f"invalid log level {text!r}: choose {', '.join(LEVELS)}")
    return level


def configure(level: str = "info", fmt: str = "text", stream: IO[str] | None = None) -> None:
    """Replace the root logger's handlers with one bounded handler on `stream` (stderr)."""
    number = parse_level(level)
    if fmt not in FORMATS:
        raise UsageError(f"invalid log format {fmt!r}: choose text or json")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    handler.addFilter(BoundedMessages())
    handler.addFilter(TracebackOnce())
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(number)
    logging.getLogger("asyncssh").setLevel(max(number, logging.WARNING))
    logging.captureWarnings(True)


class ContextFilter(logging.Filter):
    """Fills session_id, identity, target... from `extra` or the bound context."""

    def filter(self, record: logging.LogRecord) -> bool:
        bound = _context.get()
        for name in FIELDS:
            if getattr(record, name, None) is None:
                setattr(record, name, bound.get(name))
        if not hasattr(record, "event"):
            record.event = None
        if record.levelno >= logging.ERROR:
            metrics.log_error()
        return True


class BoundedMessages(logging.Filter):
    """Cuts long messages, keeping their length and hash so the whole can be matched."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line
            message = f"{record.msg!r} % {record.args!r}"
        record.msg, record.args = bounded(message), ()
        return True


def bounded(message: str, limit: int = MAX_MESSAGE) -> str:
    if len(message) <= limit:
        return message
    whole = message.encode("utf-8", "surrogateescape")
    digest = hashlib.sha256(whole).hexdigest()[:16]
    return f"{message[:limit]}... [cut: {len(whole)} bytes in all, sha256 {digest}]"


class TracebackOnce(logging.Filter):
    """The first traceback of each kind in full (bounded); later ones as a count."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[tuple[str, str, str], int] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.exc_info or record.exc_info[0] is None:
            return True
        kind = _kind(record.exc_info)
        if len(self.seen) >= MAX_KINDS and kind not in self.seen:
            self.seen.clear()
        count = self.seen[kind] = self.seen.get(kind, 0) + 1
        name = f"{kind[0]} at {kind[1]}:{kind[2]}"
        if count == 1:
            record.exc_text = bounded_traceback(record.exc_info)
        else:
            record.msg = f"{record.msg} ({name}: {count} times; traceback logged the first time)"
            record.exc_text = None
        record.exc_info = None
        record.traceback_kind = name
        return True


def _kind(exc_info: Any) -> tuple[str, str, str]:
    exc_type, exc, tb = exc_info
    frames = traceback.extract_tb(tb) if tb is not None else []
    where = frames[-1] if frames else None
    return (
        exc_type.__name__,
        where.filename.rsplit("/", 2)[-1] if where else "?",
        str(where.lineno) if where else "?",
    )


def bounded_traceback(exc_info: Any, limit: int = MAX_TRACEBACK) -> str:
    text = "".join(traceback.format_exception(*exc_info)).rstrip("\n")
    if len(text) <= limit:
        return text
    head, tail = text[: limit // 4], text[-(limit * 3 // 4) :]
    return (
        f"{head}\n... [{len(text) - len(head) - len(tail)} characters of traceback cut] ...\n{tail}"
    )


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        where = " ".join(
            f"{name}={getattr(record, name)}" for name in FIELDS if getattr(record, name, None)
        )
        if not where:
            return line
        head, sep, rest = line.partition("\n")  # fields go on the message line, not the traceback
        return f"{head} [{where}]{sep}{rest}"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        data: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or _default_event(record),
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                data[name] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = bounded_traceback(record.exc_info)
        if record.exc_text:
            data["traceback"] = record.exc_text
        kind = getattr(record, "traceback_kind", None)
        if kind:
            data["error_kind"] = kind
        return json.dumps(data, ensure_ascii=False, default=str)


def _default_event(record: logging.LogRecord) -> str:
    """Lines logged without an event name are grouped by logger and level."""
    return f"{record.name}.{record.levelname.lower()}"
