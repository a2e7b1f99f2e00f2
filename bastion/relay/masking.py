"""Output masking as the relay's transform, and what it reports.

The transform holds back a partial line that could be the start of a
secret until more output shows what it is, or until output has paused for
`holdback_ms` (then the relay's timer releases it). Findings are audited at
most every few seconds per channel and at its end; a stream that turns
binary is reported once (the session decides whether to close).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

import asyncssh

from bastion.masking import ChannelMasking
from bastion.relay.events import Exit, Stream
from bastion.relay.listeners import Listener

AUDIT_EVERY = 5.0  # seconds between `masked` audit rows of one busy channel


def _datatype(stream: Stream) -> int | None:
    return asyncssh.EXTENDED_DATA_STDERR if stream is Stream.STDERR else None


def _stream(datatype: int | None) -> Stream:
    return Stream.STDERR if datatype == asyncssh.EXTENDED_DATA_STDERR else Stream.STDOUT


class MaskingTransform(Listener):
    name = "masking"

    def __init__(
        self,
        masking: ChannelMasking,
        *,
        holdback: float,
        on_binary: Callable[[str, int], None],
        on_found: Callable[[Mapping[str, int]], None],
    ) -> None:
        self._masking = masking
        self._holdback = holdback
        self._on_binary = on_binary
        self._on_found = on_found
        self._last_feed = 0.0
        self._audited = time.monotonic()

    def feed(self, stream: Stream, data: bytes) -> bytes:
        out = self._masking.feed(_datatype(stream), data)
        self._last_feed = time.monotonic()
        self._report(final=False)
        return out

    def flush(self) -> list[tuple[Stream, bytes]]:
        released = [(_stream(datatype), data) for datatype, data in self._masking.flush()]
        self._report(final=False)
        return released

    def release_at(self) -> float | None:
        if not self._masking.pending:
            return None
        return self._last_feed + self._holdback

    def on_exit(self, event: Exit) -> None:
        self._report(final=True)

    def _report(self, *, final: bool) -> None:
        for stream, offset in self._masking.new_binary():
            self._on_binary(stream, offset)
        now = time.monotonic()
        if final or now - self._audited >= AUDIT_EVERY:
            found = self._masking.unaudited()
            if found:
                self._audited = now
                self._on_found(found)
