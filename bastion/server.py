"""Wiring: open the state dir, start the listener, run until stopped."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import signal
from collections.abc import Sequence

from bastion import installed_version, metrics
from bastion.alerts import AlertDetector
from bastion.config import load_config, parse_listen
from bastion.context import Bastion
from bastion.decide import Decider
from bastion.errors import NotInitialised
from bastion.exchange import TokenExchange
from bastion.identity.authorities import Authorities
from bastion.notify import Webhook
from bastion.ops_http import OpsServer
from bastion.readiness import probes_for
from bastion.search import Indexer
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
    return Bastion(
        state=state,
        config=config,
        authorities=authorities,
        db=db,
        indexer=Indexer(db),
        decider=decider,
        exchange=TokenExchange(config, authorities) if config.issuers else None,
        webhook=Webhook(config.approvals.webhook) if config.approvals.webhook else None,
        alerts=AlertDetector(config.alerts.thresholds),
        alert_webhook=Webhook(config.alerts.webhook) if config.alerts.webhook else None,
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
    background = [
        asyncio.ensure_future(bastion.flush_recordings_forever()),
        asyncio.ensure_future(bastion.enforce_revocations_forever()),
        asyncio.ensure_future(bastion.expire_abandoned_requests_forever()),
    ]
    if bastion.indexer is not None:
        background.append(asyncio.ensure_future(bastion.indexer.run_forever()))
    for webhook in (bastion.webhook, bastion.alert_webhook):
        if webhook is not None:
            background.append(asyncio.ensure_future(webhook.run_forever()))
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
            len(bastion.live),
            extra={"event": "bastion.stopping"},
        )
    finally:
        for task in background:
            task.cancel()
        server.close()
        if ops is not None:
            ops.close()
        for item in list(bastion.flushables):
            item.flush()
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
