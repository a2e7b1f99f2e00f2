"""Wiring: open the state dir, start the listener, run until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal

from bastion.alert_sink import AlertSink
from bastion.alerts import Alert, AlertDetector
from bastion.audit import AuditLog, StoreHealth
from bastion.config import load_config, parse_listen
from bastion.connections import LiveConnections
from bastion.context import Bastion, TargetDirectory
from bastion.decide import Decider
from bastion.errors import NotInitialised
from bastion.exchange import TokenExchange
from bastion.held_requests import HeldRequests
from bastion.identity.authorities import Authorities
from bastion.identity.resolver import IdentityResolver
from bastion.notify import Webhook
from bastion.relay.recording import Recorder
from bastion.search import Indexer
from bastion.session_log import SessionLog
from bastion.ssh.listener import start_listener
from bastion.statedir import StateDir
from bastion.store.db import AsyncDatabase

log = logging.getLogger("bastion")


def open_bastion(state: StateDir) -> Bastion:
    if not state.is_initialised():
        raise NotInitialised(f"{state.root} is not initialised: run `bastion init` first")
    config = load_config(state.config_file)
    for warning in config.warnings:
        log.warning("%s", warning)
    authorities = Authorities(state.keys)
    decider = Decider.from_names(
        config.rules.policy, config.rules.default_action, state.root, config.roles
    )
    db = AsyncDatabase(state.database)
    alerts = AlertSink(
        db,
        AlertDetector(config.alerts.thresholds),
        Webhook(config.alerts.webhook) if config.alerts.webhook else None,
    )
    health = StoreHealth()
    health.on_recovered = lambda: alerts.raise_alert(
        Alert("audit-recovered", identity=None, detail="the store accepts audit writes again")
    )
    audit = AuditLog(db, on_entry=alerts.audited, health=health)
    indexer = Indexer(db)
    return Bastion(
        state=state,
        config=config,
        authorities=authorities,
        db=db,
        decider=decider,
        audit=audit,
        alerts=alerts,
        sessions=SessionLog(db, alerts, on_closed=indexer.session_ended, health=health),
        identities=IdentityResolver(db, config.roles, roles_enforced=config.roles_enforced),
        connections=LiveConnections(db, audit),
        requests=HeldRequests(
            db, audit, Webhook(config.approvals.webhook) if config.approvals.webhook else None
        ),
        recordings=Recorder(state.recordings),
        targets=TargetDirectory(db),
        exchange=TokenExchange(config, authorities) if config.issuers else None,
        indexer=indexer,
    )


async def run_bastion(
    bastion: Bastion, listen: str | None = None, ready: asyncio.Future[int] | None = None
) -> None:
    """Serve until cancelled or SIGTERM/SIGINT; `ready` gets the bound port."""
    if listen:
        host, port = parse_listen(listen)
    else:
        host, port = bastion.config.server.listen_host, bastion.config.server.listen_port
    server = await start_listener(bastion, host, port)
    bound = server.sockets[0].getsockname()[1]
    log.info("bastion listening on %s:%s (state %s)", host, bound, bastion.state.root)
    if ready is not None and not ready.done():
        ready.set_result(bound)
    background = [asyncio.ensure_future(task) for task in bastion.background()]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        await stop.wait()
    finally:
        for task in background:
            task.cancel()
        server.close()
        bastion.recordings.flush_all()
        await server.wait_closed()
        await bastion.audit.drain()
