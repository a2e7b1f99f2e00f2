"""PROXY protocol v2 from a TCP balancer (haproxy `send-proxy-v2`): the agent's real address.

Behind a balancer every connection comes from the balancer; the header it
sends first names the agent. It is read only on connections from the
addresses in `[server] proxy_protocol`, and there it is required: a
connection from a balancer without a valid header is closed (a spoofed
address is worse than none). Connections from anywhere else are SSH from
their first byte, so nobody else can claim an address.

    >>> header = build_v2(("192.0.2.7", 40000), ("10.0.0.1", 2222))
    >>> parse_v2(header + b"SSH-2.0-x\\r\\n")
    (ProxyHeader(source=('192.0.2.7', 40000), destination=('10.0.0.1', 2222)), 28)

Bounded: the header is at most MAX_HEADER bytes and must arrive within
HEADER_TIMEOUT seconds.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import struct
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("bastion.proxy")

SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
MAX_HEADER = 16 + 1024  # the fixed part, then addresses and TLVs
HEADER_TIMEOUT = 5.0
_FAMILIES = {0x11: (socket.AF_INET, 4), 0x21: (socket.AF_INET6, 16)}


class ProxyProtocolError(ValueError):
    """The bytes are not a PROXY v2 header this bastion accepts."""


@dataclass(frozen=True)
class ProxyHeader:
    source: tuple[str, int] | None  # None: a LOCAL connection (the balancer's own check)
    destination: tuple[str, int] | None


def parse_v2(data: bytes) -> tuple[ProxyHeader, int] | None:
    """(header, bytes it took), or None while more bytes are needed."""
    if len(data) < 16:
        if not SIGNATURE.startswith(data[:12]):
            raise ProxyProtocolError("not a PROXY protocol v2 header")
        return None
    if data[:12] != SIGNATURE:
        raise ProxyProtocolError("not a PROXY protocol v2 header")
    version, command = data[12] >> 4, data[12] & 0x0F
    if version != 2 or command not in (0, 1):
        raise ProxyProtocolError(f"unsupported PROXY version {version} command {command}")
    family = data[13]
    (length,) = struct.unpack("!H", data[14:16])
    if 16 + length > MAX_HEADER:
        raise ProxyProtocolError(f"PROXY header of {16 + length} bytes is too long")
    if len(data) < 16 + length:
        return None
    body = data[16 : 16 + length]
    if command == 0:  # LOCAL: addresses (if any) are to be ignored
        return ProxyHeader(None, None), 16 + length
    if family not in _FAMILIES:
        raise ProxyProtocolError(f"unsupported PROXY address family 0x{family:02x} (TCP only)")
    af, size = _FAMILIES[family]
    if length < 2 * size + 4:
        raise ProxyProtocolError("PROXY header too short for its addresses")
    source = socket.inet_ntop(af, body[:size])
    destination = socket.inet_ntop(af, body[size : 2 * size])
    sport, dport = struct.unpack("!HH", body[2 * size : 2 * size + 4])
    return ProxyHeader((source, sport), (destination, dport)), 16 + length


def build_v2(source: tuple[str, int], destination: tuple[str, int]) -> bytes:
    """A PROXY v2 header (for tests and the bench, as haproxy sends it)."""
    af = socket.AF_INET6 if ":" in source[0] else socket.AF_INET
    family = 0x21 if af == socket.AF_INET6 else 0x11
    body = (
        socket.inet_pton(af, source[0])
        + socket.inet_pton(af, destination[0])
        + struct.pack("!HH", source[1], destination[1])
    )
    return SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


class _PeerTransport(asyncio.Transport):
    """The real transport, except that `peername` is the agent's address from the header."""

    def __init__(self, inner: asyncio.Transport, peername: tuple[str, int]) -> None:
        super().__init__()
        self._inner = inner
        self._peername = peername

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._peername
        return self._inner.get_extra_info(name, default)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    # asyncio.Transport defines these, so __getattr__ would not reach them
    def write(self, data: Any) -> None:
        self._inner.write(data)

    def writelines(self, data: Any) -> None:
        self._inner.writelines(data)

    def write_eof(self) -> None:
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()


class ProxyHeaderReader(asyncio.Protocol):
    """Reads the header on a balancer's connection, then hands the connection to SSH."""

    def __init__(
        self,
        make_protocol: Callable[[], asyncio.Protocol],
        trusted: Collection[str],
        timeout: float = HEADER_TIMEOUT,
    ) -> None:
        self._make_protocol = make_protocol
        self._trusted = trusted
        self._timeout = timeout
        self._buffer = b""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        if not peer or _normal(peer[0]) not in self._trusted:
            self._hand_over(transport, None, b"")  # not from a balancer: plain SSH
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._timeout, self._refuse, "no PROXY header in time")

    def data_received(self, data: bytes) -> None:
        assert self._transport is not None
        self._buffer += data
        try:
            parsed = parse_v2(self._buffer[:MAX_HEADER])
        except ProxyProtocolError as exc:
            self._refuse(str(exc))
            return
        if parsed is None:
            if len(self._buffer) >= MAX_HEADER:
                self._refuse("PROXY header too long")
            return
        header, used = parsed
        self._hand_over(self._transport, header.source, self._buffer[used:])

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _hand_over(
        self, transport: asyncio.Transport, source: tuple[str, int] | None, rest: bytes
    ) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        protocol = self._make_protocol()
        shown: asyncio.Transport = (
            transport if source is None else _PeerTransport(transport, source)
        )
        transport.set_protocol(protocol)
        protocol.connection_made(shown)
        if rest:
            protocol.data_received(rest)

    def _refuse(self, why: str) -> None:
        assert self._transport is not None
        peer = self._transport.get_extra_info("peername")
        log.warning("closing connection from balancer %s: %s", peer, why)
        self._transport.abort()


def _normal(address: str) -> str:
    """IPv4 seen through an IPv6 socket (::ffff:a.b.c.d) as plain IPv4."""
    return address[7:] if address.startswith("::ffff:") else address
