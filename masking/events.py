"""What a masker tells its caller besides the masked bytes: values, never the secrets.

The relay turns these into audit rows and alerts: every `Found` that was not
masked, every `BinaryOutput`, `EncodedSecret` and `Stopped` is an alert
(repeats may be merged into one alert with a count, never dropped). Offsets
are stream offsets (bytes since the stream began) of the raw output.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Found:
    """A finding. `masked` is False where the policy left it as it was (a file transfer,
    `binary = "pass"`): that is an alert."""

    detector: str
    offset: int
    masked: bool
    binary: bool = False
    stream: str = "stdout"
    count: int = 1


@dataclass(frozen=True, slots=True)
class BinaryOutput:
    """The stream turned binary at `offset` (still scanned; see the binary policy)."""

    offset: int
    stream: str = "stdout"
    count: int = 1


@dataclass(frozen=True, slots=True)
class EncodedSecret:
    """Output that decodes to a secret: `encoder` is base64, hex (xxd), gzip, ..."""

    encoder: str
    detector: str
    offset: int
    stream: str = "stdout"
    count: int = 1


@dataclass(frozen=True, slots=True)
class Stopped:
    """`binary = "stop"`: a secret in binary output; nothing more is sent on the stream.
    The relay closes the channel."""

    detector: str
    offset: int
    stream: str = "stdout"
    count: int = 1


@dataclass(frozen=True, slots=True)
class ScreenMasked:
    """A secret assembled on the terminal screen (cursor moves across lines) was overwritten."""

    detector: str
    row: int
    stream: str = "stdout"
    count: int = 1


Event = Found | BinaryOutput | EncodedSecret | Stopped | ScreenMasked


def with_stream(event: Event, stream: str) -> Event:
    """The same event, naming the stream it came from."""
    return type(event)(**{**{f: getattr(event, f) for f in event.__slots__}, "stream": stream})  # type: ignore[arg-type]
