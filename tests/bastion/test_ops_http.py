"""The operations listener over real sockets: routes, bounds, and failing readiness."""

from __future__ import annotations

import asyncio

import pytest

from bastion import metrics
from bastion.errors import UpstreamError
from bastion.ops_http import MAX_HEAD, OpsServer, Probes
from bastion.ssh.upstream import connect_upstream
from bastion.targets import Target


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return data


async def _serve(checks: dict[str, str | None]):
    async def ready() -> dict[str, str | None]:
        return checks

    async def nothing() -> None:
        return None

    server = await OpsServer(Probes(ready, nothing)).start("127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def test_routes_and_bounds() -> None:
    async def main() -> None:
        server, port = await _serve({"database": None, "recordings": "disk full"})
        try:
            ready = await _exchange(port, b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert ready.startswith(b"HTTP/1.1 503 ") and b'"recordings": "disk full"' in ready
            assert (await _exchange(port, b"GET /healthz HTTP/1.0\r\n\r\n")).endswith(
                b"\r\n\r\nok\n"
            )
            head = await _exchange(port, b"HEAD /metrics HTTP/1.1\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
            assert (await _exchange(port, b"POST /metrics HTTP/1.1\r\n\r\n")).startswith(
                b"HTTP/1.1 405"
            )
            assert (await _exchange(port, b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400")
            huge = b"GET /metrics HTTP/1.1\r\nX: " + b"a" * (MAX_HEAD * 2) + b"\r\n\r\n"
            assert (await _exchange(port, huge)).startswith(b"HTTP/1.1 431")
            body = await _exchange(port, b"GET /metrics HTTP/1.1\r\n\r\n")
            assert b"# TYPE bastion_decisions_total counter" in body
        finally:
            server.close()

    asyncio.run(main())


def test_a_failed_upstream_is_counted_by_reason(tmp_path) -> None:
    from bastion.identity.authorities import Authorities
    from bastion.localsshd import free_port

    keys = tmp_path / "keys"
    Authorities.initialise(keys)
    port = free_port()  # nothing listens there
    import asyncssh

    pinned = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    target = Target("down", "127.0.0.1", port, host_key=pinned)

    def failures() -> float:
        return (
            metrics.REGISTRY.get_sample_value(
                "bastion_upstream_failures_total", {"reason": "unreachable"}
            )
            or 0.0
        )

    before = failures()
    with pytest.raises(UpstreamError) as failed:
        asyncio.run(
            connect_upstream(
                Authorities(keys), target, login="x", identity="i", session_id="s", timeout=5
            )
        )
    assert failed.value.reason == "unreachable" and "cannot reach target down" in str(failed.value)
    assert failures() == before + 1
