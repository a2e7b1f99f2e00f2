"""Human durations (`90s`, `10m`, `2h`, `1d`) to seconds.

The unit is required: a bare `10` could mean seconds or minutes, and a
certificate valid for 10 seconds instead of 10 minutes fails in a way that
is hard to trace back to the flag.
"""

from __future__ import annotations

import re

from bastion.errors import UsageError

_DURATION = re.compile(r"^\s*(\d{1,7})\s*([smhd])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    match = _DURATION.match(text)
    if not match:
        number = text.strip()
        if number.isdigit():
            raise UsageError(
                f"duration {text!r} needs a unit: {number}s, {number}m, {number}h or {number}d"
            )
        raise UsageError(f"invalid duration {text!r}: use e.g. 90s, 10m, 2h, 1d")
    seconds = int(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise UsageError(f"invalid duration {text!r}: must be positive")
    return seconds
