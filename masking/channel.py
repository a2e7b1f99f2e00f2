"""One channel's output masking: its streams, when held bytes are due, and what was found.

    >>> cm = ChannelMasker(clock=lambda: 0.0)
    >>> cm.feed("stdout", b"id ghp_a1B2c3D4e5F6g7H8i9")  # a token may be starting: held
    b'id '
    >>> cm.deadline()  # due at clock() + hold
    0.04
    >>> cm.feed("stdout", b"J0k1L2m3N4o5P6q7R8 ok\\n")
    b'[MASKED:github-pat] ok\\n'
    >>> [(e.detector, e.count) for e in cm.events()]
    [('github-pat', 1)]

The relay calls, for every chunk of target output, `feed(stream, data)` and
sends what it returns at once; whenever `deadline()` is not None it arms a
timer for that time and then calls `release()` and sends what that returns
(per stream); at the end of the channel it calls `flush()`. After each of
these it drains `events()` into audit rows and alerts. Nothing here does I/O
or reads a clock other than the one given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from masking.events import Event, ScreenMasked, with_stream
from masking.screen import ScreenMasker
from masking.stream import DEFAULT_ECHO, DEFAULT_HOLD, Masker
from masking.table import BUILTIN, Detector

STREAMS = ("stdout", "stderr")


class ChannelMasker:
    """Mask every output stream of one channel.

    - `terminal`: the channel has a pty. Its output never turns binary, and with
      `screen=(cols, rows)` a terminal model checks what the screen shows after
      output pauses: a secret assembled there by cursor moves across lines is
      overwritten in place (the bytes come back from `release()`).
    - `binary`: what happens to a secret in binary exec output: "mask" (overwrite
      it, same length), "pass" (leave it, report it), "stop" (end the stream
      before it; a `Stopped` event tells the relay to close the channel).
    - `modify=False`: file transfers. Everything is scanned and reported, nothing
      is changed.
    - `hold`, `echo`: seconds a held partial line waits when it could be the
      start of a secret, and when it could not (see stream.py).
    """

    def __init__(
        self,
        detectors: Sequence[Detector] = BUILTIN,
        *,
        terminal: bool = False,
        binary: str = "mask",
        modify: bool = True,
        hold: float = DEFAULT_HOLD,
        echo: float = DEFAULT_ECHO,
        screen: tuple[int, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        engine: str = "auto",
    ) -> None:
        self._make = lambda: Masker(
            detectors, binary=binary, terminal=terminal, modify=modify, hold=hold, echo=echo,
            clock=clock, engine=engine,
        )  # fmt: skip
        self._maskers: dict[str, Masker] = {}
        self._clock = clock
        self._hold = hold
        self._screen = ScreenMasker(detectors, *screen) if terminal and screen else None
        self._screen_due: float | None = None
        self._events: list[Event] = []

    def masker(self, stream: str) -> Masker:
        masker = self._maskers.get(stream)
        if masker is None:
            masker = self._maskers[stream] = self._make()
        return masker

    def feed(self, stream: str, data: bytes) -> bytes:
        """Mask a chunk of `stream` ("stdout", "stderr"); returns the bytes to send now."""
        out = self.masker(stream).feed(data)
        self._screen_feed(stream, out)
        return out

    def deadline(self) -> float | None:
        """When `release()` must be called next (a clock() time), or None."""
        due = [d for d in (m.deadline() for m in self._maskers.values()) if d is not None]
        if self._screen_due is not None:
            due.append(self._screen_due)
        return min(due) if due else None

    def release(self, now: float | None = None) -> dict[str, bytes]:
        """What is due by `now`: held tails whose deadline passed, screen corrections."""
        now = self._clock() if now is None else now
        out = {}
        for stream, masker in self._maskers.items():
            data = masker.release(now)
            if data:
                self._screen_feed(stream, data)
                out[stream] = data
        if self._screen is not None and self._screen_due is not None and now >= self._screen_due:
            fix = self._screen_check()
            if fix:
                out["stdout"] = out.get("stdout", b"") + fix
        return out

    def flush(self) -> dict[str, bytes]:
        """Everything held, on every stream (the channel's output ended, or the caller must)."""
        out = {}
        for stream, masker in self._maskers.items():
            data = masker.flush()
            if data:
                self._screen_feed(stream, data)
                out[stream] = data
        if self._screen is not None:
            fix = self._screen_check()
            if fix:
                out["stdout"] = out.get("stdout", b"") + fix
        return out

    def resize(self, cols: int, rows: int) -> None:
        if self._screen is not None:
            self._screen.resize(cols, rows)

    @property
    def pending(self) -> bool:
        return self.deadline() is not None

    @property
    def stopped(self) -> bool:
        """A stream stopped (a secret in binary output under `binary="stop"`)."""
        return any(m.stopped for m in self._maskers.values())

    def counts(self) -> dict[str, int]:
        """Findings so far, by detector, over all streams."""
        total: dict[str, int] = {}
        for masker in self._maskers.values():
            for name, count in masker.counts.items():
                total[name] = total.get(name, 0) + count
        return total

    def events(self) -> list[Event]:
        """What happened since the last call, repeats merged into one event with a count."""
        for stream, masker in self._maskers.items():
            self._events += [with_stream(e, stream) for e in masker.take_events()]
        events, self._events = self._events, []
        return merge(events)

    # --- the screen -------------------------------------------------------------------

    def _screen_feed(self, stream: str, data: bytes) -> None:
        if self._screen is not None and data:
            if self._screen.feed(data):
                self._screen_due = self._clock() + self._hold

    def _screen_check(self) -> bytes:
        assert self._screen is not None
        self._screen_due = None
        fix, found = self._screen.corrections()
        self._events += [ScreenMasked(name, row) for name, row in found]
        return fix


def merge(events: list[Event]) -> list[Event]:
    """Events that differ only in offset and count merged into the first, counts added."""
    merged: dict[tuple[object, ...], Event] = {}
    for event in events:
        fields = {f: getattr(event, f) for f in event.__slots__}
        key = (type(event), *(v for f, v in fields.items() if f not in ("offset", "count", "row")))
        first = merged.get(key)
        if first is None:
            merged[key] = event
        else:
            merged[key] = type(event)(**{**{f: getattr(first, f) for f in first.__slots__},
                                         "count": first.count + event.count})  # type: ignore[arg-type]  # fmt: skip
    return list(merged.values())
