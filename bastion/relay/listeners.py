"""Listeners on a relayed channel, and the one rule they live by: they cannot stall it.

A listener overrides the `on_*` methods for the events it wants. The
relay calls them synchronously with each event; a listener that raises is
detached at once and reported through `on_failure` (logged, audited), and
the channel goes on without it, as a failed recording write does.

    >>> from bastion.relay.events import Input
    >>> class Count(Listener):
    ...     n = 0
    ...     def on_input(self, event): self.n += len(event.data)
    >>> listeners = Listeners(); counter = Count(); listeners.attach(counter)
    >>> listeners.emit(Input(b"ls\\r")); counter.n
    3
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from bastion.relay.events import Decided, Event, Exit, Input, Opened, Output, Resize

log = logging.getLogger("bastion.relay")

_HANDLERS: dict[type, str] = {
    Opened: "on_open",
    Input: "on_input",
    Output: "on_output",
    Resize: "on_resize",
    Decided: "on_decision",
    Exit: "on_exit",
}


class Listener:
    """Base class: every method is a no-op, override what you need."""

    name = "listener"

    def on_open(self, event: Opened) -> None: ...
    def on_input(self, event: Input) -> None: ...
    def on_output(self, event: Output) -> None: ...
    def on_resize(self, event: Resize) -> None: ...
    def on_decision(self, event: Decided) -> None: ...
    def on_exit(self, event: Exit) -> None: ...


class DebugListener(Listener):
    """Keeps every event it sees, in order (tests, debugging)."""

    name = "debug"

    def __init__(self) -> None:
        self.events: list[Event] = []

    def on_open(self, event: Opened) -> None:
        self.events.append(event)

    on_input = on_output = on_resize = on_decision = on_exit = on_open  # type: ignore[assignment]


class Listeners:
    def __init__(self, on_failure: Callable[[Listener, Exception], None] | None = None) -> None:
        self._on_failure = on_failure
        self._attached: list[Listener] = []
        # Per event type, only the listeners that override its handler (an event
        # nobody listens to costs one dict lookup). Tuples, replaced on change,
        # so an emit in progress is never disturbed by a detach.
        self._table: dict[type, tuple[tuple[Listener, Callable[[Event], None]], ...]] = {
            kind: () for kind in _HANDLERS
        }

    @property
    def attached(self) -> tuple[Listener, ...]:
        return tuple(self._attached)

    def attach(self, listener: Listener) -> None:
        self._attached.append(listener)
        for kind, method in _HANDLERS.items():
            if getattr(type(listener), method) is not getattr(Listener, method):
                self._table[kind] += ((listener, getattr(listener, method)),)

    def detach(self, listener: Listener) -> None:
        if listener in self._attached:
            self._attached.remove(listener)
            for kind, entries in self._table.items():
                self._table[kind] = tuple(e for e in entries if e[0] is not listener)

    def emit(self, event: Event) -> None:
        for listener, handler in self._table[type(event)]:
            try:
                handler(event)
            except Exception as exc:
                self._failed(listener, exc)

    def _failed(self, listener: Listener, exc: Exception) -> None:
        log.error("listener %s failed and was turned off: %r", listener.name, exc)
        self.detach(listener)
        if self._on_failure is not None:
            try:
                self._on_failure(listener, exc)
            except Exception:
                log.exception("reporting a failed listener failed")
