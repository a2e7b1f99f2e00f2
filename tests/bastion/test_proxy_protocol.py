"""PROXY protocol v2: strict and bounded, read only from the configured balancers."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.ssh.proxy_protocol import (
    MAX_HEADER,
    SIGNATURE,
    ProxyHeader,
    ProxyHeaderReader,
    ProxyProtocolError,
    build_v2,
    parse_v2,
)


def test_ipv4_and_ipv6_headers_name_the_agent() -> None:
    v4 = build_v2(("198.51.100.4", 51000), ("10.0.0.2", 2222))
    assert parse_v2(v4 + b"SSH-2.0-OpenSSH") == (
        ProxyHeader(("198.51.100.4", 51000), ("10.0.0.2", 2222)),
        len(v4),
    )
    v6 = build_v2(("2001:db8::7", 1234), ("2001:db8::1", 22))
    assert parse_v2(v6)[0].source == ("2001:db8::7", 1234)


def test_a_header_cut_anywhere_asks_for_more() -> None:
    header = build_v2(("198.51.100.4", 51000), ("10.0.0.2", 2222))
    for cut in range(len(header)):
        assert parse_v2(header[:cut]) is None


def test_local_connections_and_tlvs() -> None:
    local = SIGNATURE + bytes([0x20, 0x00]) + b"\x00\x00"
    assert parse_v2(local) == (ProxyHeader(None, None), 16)
    header = build_v2(("192.0.2.1", 1), ("192.0.2.2", 2))
    with_tlv = header[:14] + (12 + 7).to_bytes(2, "big") + header[16:] + b"\x04\x00\x04abcd"
    assert parse_v2(with_tlv)[1] == 16 + 19


@pytest.mark.parametrize(
    "data",
    [
        b"SSH-2.0-OpenSSH_9.2\r\n",  # plain SSH from a balancer that should have sent a header
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n",  # version 1 text: not accepted
        SIGNATURE + bytes([0x11, 0x11]) + b"\x00\x0c" + b"\x00" * 12,  # version 1 in v2 form
        SIGNATURE + bytes([0x22, 0x11]) + b"\x00\x0c" + b"\x00" * 12,  # unknown command
        SIGNATURE + bytes([0x21, 0x12]) + b"\x00\x0c" + b"\x00" * 12,  # UDP
        SIGNATURE + bytes([0x21, 0x31]) + b"\x00\x0c" + b"\x00" * 12,  # unix socket
        SIGNATURE + bytes([0x21, 0x11]) + b"\x00\x04" + b"\x00" * 4,  # too short for IPv4
        SIGNATURE + bytes([0x21, 0x11]) + (MAX_HEADER).to_bytes(2, "big"),  # too long
    ],
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse_v2(data)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_never_crash_the_parser(data: bytes) -> None:
    try:
        result = parse_v2(data)
    except ProxyProtocolError:
        return
    assert result is None or 16 <= result[1] <= len(data)


async def serve(trusted: tuple[str, ...]) -> tuple[asyncio.Server, list[tuple[object, bytes]]]:
    seen: list[tuple[object, bytes]] = []

    class Echo(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.peer = transport.get_extra_info("peername")

        def data_received(self, data: bytes) -> None:
            seen.append((self.peer, data))
            self.transport.write(b"ok:" + data)  # type: ignore[attr-defined]

    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ProxyHeaderReader(Echo, trusted, timeout=0.5), "127.0.0.1", 0
    )
    return server, seen


async def exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(100), 3)
    finally:
        writer.close()


def test_a_trusted_balancer_passes_the_agents_address_and_the_bytes_after_it() -> None:
    async def main() -> None:
        server, seen = await serve(("127.0.0.1",))
        port = server.sockets[0].getsockname()[1]
        header = build_v2(("203.0.113.9", 40001), ("127.0.0.1", port))
        assert await exchange(port, header + b"SSH-2.0-x\r\n") == b"ok:SSH-2.0-x\r\n"
        assert seen == [(("203.0.113.9", 40001), b"SSH-2.0-x\r\n")]
        assert await exchange(port, b"SSH-2.0-no-header\r\n") == b""  # closed
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await asyncio.wait_for(reader.read(10), 3) == b""  # silent: closed at the timeout
        writer.close()
        server.close()

    asyncio.run(main())


def test_other_peers_are_plain_ssh_and_cannot_claim_an_address() -> None:
    async def main() -> None:
        server, seen = await serve(("192.0.2.1",))  # the balancer is elsewhere
        port = server.sockets[0].getsockname()[1]
        header = build_v2(("203.0.113.9", 40001), ("127.0.0.1", port))
        reply = await exchange(port, header)
        assert reply.startswith(b"ok:") and seen[0][0][0] == "127.0.0.1"
        server.close()

    asyncio.run(main())


def test_the_listener_refuses_a_config_with_a_bad_balancer_address(tmp_path) -> None:
    from bastion.config import load_config
    from bastion.errors import ConfigError

    path = tmp_path / "bastion.toml"
    path.write_text('[server]\nproxy_protocol = ["haproxy.local"]\n')
    with pytest.raises(ConfigError, match="not an IP address"):
        load_config(path)
    path.write_text('[server]\nproxy_protocol = ["127.0.0.1", "::1"]\nnode = "b-1"\n')
    config = load_config(path)
    assert config.server.proxy_protocol == ("127.0.0.1", "::1") and config.server.node == "b-1"
