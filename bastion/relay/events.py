"""The fixed vocabulary of what happens on a relayed channel.

Listeners (recording, accounting, the terminal model, metrics) receive
these frozen values and nothing else; none of them can see or change the
bytes on their way. Masking is the one transform and runs before `Output`
is made, so `Output.data` is exactly what the agent was sent.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bastion.relay.request import ChannelRequest


class Stream(enum.IntEnum):
    STDOUT = 0
    STDERR = 1


@dataclass(frozen=True, slots=True)
class Opened:
    """The channel's request was admitted and its session began."""

    request: ChannelRequest


@dataclass(frozen=True, slots=True)
class Input:
    """Bytes the agent sent (keys in a shell, stdin of an exec, SFTP packets)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Output:
    """Bytes sent to the agent; `raw` is what the target sent before masking.

    `raw` is empty for the bastion's own messages (a denial, a review line).
    """

    data: bytes
    stream: Stream
    raw: bytes


@dataclass(frozen=True, slots=True)
class Resize:
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class Decided:
    """A command, shell line or SFTP request was decided."""

    source: str  # exec | subsystem | line | sftp
    command: str
    action: str  # allow | alert | review | deny
    rule: str | None


@dataclass(frozen=True, slots=True)
class Exit:
    """The channel ended; at most one of status and signal is set."""

    status: int | None
    signal: str | None
    error: str | None


Event = Opened | Input | Output | Resize | Decided | Exit
