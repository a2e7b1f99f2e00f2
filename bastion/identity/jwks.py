"""An OIDC issuer's signing keys: discovery, JWKS fetching and caching.

Keys are fetched from the issuer's discovery document
(`<issuer>/.well-known/openid-configuration` -> `jwks_uri`) over HTTPS (plain
HTTP only for loopback issuers), cached until they expire, and refetched on
an unknown `kid` at most once a minute, so a flood of bad tokens cannot turn
the bastion into a load generator against the issuer.
"""

from __future__ import annotations

import http.client
import ipaddress
import threading
import json
import re
import time
import urllib.request
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from bastion.errors import BastionError

if TYPE_CHECKING:
    from bastion.identity.oidc import IssuerConfig

MAX_DOCUMENT_BYTES = 256 * 1024
MAX_KEYS = 64
FETCH_TIMEOUT = 5.0
DEFAULT_TTL = 600.0
MIN_TTL, MAX_TTL = 60.0, 86400.0
REFETCH_INTERVAL = 60.0

Fetch = Callable[[str], tuple[bytes, str | None]]  # url -> (body, Cache-Control header)


class IssuerUnavailable(BastionError):
    """The issuer's discovery document or key set could not be fetched or read."""


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_issuer_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback_url(url):
        return
    raise BastionError(f"issuer URL {url!r} must be https (http only on a loopback address)")


class _CheckedRedirect(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to a URL that passes the same https-or-loopback rule."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        try:
            check_issuer_url(newurl)
        except BastionError:
            raise IssuerUnavailable(f"{req.full_url} redirects to a refused URL") from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_CheckedRedirect)


def http_fetch(url: str) -> tuple[bytes, str | None]:
    """GET with a timeout and a size limit; redirects must obey the https-or-loopback rule."""
    check_issuer_url(url)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with _OPENER.open(request, timeout=FETCH_TIMEOUT) as response:
            check_issuer_url(response.geturl())
            body = response.read(MAX_DOCUMENT_BYTES + 1)
            cache_control = response.headers.get("Cache-Control")
    except IssuerUnavailable:
        raise
    except (OSError, ValueError, http.client.HTTPException) as exc:
        raise IssuerUnavailable(f"cannot fetch {url}: {_one_line(exc)}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise IssuerUnavailable(f"{url} returned more than {MAX_DOCUMENT_BYTES} bytes")
    return body, cache_control


def _one_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


class JwksCache:
    """One issuer's signing keys, fetched lazily and shared by every verification.

    Thread-safe: token verification runs in worker threads, and one refresh
    at a time is enough. A failed fetch is remembered for REFETCH_INTERVAL,
    so an issuer that is down is not asked again for every token.
    """

    def __init__(
        self,
        issuer_url: str,
        *,
        jwks_uri: str | None = None,
        fetch: Fetch = http_fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        check_issuer_url(issuer_url)
        if jwks_uri is not None:
            check_issuer_url(jwks_uri)
        self.issuer_url = issuer_url.rstrip("/")
        self._configured_jwks_uri = jwks_uri
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, list[dict[str, Any]]] = {}
        self._expires = 0.0
        self._last_fetch = -REFETCH_INTERVAL
        self._failure: IssuerUnavailable | None = None

    @classmethod
    def for_issuer(
        cls,
        issuer: IssuerConfig,
        *,
        fetch: Fetch = http_fetch,
        clock: Callable[[], float] = time.monotonic,
    ) -> JwksCache:
        return cls(issuer.url, jwks_uri=issuer.jwks_uri, fetch=fetch, clock=clock)

    def key(self, kid: str) -> dict[str, Any] | None:
        """The (first) JWK with this kid, refreshing when expired or (rate-limited) when unknown."""
        keys = self.keys_for(kid)
        return keys[0] if keys else None

    def keys_for(self, kid: str) -> list[dict[str, Any]]:
        """Every JWK with this kid (an issuer may reuse a kid across key types)."""
        with self._lock:
            now = self._clock()
            recently = now - self._last_fetch < REFETCH_INTERVAL
            if now >= self._expires or kid not in self._keys:
                if not recently:
                    self._refresh_locked()
                elif now >= self._expires and self._failure is not None:
                    raise self._failure
            return list(self._keys.get(kid, ()))

    def refresh(self) -> None:
        """Fetch the key set now (not rate-limited: for startup checks and tests)."""
        with self._lock:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        self._last_fetch = self._clock()
        try:
            self._keys = self._fetch_keys()
        except IssuerUnavailable as exc:
            self._failure = exc
            raise
        self._failure = None

    def _fetch_keys(self) -> dict[str, list[dict[str, Any]]]:
        jwks_uri = self._configured_jwks_uri or self._discover()
        body, cache_control = self._fetch(jwks_uri)
        document = _json(body, jwks_uri)
        keys = document.get("keys")
        if not isinstance(keys, list) or len(keys) > MAX_KEYS:
            raise IssuerUnavailable(f"{jwks_uri}: `keys` must be a list of at most {MAX_KEYS} keys")
        found: dict[str, list[dict[str, Any]]] = {}
        for key in keys:
            if (
                isinstance(key, dict)
                and isinstance(key.get("kid"), str)
                and isinstance(key.get("kty"), str)
                and key.get("use", "sig") == "sig"
            ):
                found.setdefault(key["kid"], []).append(key)
        self._expires = self._clock() + _ttl(cache_control)
        return found

    def _discover(self) -> str:
        url = f"{self.issuer_url}/.well-known/openid-configuration"
        body, _ = self._fetch(url)
        document = _json(body, url)
        claimed = document.get("issuer")
        if not isinstance(claimed, str) or claimed.rstrip("/") != self.issuer_url:
            raise IssuerUnavailable(
                f"{url}: its issuer {str(claimed)[:100]!r} is not {self.issuer_url!r}"
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise IssuerUnavailable(f"{url}: no jwks_uri")
        try:
            check_issuer_url(jwks_uri)
        except BastionError as exc:
            raise IssuerUnavailable(f"{url}: jwks_uri refused: {exc}") from None
        return jwks_uri


def _json(body: bytes, url: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise IssuerUnavailable(f"{url} did not return JSON") from None
    if not isinstance(data, dict):
        raise IssuerUnavailable(f"{url} did not return a JSON object")
    return data


def _ttl(cache_control: str | None) -> float:
    cache_control = (cache_control or "").lower()
    if "no-store" in cache_control or "no-cache" in cache_control:
        return MIN_TTL
    match = re.search(r"(?:^|[,\s])max-age=(\d{1,10})", cache_control)
    if not match:
        return DEFAULT_TTL
    return min(MAX_TTL, max(MIN_TTL, float(match.group(1))))
