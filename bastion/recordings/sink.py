"""One session's recording as the relay sees it: open, write events, flush, close.

A `RecordingSink` is what a recording listener holds. Every call is cheap and
never raises: a write that fails closes the recording (its file stays a valid
asciicast, the descriptor is released) and calls `on_failure` once with a
one-line reason; later calls do nothing. Where the bytes go afterwards (a
local file, a spool uploaded to S3) is the store's business.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from recorder.cast import AsciicastWriter

log = logging.getLogger("bastion.recording")


@dataclass(frozen=True)
class RecordingHeader:
    """What a recording's header says about its session."""

    session_id: str
    title: str
    width: int
    height: int
    timestamp: int
    command: str | None = None


class RecordingSink:
    def __init__(
        self,
        meta: RecordingHeader,
        writer: AsciicastWriter,
        *,
        max_input_bytes: int,
        on_failure: Callable[[str], None],
        on_closed: Callable[[RecordingSink, str | None], None],
    ) -> None:
        self.meta = meta
        self.failed: str | None = None
        self.input_recorded = 0
        self.input_skipped = 0  # exec stdin past max_input_bytes: counted, not recorded
        self._writer: AsciicastWriter | None = writer
        self._final_bytes = 0
        self._max_input = max_input_bytes
        self._on_failure = on_failure
        self._on_closed = on_closed

    @property
    def bytes_written(self) -> int:
        return self._writer.bytes_written if self._writer is not None else self._final_bytes

    @property
    def closed(self) -> bool:
        return self._writer is None

    def output(self, data: bytes) -> None:
        if self._writer is not None:
            self._call(self._writer.output, data)

    def input(self, data: bytes) -> None:
        """Agent input (typed keys, exec stdin): recorded up to max_input_bytes, then counted."""
        if self._writer is None or not data:
            return
        room = self._max_input - self.input_recorded
        if room < len(data):
            if self.input_skipped == 0:
                self.marker(f"input past {self._max_input} bytes is counted, not recorded")
            self.input_skipped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
            if not data:
                return
        self.input_recorded += len(data)
        self._call(self._writer.input, data)

    def resize(self, width: int, height: int) -> None:
        if self._writer is not None:
            self._call(self._writer.resize, width, height)

    def marker(self, label: str) -> None:
        if self._writer is not None:
            self._call(self._writer.marker, label)

    def flush(self) -> None:
        if self._writer is not None:
            self._call(self._writer.flush)

    def close(self) -> None:
        """Write what is buffered and finish the recording (idempotent)."""
        writer = self._writer
        if writer is None:
            return
        if self.input_skipped:
            self._call(writer.marker, f"input not recorded: {self.input_skipped} bytes")
        if self._writer is None:
            return  # that marker failed: already closed and reported
        self._writer = None
        self._final_bytes = writer.bytes_written
        try:
            writer.close()
        except (OSError, ValueError) as exc:
            self._final_bytes = writer.bytes_written
            self._report(exc)
            return
        self._on_closed(self, None)

    def _call(self, method: Callable[..., None], *args: object) -> None:
        try:
            method(*args)
        except (OSError, ValueError) as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            self._final_bytes = writer.bytes_written
            writer.abandon()  # releases the descriptor; the file ends at its last whole line
        self._report(exc)

    def _report(self, exc: Exception) -> None:
        reason = f"recording failed: {exc.strerror if isinstance(exc, OSError) and exc.strerror else exc}"
        self.failed = reason
        self._on_closed(self, reason)
        try:
            self._on_failure(reason)
        except Exception:  # the failure report must not break the relay
            log.exception("session %s: reporting a recording failure failed", self.meta.session_id)
