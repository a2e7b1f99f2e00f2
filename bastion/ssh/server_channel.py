"""The bastion's session channel: an exec command that is not UTF-8 is refused out loud.

asyncssh decodes an exec request's command as UTF-8 before any session
callback sees it, and answers a command that does not decode with a bare
channel failure: the bastion would never know, and no audit row would say
that anything was asked (`ssh host $'\\xff'`). BastionServerChannel hands
the raw bytes to the session's `exec_undecodable(command: bytes) -> bool`
instead, when it has one: True accepts the request, so that the session
can start and answer with `refuse_undecodable_exec` (a durable audit row
with the bytes escaped, one line on stderr, exit status 126); False, or a
session without the callback, is asyncssh's channel failure.

Nothing runs either way: a command that is not text cannot be decided.
"""

from __future__ import annotations

from typing import Any

import asyncssh
from asyncssh.packet import SSHPacket

from bastion.audit import AuditEntry, AuditLog, AuditUnavailable

EXIT_REFUSED = 126
SHOWN_BYTES = 200


class BastionServerChannel(asyncssh.SSHServerChannel[Any]):
    def _process_exec_request(self, packet: SSHPacket) -> bool:
        """asyncssh 2.x's exec request handling, with the undecodable case passed on."""
        command_bytes = packet.get_string()
        packet.check_end()
        try:
            command = command_bytes.decode("utf-8")
        except UnicodeDecodeError:
            refuse = getattr(self._session, "exec_undecodable", None)
            if refuse is None or self._session_started:
                return False
            self._session_started = True  # no shell or second exec after this one
            return bool(refuse(command_bytes))
        self.logger.info("  Command: %s", command)
        return self._start_session(command=command)


def undecodable_reason(command: bytes) -> str:
    """One line naming the bytes (escaped, cut at SHOWN_BYTES) that were not run."""
    shown = repr(command[:SHOWN_BYTES])
    more = f" ... ({len(command)} bytes)" if len(command) > SHOWN_BYTES else ""
    return f"command is not valid UTF-8, not run: {shown}{more}"


async def refuse_undecodable_exec(
    audit: AuditLog,
    chan: asyncssh.SSHServerChannel[bytes],
    command: bytes,
    *,
    identity: str | None,
    target: str | None = None,
    login: str | None = None,
    pty: bool = False,
) -> None:
    """Audit the refusal (durably: the agent hears of it after the row is written), tell, exit."""
    reason = undecodable_reason(command)
    entry = AuditEntry(kind="refused", identity=identity, target=target, login=login, detail=reason)
    try:
        await audit.record(entry)
    except AuditUnavailable:
        pass  # refused all the same; the audit log has logged its failure
    newline = b"\r\n" if pty else b"\n"
    chan.write_stderr(f"bastion: {reason}".encode() + newline)
    chan.exit(EXIT_REFUSED)
