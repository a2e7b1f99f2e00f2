"""Wiring: open the state dir, start the listener, run until stopped."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import os
import signal
import socket
from collections.abc import Sequence

from bastion import installed_version, metrics, observe
from bastion.alert_sink import AlertSink
from bastion.alerts import Alert, AlertDetector
from bastion.audit import AuditEntry, AuditLog, StoreHealth
from bastion.config import load_config, parse_listen
from bastion.connections import LiveConnections
from bastion.context import Bastion, TargetDirectory
from bastion.decide import Decider
from bastion.decisions.pool import DecisionPool
from bastion.errors import NotInitialised
from bastion.exchange import TokenExchange
from bastion.held_requests import HeldRequests
from bastion.identity.authorities import Authorities
from bastion.identity.resolver import IdentityResolver
from bastion.nodes import heartbeat_forever, start_node, this_node
from bastion.notify import Webhook
from bastion.ops_http import OpsServer
from bastion.readiness import probes_for
from bastion.recordings import open_recording_store
from bastion.search import Indexer
from bastion.session_log import SessionLog
from bastion.ssh.listener import start_listener
from bastion.statedir import StateDir
from bastion.store import open_store
from bastion.store_events import StoreEvents

log = logging.getLogger("bastion")


def open_bastion(
    state: StateDir,
    node: str | None = None,
    *,
    host_names: Sequence[str] = (),
    metrics_listen: tuple[str, int] | None = None,
) -> Bastion:
    """The bastion of a state dir, its store not opened yet (run_bastion opens it).

    `host_names` and `metrics_listen` override `[server]` for this run
    (`bastion serve --host-name`, `--metrics`)."""
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
    decider = Decider.from_config(config, state.root)
    name = this_node(node or config.server.node).name
    store = open_store(state.store_url(config.store.url), node=name)
    alerts = AlertSink(
        store,
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

    audit = AuditLog(store, on_entry=on_entry, health=health)
    indexer = Indexer(store, config.recordings, state.root, cpu_share=config.search.index_cpu_share)
    connections = LiveConnections(store, audit)
    requests = HeldRequests(
        store, Webhook(config.approvals.webhook) if config.approvals.webhook else None
    )
    return Bastion(
        state=state,
        config=config,
        authorities=authorities,
        store=store,
        decider=decider,
        decisions=DecisionPool(
            state.root,
            workers=config.rules.decision_workers or os.cpu_count() or 1,
            budget=config.rules.decision_budget,
            decider=decider,
        ),
        audit=audit,
        alerts=alerts,
        sessions=SessionLog(store, alerts, on_closed=indexer.session_ended, health=health),
        identities=IdentityResolver(store, config.roles, roles_enforced=config.roles_enforced),
        connections=connections,
        requests=requests,
        recordings=open_recording_store(config.recordings, state.root, store, name),
        targets=TargetDirectory(store),
        events=StoreEvents(store, requests, connections),
        exchange=TokenExchange(config, authorities) if config.issuers else None,
        indexer=indexer,
    )


async def run_bastion(
    bastion: Bastion,
    listen: str | None = None,
    ready: asyncio.Future[int] | None = None,
    sock: socket.socket | None = None,
    reuse_port: bool = False,
) -> None:
    """Serve until cancelled or SIGTERM/SIGINT; `ready` gets the bound port."""
    await bastion.store.open()
    try:
        await bastion.decisions.start()
        await _serve(bastion, listen, ready, sock, reuse_port)
    finally:
        await bastion.decisions.close()
        await bastion.drain_writes()
        await bastion.store.close()


async def _serve(
    bastion: Bastion,
    listen: str | None,
    ready: asyncio.Future[int] | None,
    sock: socket.socket | None,
    reuse_port: bool,
) -> None:
    if listen:
        host, port = parse_listen(listen)
    else:
        host, port = bastion.config.server.listen_host, bastion.config.server.listen_port
    node = this_node(bastion.store.node, f"{host}:{port}")
    await start_node(bastion.store, node)
    await record_config(bastion)
    server = await start_listener(bastion, host, port, sock=sock, reuse_port=reuse_port)
    bound = server.sockets[0].getsockname()[1]
    ops = await _start_ops(bastion)
    metrics.set_version(installed_version())
    log.info(
        "bastion %s node %s listening on %s:%s (state %s, host names %s)",
        installed_version(),
        node.name,
        host,
        bound,
        bastion.state.root,
        ", ".join(bastion.config.server.host_names),
        extra={"event": "bastion.start"},
    )
    if ready is not None and not ready.done():
        ready.set_result(bound)
    background = [asyncio.ensure_future(task) for task in bastion.background()]
    background.append(asyncio.ensure_future(heartbeat_forever(bastion.store, node)))
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
        await asyncio.gather(*background, return_exceptions=True)
        await bastion.recordings.stop()
        await server.wait_closed()
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


async def record_config(bastion: Bastion) -> None:
    """Journal the configuration this node runs with (bastion.toml and the policy files
    it names) in the audit chain, when it changed since the last node started."""
    digest = hashlib.sha256()
    names = [bastion.state.config_file.name]
    digest.update(bastion.state.config_file.read_bytes())
    policies = [*bastion.config.rules.policy, *(p for r in bastion.config.roles for p in r.policy)]
    for name in dict.fromkeys(policies):
        path = bastion.state.root / name
        if path.is_file():
            names.append(name)
            digest.update(b"\0" + name.encode() + b"\0" + path.read_bytes())
    roles = ", ".join(role.name for role in bastion.config.roles) or "none"
    detail = f"{' + '.join(names)}; roles: {roles}"
    if await bastion.store.record_config(digest.hexdigest(), detail[:1000]):
        log.info("configuration recorded in the audit chain: %s", detail[:200])
