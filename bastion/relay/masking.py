"""Output masking as the relay's transform, and what it reports.

The masking library (masking/) holds back a partial line only while it could
be the start of a secret (`holdback_ms`), anything else for at most
`echo_ms`; the relay's timer releases what is due at `release_at()`. For a
terminal the library also checks the screen after output pauses and sends
corrections. What it reports is turned into audit rows and alerts here:

- findings, by detector: a `masked` audit row at most every AUDIT_EVERY
  seconds per channel, and at its end;
- a secret that was not masked (a file transfer, `binary = "pass"`), binary
  output, a secret that decodes through an encoder, a stopped stream: an
  alert each, repeats within REPORT_EVERY merged into one with a count
  (never dropped); a stopped stream also closes the channel.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from bastion.relay.events import Exit, Resize, Stream
from bastion.relay.listeners import Listener
from masking import BinaryOutput, ChannelMasker, EncodedSecret, Event, Found, Stopped
from masking.channel import merge

AUDIT_EVERY = 5.0  # seconds between `masked` audit rows of one busy channel
REPORT_EVERY = 1.0  # seconds over which alert-worthy events of one channel are merged

_NAMES = {Stream.STDOUT: "stdout", Stream.STDERR: "stderr"}
_STREAMS = {name: stream for stream, name in _NAMES.items()}


def alert_worthy(event: Event) -> bool:
    if isinstance(event, Found):
        return not event.masked
    return isinstance(event, (BinaryOutput, EncodedSecret, Stopped))


def describe_event(event: Event) -> tuple[str, str]:
    """(alert kind, one line) for an event that is an alert; never the secret itself."""
    times = f" ({event.count} times)" if event.count > 1 else ""
    if isinstance(event, Found):
        return (
            "unmasked-secret",
            f"a {event.detector} secret went to the agent unmasked on {event.stream}{times}",
        )
    if isinstance(event, BinaryOutput):
        return "binary-output", f"binary output on {event.stream} from byte {event.offset}{times}"
    if isinstance(event, EncodedSecret):
        return (
            "encoded-secret",
            f"output on {event.stream} decodes ({event.encoder}) to a {event.detector} secret{times}",
        )
    assert isinstance(event, Stopped)
    return (
        "masking-stopped",
        f"a {event.detector} secret in binary output on {event.stream}; channel closed",
    )


class MaskingTransform(Listener):
    name = "masking"

    def __init__(
        self,
        masker: ChannelMasker,
        *,
        on_found: Callable[[Mapping[str, int]], None],
        on_events: Callable[[list[Event]], None],
        on_stopped: Callable[[], None],
    ) -> None:
        self._masker = masker
        self._on_found = on_found
        self._on_events = on_events
        self._on_stopped = on_stopped
        self._audited: dict[str, int] = {}
        self._audited_at = time.monotonic()
        self._pending: list[Event] = []
        self._reported_at = 0.0
        self._stopped = False

    # --- the transform ---------------------------------------------------------------

    def feed(self, stream: Stream, data: bytes) -> bytes:
        out = self._masker.feed(_NAMES[stream], data)
        self._report(final=False)
        return out

    def release_at(self) -> float | None:
        return self._masker.deadline()

    def release(self) -> list[tuple[Stream, bytes]]:
        """What is due now: held tails past their deadline, screen corrections."""
        out = [(_STREAMS[name], data) for name, data in self._masker.release().items()]
        self._report(final=False)
        return out

    def flush(self) -> list[tuple[Stream, bytes]]:
        out = [(_STREAMS[name], data) for name, data in self._masker.flush().items()]
        self._report(final=False)
        return out

    # --- as a listener ---------------------------------------------------------------

    def on_resize(self, event: Resize) -> None:
        self._masker.resize(event.width, event.height)

    def on_exit(self, event: Exit) -> None:
        self._report(final=True)

    # --- what it found ---------------------------------------------------------------

    def _report(self, *, final: bool) -> None:
        events = self._masker.events()
        if events:
            self._pending += [e for e in events if alert_worthy(e)]
            if any(isinstance(e, Stopped) for e in events) and not self._stopped:
                self._stopped = True
                self._on_stopped()
        now = time.monotonic()
        if self._pending and (final or now - self._reported_at >= REPORT_EVERY):
            pending, self._pending = self._pending, []
            self._reported_at = now
            self._on_events(merge(pending))
        if final or now - self._audited_at >= AUDIT_EVERY:
            counts = self._masker.counts()
            delta = {
                k: v - self._audited.get(k, 0)
                for k, v in counts.items()
                if v > self._audited.get(k, 0)
            }
            if delta:
                self._audited = dict(counts)
                self._audited_at = now
                self._on_found(delta)
