"""Back-pressure for one relayed channel, both directions, in one object.

Reading from a side stops while any reason to stop holds, and resumes only
when the last one clears, so independent reasons (the target's send buffer
is full, a line waits for its decision, input arrived before the target
was ready) never resume each other's pause by accident.

    >>> calls = []
    >>> flow = FlowControl(lambda: calls.append("pause agent"), lambda: calls.append("resume agent"))
    >>> flow.stop_agent("target-full"); flow.stop_agent("review"); flow.go_agent("target-full")
    >>> calls
    ['pause agent']
    >>> flow.go_agent("review"); calls
    ['pause agent', 'resume agent']
"""

from __future__ import annotations

from collections.abc import Callable


class FlowControl:
    def __init__(
        self,
        pause_agent: Callable[[], None],
        resume_agent: Callable[[], None],
        pause_target: Callable[[], None] | None = None,
        resume_target: Callable[[], None] | None = None,
    ) -> None:
        self._agent = (pause_agent, resume_agent)
        self._target = (pause_target, resume_target)
        self._agent_stops: set[str] = set()
        self._target_stops: set[str] = set()

    # --- reading from the agent --------------------------------------------------------

    def stop_agent(self, reason: str) -> None:
        if not self._agent_stops:
            self._agent[0]()
        self._agent_stops.add(reason)

    def go_agent(self, reason: str) -> None:
        if reason in self._agent_stops:
            self._agent_stops.discard(reason)
            if not self._agent_stops:
                self._agent[1]()

    @property
    def agent_stopped(self) -> bool:
        return bool(self._agent_stops)

    # --- reading from the target -------------------------------------------------------

    def attach_target(self, pause: Callable[[], None], resume: Callable[[], None]) -> None:
        """The target's side exists now; a stop asked for before it did takes effect."""
        self._target = (pause, resume)
        if self._target_stops:
            pause()

    def stop_target(self, reason: str) -> None:
        if not self._target_stops and self._target[0] is not None:
            self._target[0]()
        self._target_stops.add(reason)

    def go_target(self, reason: str) -> None:
        if reason in self._target_stops:
            self._target_stops.discard(reason)
            if not self._target_stops and self._target[1] is not None:
                self._target[1]()

    @property
    def target_stopped(self) -> bool:
        return bool(self._target_stops)
