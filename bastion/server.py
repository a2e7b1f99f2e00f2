"""Wiring: open the state dir, start the listener, run until stopped."""

from __future__ import annotations

import asyncio
import logging
import signal

from bastion.alerts import AlertDetector
from bastion.config import load_config, parse_listen
from bastion.context import Bastion
from bastion.decide import Decider
from bastion.errors import NotInitialised
from bastion.exchange import TokenExchange
from bastion.identity.authorities import Authorities
from bastion.notify import Webhook
from bastion.search import Indexer
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
        config.rules.policy,
        config.rules.default_action,
        state.root,
        config.roles,
        unknown_action=config.rules.unknown_action,
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
    log.info("bastion listening on %s:%s (state %s)", host, bound, bastion.state.root)
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
        for item in list(bastion.flushables):
            item.flush()
        await server.wait_closed()
