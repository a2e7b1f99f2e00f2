"""Session recording: asciicast v2 files, a lazy terminal model, replay.

Bytes in, events out; nothing here knows SSH, databases or the bastion.
"""

from recorder.cast import AsciicastWriter, Cast, CastFormatError, CastHeader, Event, read_cast
from recorder.playback import replay
from recorder.screen import EnteredLine, TerminalModel

__all__ = [
    "AsciicastWriter",
    "Cast",
    "CastFormatError",
    "CastHeader",
    "EnteredLine",
    "Event",
    "TerminalModel",
    "read_cast",
    "replay",
]
