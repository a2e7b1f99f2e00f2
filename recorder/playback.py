"""Play a recording's output with its original timing, scaled and with long pauses capped."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

from recorder.cast import Cast


def replay(
    cast: Cast,
    out: TextIO,
    *,
    speed: float = 1.0,
    idle_limit: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Write output events to `out`; input, resize and marker events are not shown."""
    if not speed > 0:
        raise ValueError("speed must be greater than 0")
    if idle_limit is not None and idle_limit < 0:
        raise ValueError("idle_limit must not be negative")
    previous = 0.0
    for event in cast.events:
        if event.kind != "o":
            continue
        gap = max(0.0, event.time - previous)
        previous = event.time
        if idle_limit is not None:
            gap = min(gap, idle_limit)
        if gap > 0:
            out.flush()
            sleep(gap / speed)
        out.write(event.data)
    out.flush()
