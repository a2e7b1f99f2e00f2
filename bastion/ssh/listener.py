"""Accepting agents' TCP connections on the bastion's SSH port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import asyncssh

from bastion.context import Bastion
from bastion.ssh.connection import BastionServerConnection
from bastion.ssh.outer import OuterServer
from bastion.ssh.proxy_protocol import ProxyHeaderReader
from bastion.ssh.upstream import AGENT_FACING_CIPHERS


async def start_listener(
    bastion: Bastion,
    host: str,
    port: int,
    *,
    sock: socket.socket | None = None,
    reuse_port: bool = False,
) -> asyncio.Server:
    """Listen for agents; every connection gets a fresh OuterServer.

    With `[server] proxy_protocol`, connections from those balancers start
    with a PROXY v2 header naming the agent (bastion/ssh/proxy_protocol.py).

    asyncssh.listen() builds plain SSHServerConnections, so the bastion
    creates the server itself to use BastionServerConnection, which keeps
    the authenticated certificate.
    """
    loop = asyncio.get_running_loop()
    key, cert = bastion.authorities.host_certificate_for_bastion(bastion.config.server.host_names)
    options = await asyncssh.SSHServerConnectionOptions.construct(
        server_factory=lambda: OuterServer(bastion),
        server_host_keys=[(key, cert)],
        encryption_algs=AGENT_FACING_CIPHERS,
        allow_pty=True,
        agent_forwarding=False,
        x11_forwarding=False,
        login_timeout=30,
        keepalive_interval=60,
    )

    def ssh() -> asyncio.Protocol:
        return BastionServerConnection(loop, options)

    trusted = bastion.config.server.proxy_protocol
    factory: Callable[[], asyncio.Protocol] = (
        (lambda: ProxyHeaderReader(ssh, trusted)) if trusted else ssh
    )
    if sock is not None:  # a listening socket bound before (--workers)
        return await loop.create_server(factory, sock=sock)
    return await loop.create_server(
        factory, host, port, reuse_address=True, reuse_port=reuse_port or None
    )
