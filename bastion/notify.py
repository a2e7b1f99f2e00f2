"""Announcing new review requests: a JSON POST to an optional webhook, retried with backoff.

Never on the data path: `announce` only queues; deliveries run in worker
threads, at most a few at a time, each retried with exponential backoff and
then dropped with a log line. A full queue drops the newest event (logged)
rather than holding memory without bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.error
import urllib.request
from typing import Any

from bastion.errors import ConfigError
from bastion.identity.jwks import https_or_loopback

log = logging.getLogger("bastion.notify")

MAX_QUEUE = 1000
CONCURRENCY = 4


def check_webhook_url(url: str) -> None:
    if not https_or_loopback(url):
        raise ConfigError(f"webhook {url!r} must be https (http only on a loopback address)")


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A webhook that redirects is misconfigured; following it could leave the allowed schemes."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class Webhook:
    def __init__(
        self,
        url: str,
        *,
        attempts: int = 5,
        first_delay: float = 1.0,
        timeout: float = 5.0,
    ) -> None:
        check_webhook_url(url)
        self.url = url
        self.attempts = attempts
        self.first_delay = first_delay
        self.timeout = timeout
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(MAX_QUEUE)
        self.delivered = 0
        self.dropped = 0

    def announce(self, event: dict[str, Any]) -> None:
        try:
            self._queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1
            log.error("webhook queue full; dropped %s", event.get("event"))

    async def run_forever(self) -> None:
        slots = asyncio.Semaphore(CONCURRENCY)
        while True:
            event = await self._queue.get()
            await slots.acquire()
            task = asyncio.ensure_future(self._deliver(event))
            task.add_done_callback(lambda _t: slots.release())

    async def _deliver(self, event: dict[str, Any]) -> None:
        body = json.dumps(event, sort_keys=True).encode()
        delay = self.first_delay
        for attempt in range(1, self.attempts + 1):
            try:
                await asyncio.to_thread(self._post, body)
                self.delivered += 1
                return
            except Exception as exc:  # any failure is retried, then logged and dropped
                if attempt == self.attempts:
                    self.dropped += 1
                    log.error("webhook %s failed %d times, giving up: %s", self.url, attempt, exc)
                    return
                log.warning("webhook %s failed (attempt %d): %s", self.url, attempt, exc)
            await asyncio.sleep(delay)
            delay *= 2

    def post_now(self, event: dict[str, Any]) -> None:
        """Blocking: one delivery attempt, raising on failure (for the CLI)."""
        self._post(json.dumps(event, sort_keys=True).encode())

    def _post(self, body: bytes) -> None:
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "bastion"},
        )
        with _OPENER.open(request, timeout=self.timeout) as response:
            if not 200 <= response.status < 300:
                raise urllib.error.HTTPError(
                    self.url, response.status, "unexpected status", response.headers, None
                )
            response.read(1 << 16)
