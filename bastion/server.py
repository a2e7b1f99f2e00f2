"""Wiring: open the state dir, start the listener, run until stopped."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Sequence

from bastion import installed_version, metrics, observe
from bastion.alert_sink import AlertSink
from bastion.alerts import Alert, AlertDetector
from bastion.audit import AuditEntry, AuditLog, StoreHealth
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
from bastion.ops_http import OpsServer
from bastion.readiness import probes_for
from bastion.relay.recording import Recorder
from bastion.search import Indexer
from bastion.session_log import SessionLog
from bastion.ssh.listener import start_listener
from bastion.statedir import StateDir
from bastion.store.db import AsyncDatabase

log = logging.getLogger("bastion")


def open_bastion(
    state: StateDir,
    *,
    host_names: Sequence[str] = (),
    metrics_listen: tuple[str, int] | None = None,
) -> Bastion:
    """Load config, keys, policies and the store; `host_names` and `metrics_listen`
    override `[server]` for this run (`bastion serve --host-name`, `--metrics`)."""
    if not state.is_initialised():
        raise NotInitialised(f"{state.root} is not initialised: run `bastion init` first")
    config = load_config(state.config_file)
    for warning in config.warnings:
        log.warning("%s", warning, extra={"event": "config.warning"})
    server = config.server
    if host_names:
        names = tuple(dict.fromkeys([*host_names, "localhost", "127.0.0.1"]))
        server = dataclasses.replace(server, host_names=names)
    if metrics_listen is not None:
        server = dataclasses.replace(server, metrics=metrics_listen)
    config = dataclasses.replace(config, server=server)
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

    def on_entry(entry: AuditEntry) -> None:
        observe.audited(entry.fields())  # the serve log and the metrics
        alerts.audited(entry)

    audit = AuditLog(db, on_entry=on_entry, health=health)
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
    ops = await _start_ops(bastion)
    metrics.set_version(installed_version())
    log.info(
        "bastion %s listening on %s:%s (state %s, host names %s)",
        installed_version(),
        host,
        bound,
        bastion.state.root,
        ", ".join(bastion.config.server.host_names),
        extra={"event": "bastion.start"},
    )
    if ready is not None and not ready.done():
        ready.set_result(bound)
    background = [asyncio.ensure_future(task) for task in bastion.background()]
    stop = asyncio.Event()
    stopped_by: list[str] = []
    loop = asyncio.get_running_loop()

    def on_signal(sig: signal.Signals) -> None:
        stopped_by.append(sig.name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        await stop.wait()
        log.info(
            "stopping on %s: closing %d agent connection(s)",
            stopped_by[0] if stopped_by else "request",
            len(bastion.connections),
            extra={"event": "bastion.stopping"},
        )
    finally:
        for task in background:
            task.cancel()
        server.close()
        if ops is not None:
            ops.close()
        bastion.recordings.flush_all()
        await server.wait_closed()
        await bastion.audit.drain()
        log.info("bastion stopped", extra={"event": "bastion.stop"})


async def _start_ops(bastion: Bastion) -> asyncio.Server | None:
    """The /metrics, /healthz, /readyz listener, if `[server] metrics` (or --metrics) is set."""
    where = bastion.config.server.metrics
    if where is None:
        return None
    ops = await OpsServer(probes_for(bastion)).start(*where)
    bound = ops.sockets[0].getsockname()
    log.info(
        "metrics, /healthz and /readyz on http://%s:%s",
        bound[0],
        bound[1],
        extra={"event": "metrics.start"},
    )
    return ops
