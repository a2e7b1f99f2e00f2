"""Byte counts per session and per command, written when each ends.

A session's commands are its exec string, or the lines entered in its
shell one after another: a line's counts run until the next line is
entered (the shell does not say when a command ends).
"""

from __future__ import annotations

import time

from bastion import metrics
from bastion.alert_sink import AlertSink
from bastion.audit import AuditHandle, AuditLog, AuditOutcome
from bastion.relay.events import Exit, Input, Output
from bastion.relay.listeners import Listener
from bastion.session_log import SessionClosed, SessionLog


class Accounting(Listener):
    name = "accounting"

    def __init__(
        self,
        audit: AuditLog,
        sessions: SessionLog,
        alerts: AlertSink,
        *,
        session_id: str,
        identity: str,
        target: str,
    ) -> None:
        self._audit = audit
        self._sessions = sessions
        self._alerts = alerts
        self._session_id = session_id
        self._identity = identity
        self._target = target
        self.bytes_in = 0
        self.bytes_out = 0
        self._command: tuple[AuditHandle, int, int, bool] | None = None

    def on_input(self, event: Input) -> None:
        self.bytes_in += len(event.data)
        metrics.bytes_relayed("in", len(event.data))

    def on_output(self, event: Output) -> None:
        self.bytes_out += len(event.data)
        metrics.bytes_relayed("out", len(event.data))

    def command_started(self, handle: AuditHandle, *, exits: bool) -> None:
        """`handle`'s command runs from now; the one before it has ended.

        `exits`: the channel's exit status is this command's (an exec); a
        shell line has none of its own.
        """
        self._command_ended(None)
        self._command = (handle, self.bytes_in, self.bytes_out, exits)

    def on_exit(self, event: Exit) -> None:
        self._command_ended(event.status)
        self._sessions.closed(
            self._session_id,
            SessionClosed(
                ended=time.time(),
                exit_status=event.status,
                exit_signal=event.signal,
                bytes_in=self.bytes_in,
                bytes_out=self.bytes_out,
                error=event.error,
            ),
        )

    def _command_ended(self, status: int | None) -> None:
        if self._command is None:
            return
        handle, start_in, start_out, exits = self._command
        self._command = None
        sent = self.bytes_out - start_out
        self._audit.finish(
            handle,
            AuditOutcome(
                ended=time.time(),
                exit_status=status if exits else None,
                bytes_in=self.bytes_in - start_in,
                bytes_out=sent,
            ),
        )
        if sent:
            command = handle.entry.command
            what = f"command {command[:80]!r}" if command else "a command"
            self._alerts.output(self._identity, self._session_id, self._target, what, sent)
