"""Reviewer verbs executed on the bastion itself: `ssh -p 2222 alice@bastion approve 42`.

The caller is the identity of the certificate they logged in with; what it
may see and decide is checked by bastion.approvals (an approving role for
the request's target, never its own request). Anyone else gets the usual
"this is a jump host" message.
"""

from __future__ import annotations

import asyncio
import logging

import asyncssh

from bastion import admin_verbs
from bastion.approvals import Reviewer
from bastion.audit import AuditEntry
from bastion.context import Bastion
from bastion.errors import BastionError
from bastion.identity.model import Identity

log = logging.getLogger("bastion.admin")

JUMP_HOST_HINT = (
    "bastion: this is a jump host; use `ssh -J USER@bastion LOGIN@TARGET` "
    "or `ssh LOGIN%TARGET@bastion`"
)


class AdminSession(asyncssh.SSHServerSession[bytes]):
    def __init__(self, bastion: Bastion, identity: Identity, peer: str | None) -> None:
        self.bastion = bastion
        self.identity = identity
        self.peer = peer
        self.command: str | None = None
        self._chan: asyncssh.SSHServerChannel[bytes] | None = None

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self._chan = chan

    def pty_requested(self, *args: object) -> bool:
        return True

    def shell_requested(self) -> bool:
        return True

    def exec_requested(self, command: str) -> bool:
        self.command = command
        return True

    def subsystem_requested(self, subsystem: str) -> bool:
        return True

    def eof_received(self) -> bool:
        return True  # the client closing its stdin must not close our side before we answer

    def session_started(self) -> None:
        asyncio.ensure_future(self._answer())

    def _reviewer(self) -> Reviewer | None:
        grants = self.identity.grants
        if grants is None or not any(role.approve for role in grants.roles):
            return None
        return Reviewer(self.identity.name, local=False, grants=grants)

    async def _answer(self) -> None:
        assert self._chan is not None
        reviewer = self._reviewer()
        if self.command is None:
            self._finish("", JUMP_HOST_HINT, 1)
            return
        if reviewer is None:
            self.bastion.audit.note(
                AuditEntry(
                    kind="refused",
                    identity=self.identity.name,
                    command=self.command[:200],
                    detail="reviewer verb without an approving role",
                )
            )
            self._finish("", f"{JUMP_HOST_HINT}\nbastion: no role of yours may approve requests", 7)
            return
        try:
            parsed = admin_verbs.parse(self.command)
            text = await admin_verbs.run(self.bastion.store, reviewer, parsed)
        except BastionError as exc:
            self.bastion.audit.note(
                AuditEntry(
                    kind="refused",
                    identity=self.identity.name,
                    command=self.command,
                    detail=str(exc),
                )
            )
            self._finish("", f"bastion: {exc}", exc.exit_code)
            return
        except Exception as exc:  # fail closed: nothing was decided
            log.exception("admin verb %r from %s failed", self.command, self.identity.name)
            self._finish("", f"bastion: internal error ({type(exc).__name__})", 1)
            return
        if parsed.verb in ("approve", "deny"):
            assert parsed.request_id is not None
            self.bastion.requests.decided(parsed.request_id)
            log.info("%s by %s from %s: %s", parsed.verb, self.identity.name, self.peer, text)
        self._finish(text, "", 0)

    def _finish(self, stdout: str, stderr: str, status: int) -> None:
        assert self._chan is not None
        if self._chan.is_closing():
            return  # the reviewer went away; what was decided is in the audit log
        if stdout:
            self._chan.write(stdout.encode() + b"\n")
        if stderr:
            self._chan.write_stderr(stderr.encode() + b"\n")
        self._chan.exit(status)
