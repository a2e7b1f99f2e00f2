"""What an agent asked for on a session channel, as one value.

The channel adapter (bastion/ssh/channel.py) collects the pty, env, exec,
shell and subsystem requests asyncssh reports one by one, and freezes them
into a ChannelRequest when the session starts. Everything after that
(admission, the decision, the relay) reads this value, never the channel.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_SIZE = (80, 24)


@dataclass(frozen=True)
class ChannelRequest:
    kind: str  # exec | shell | subsystem
    command: str | None = None
    subsystem: str | None = None
    term_type: str | None = None
    term_size: tuple[int, int, int, int] | None = None
    term_modes: tuple[tuple[int, int], ...] = ()
    env: tuple[tuple[str, str], ...] = ()  # as the agent sent it, before the allow-list

    @property
    def pty(self) -> bool:
        return self.term_type is not None

    @property
    def size(self) -> tuple[int, int]:
        if self.term_size is None:
            return DEFAULT_SIZE
        width, height = self.term_size[:2]
        return width or DEFAULT_SIZE[0], height or DEFAULT_SIZE[1]

    @property
    def what(self) -> str | None:
        """The command line to decide: the exec string, or the subsystem's name."""
        return self.command if self.kind == "exec" else self.subsystem
