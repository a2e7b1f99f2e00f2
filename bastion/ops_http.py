"""The operations listener: /metrics, /healthz and /readyz over plain HTTP.

A few dozen lines of asyncio instead of prometheus_client's threaded server:
the readiness checks need the bastion's own objects (its store, its keys),
and a scrape must never hold the event loop for long. Rendering the registry
takes well under a millisecond (bench/metrics_scrape.py measures it), the
checks run their blocking parts in threads, and every request is bounded:
8 KiB of request head, 5 seconds to send it, 64 connections at once, GET
and HEAD only, one request per connection.

- /healthz: 200 while the process serves its event loop (liveness);
- /readyz: 200 when every readiness check passes, else 503 with the reasons;
- /metrics: the Prometheus text format.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bastion import metrics

log = logging.getLogger("bastion.ops")

MAX_HEAD = 8 * 1024
READ_TIMEOUT = 5.0
MAX_CONNECTIONS = 64
RENDER_EVERY = 1.0  # seconds: scrapes closer together than this share one rendering


@dataclass(frozen=True)
class Probes:
    """What the listener asks the running bastion."""

    # check name -> None when it passes, else a one-line problem
    ready: Callable[[], Awaitable[dict[str, str | None]]]
    # refresh gauges read from elsewhere (pending requests) just before a scrape
    before_scrape: Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_REASONS |= {431: "Request Header Fields Too Large", 503: "Service Unavailable"}


class OpsServer:
    def __init__(self, probes: Probes) -> None:
        self.probes = probes
        self._open = 0
        self._rendered: tuple[float, bytes] = (float("-inf"), b"")
        self._rendering = asyncio.Lock()

    async def start(self, host: str, port: int) -> asyncio.Server:
        return await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open += 1
        try:
            if self._open > MAX_CONNECTIONS:
                response, head_only = Response(503, b"too many connections\n"), False
            else:
                response, head_only = await self._answer(reader)
            writer.write(_encode(response, head_only))
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except Exception:  # one bad request never stops the listener
            log.exception("operations listener: request failed")
        finally:
            self._open -= 1
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader) -> tuple[Response, bool]:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT)
        except asyncio.LimitOverrunError:
            return Response(431, b"request head too large\n"), False
        except asyncio.IncompleteReadError as exc:
            head = exc.partial
            if not head.endswith(b"\n"):
                return Response(400, b"incomplete request\n"), False
        parts = head.split(b"\r\n", 1)[0].decode("latin-1").split(" ")
        if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            return Response(400, b"malformed request line\n"), False
        method, target, _ = parts
        if method not in ("GET", "HEAD"):
            return Response(405, b"only GET and HEAD\n"), False
        return await self.route(target.split("?", 1)[0]), method == "HEAD"

    async def route(self, path: str) -> Response:
        if path == "/healthz":
            return Response(200, b"ok\n")
        if path == "/readyz":
            checks = await self.probes.ready()
            failed = {name: problem for name, problem in checks.items() if problem}
            body = json.dumps(
                {"ready": not failed, "checks": {k: v or "ok" for k, v in checks.items()}},
                sort_keys=True,
            )
            return Response(503 if failed else 200, body.encode() + b"\n", "application/json")
        if path == "/metrics":
            try:
                await self.probes.before_scrape()
            except Exception:  # stale gauges rather than no metrics
                log.exception("refreshing metrics before a scrape failed")
            return Response(200, await self._render(), metrics.CONTENT_TYPE)
        return Response(404, b"not found: try /metrics, /healthz or /readyz\n")

    async def _render(self) -> bytes:
        """The exposition, rendered in a thread at most once per RENDER_EVERY.

        Rendering is pure Python (about 14 ms for a busy registry, measured in
        bench/metrics_scrape.py): inline it would stall every session that long
        per scrape; in a thread the loop only shares the GIL with it, and a
        client scraping in a tight loop gets the same body for a second.
        """
        async with self._rendering:
            stamp, body = self._rendered
            now = time.monotonic()
            if now - stamp >= RENDER_EVERY:
                body = await asyncio.to_thread(metrics.render)
                self._rendered = (time.monotonic(), body)
            return body


def _encode(response: Response, head_only: bool) -> bytes:
    head = (
        f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Error')}\r\n"
        f"Content-Type: {response.content_type}\r\n"
        f"Content-Length: {len(response.body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    ).encode("latin-1")
    return head if head_only else head + response.body
