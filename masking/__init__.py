"""Output masking: secrets and personal data replaced as a stream goes by.

    >>> from masking import ChannelMasker
    >>> cm = ChannelMasker(clock=lambda: 0.0)
    >>> cm.feed("stdout", b"card 4111 1111 1111 1111, id AKIAIOSF")
    b'card [MASKED:card], id '
    >>> cm.deadline()  # the rest of the line may be a secret: due at clock() + hold
    0.04
    >>> cm.feed("stdout", b"ODNN7\\x1b[1mEXAMPLE\\x1b[m, mail jane@exam") + cm.feed("stdout", b"ple.com\\n")
    b'[MASKED:aws-access-key]\\x1b[m, mail [MASKED:email]\\n'
    >>> [(e.detector, e.count) for e in cm.events()]
    [('card', 1), ('aws-access-key', 1), ('email', 1)]

A library of plain bytes: it knows nothing of SSH, channels or the bastion.
The per-channel API the relay calls (channel.py):

- `ChannelMasker.feed(stream, data) -> bytes`: the masked bytes to send now.
- `ChannelMasker.deadline() -> float | None`: when held bytes are due.
- `ChannelMasker.release(now=None) -> dict[stream, bytes]`: what is due by then
  (held tails past their deadline, screen corrections for a pty).
- `ChannelMasker.flush() -> dict[stream, bytes]`: everything held (end of output).
- `ChannelMasker.events() -> list[Event]`: findings by detector, the switch to
  binary, encoded secrets with their encoder, stops, screen fixes (events.py).
- `ChannelMasker.resize(cols, rows)`: the pty's new size (screen.py).

Inside: detectors.toml is the detector table and table.py reads it;
engine.py finds findings (one Hyperscan prefilter pass, then each detector
where its keyword occurs; builtins.py for the detectors written in Python,
validators.py for checksums and entropy); projection.py gives the views a
terminal would show; stream.py cuts a stream so that split secrets are
still found and decides how long a partial line is held; keyblock.py
follows private key blocks over many lines; encoded.py finds reversed,
folded, base64, hex-dumped and compressed secrets; screen.py checks a pty's
screen. `Masker` is one stream; `ChannelMasker` one channel.
"""

from masking.channel import ChannelMasker
from masking.engine import ENGINE, Scanner
from masking.events import BinaryOutput, EncodedSecret, Event, Found, ScreenMasked, Stopped
from masking.stream import BINARY_POLICIES, WINDOW, Masker, fill, marker
from masking.table import (
    BUILTIN,
    GROUPS,
    MAX_CUSTOM_PATTERN,
    NAMES,
    TABLE,
    Detector,
    custom_detector,
    describe,
    select,
)

__all__ = [
    "BINARY_POLICIES",
    "BUILTIN",
    "ENGINE",
    "GROUPS",
    "MAX_CUSTOM_PATTERN",
    "NAMES",
    "TABLE",
    "WINDOW",
    "BinaryOutput",
    "ChannelMasker",
    "Detector",
    "EncodedSecret",
    "Event",
    "Found",
    "Masker",
    "Scanner",
    "ScreenMasked",
    "Stopped",
    "custom_detector",
    "describe",
    "fill",
    "marker",
    "select",
]
