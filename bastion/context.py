"""What a running bastion shares between connections: a frozen set of collaborators.

Each collaborator owns its state and its background task; nothing here
does work of its own. The relay and the SSH servers receive this container
and use the one or two collaborators they need.
"""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from bastion.alert_sink import AlertSink
from bastion.audit import AuditLog
from bastion.config import Config
from bastion.connections import LiveConnections
from bastion.decide import Decider
from bastion.decisions.pool import DecisionPool
from bastion.exchange import TokenExchange
from bastion.held_requests import HeldRequests
from bastion.identity.authorities import Authorities
from bastion.identity.resolver import IdentityResolver
from bastion.recordings import RecordingStore
from bastion.search import Indexer
from bastion.session_log import SessionLog
from bastion.statedir import StateDir
from bastion.store import Store
from bastion.store_events import StoreEvents
from bastion.targets import Target


class TargetDirectory:
    """Registered targets, looked up by name."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def get(self, name: str) -> Target | None:
        return await self._store.get_target(name)


@dataclass(frozen=True)
class Bastion:
    state: StateDir
    config: Config
    authorities: Authorities
    store: Store
    decider: Decider  # in this process: `bastion rules test`, and the workers' own copy
    decisions: DecisionPool  # what the relay asks: the same rules, in worker processes
    audit: AuditLog
    alerts: AlertSink
    sessions: SessionLog
    identities: IdentityResolver
    connections: LiveConnections
    requests: HeldRequests
    recordings: RecordingStore  # where recordings are written and uploaded (bastion/recordings/)
    targets: TargetDirectory
    events: StoreEvents
    exchange: TokenExchange | None = None
    indexer: Indexer | None = None  # screen text for `bastion search`

    def background(self) -> list[Coroutine[Any, Any, None]]:
        """The long-running tasks of the collaborators, for the server to run."""
        tasks = [
            self.events.follow_forever(),
            self.recordings.run_forever(),
            self.connections.enforce_revocations_forever(),
            self.requests.expire_abandoned_forever(),
        ]
        if self.indexer is not None:
            tasks.append(self.indexer.run_forever())
        for webhook in (self.requests.webhook, self.alerts.webhook):
            if webhook is not None:
                tasks.append(webhook.run_forever())
        return tasks

    async def drain_writes(self) -> None:
        """Wait for every queued state write (before the store closes)."""
        await self.audit.drain()
        await self.sessions.drain()
        await self.alerts.drain()
