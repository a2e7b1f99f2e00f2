"""The SFTP channel's input handler: every path-bearing request is decided first.

Requests that need no decision (reads and writes on open handles) are
forwarded as they come, in batches. A request that does is decided before
anything after it moves: the stream stops (reading from the agent pauses
once enough is buffered) until the decision (or a reviewer) says, then the
request goes to the target or is answered here with a permission error.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bastion.decide import Verdict
from bastion.relay.relay import EXIT_UPSTREAM_FAILED, Relay
from bastion.relay.sftp_guard import (
    FX_PERMISSION_DENIED,
    SftpGuard,
    SftpProtocolError,
    SftpRequest,
    status_reply,
)

log = logging.getLogger("bastion.sftp")

MAX_BUFFERED = 1 << 20  # agent bytes held behind a pending decision before reading pauses

# (first verdict that does not allow, its command, the message for the agent), or (None, "", "")
SftpDecider = Callable[[tuple[str, ...]], Awaitable[tuple[Verdict | None, str, str]]]


class SftpRelay:
    def __init__(self, relay: Relay, decide: SftpDecider) -> None:
        self._relay = relay
        self._decide = decide
        self._guard = SftpGuard()
        self._deciding: asyncio.Task[None] | None = None

    def input(self, data: bytes) -> None:
        self._guard.add(data)
        if self._deciding is not None:
            if self._guard.buffered > MAX_BUFFERED:
                self._relay.flow.stop_agent("sftp")
            return
        self._drain()

    def _drain(self) -> None:
        allowed: list[bytes] = []
        try:
            for request in self._guard.requests():
                if request.request_id is None:  # INIT: no file operation
                    allowed.append(request.raw)
                elif request.refusal is not None:
                    self._flush(allowed)
                    self._refuse(request, f"bastion: {request.refusal}")
                elif not request.commands:
                    allowed.append(request.raw)
                else:
                    self._flush(allowed)
                    self._deciding = asyncio.ensure_future(self._decide_then_go_on(request))
                    return
        except SftpProtocolError as exc:
            self._flush(allowed)
            log.warning("SFTP stream refused: %s", exc)
            self._relay.finish(EXIT_UPSTREAM_FAILED, f"bastion: SFTP stream refused: {exc}")
            return
        self._flush(allowed)
        self._relay.flow.go_agent("sftp")

    def _flush(self, allowed: list[bytes]) -> None:
        if allowed:
            self._relay.to_target(b"".join(allowed))
            allowed.clear()

    def _refuse(self, request: SftpRequest, message: str) -> None:
        assert request.request_id is not None
        self._relay.agent.write(status_reply(request.request_id, FX_PERMISSION_DENIED, message))

    async def _decide_then_go_on(self, request: SftpRequest) -> None:
        try:
            verdict, _, message = await self._decide(request.commands)
        except Exception:  # fail closed: the request is refused
            log.exception("deciding an SFTP request failed")
            verdict, message = None, "bastion: the decision failed; denied"
            refused = True
        else:
            refused = verdict is not None
        self._deciding = None
        if self._relay.closed:
            return
        if refused:
            self._refuse(request, message)
        else:
            self._relay.to_target(request.raw)
        self._drain()
