"""An OIDC issuer's signing keys: discovery, JWKS fetching and caching.

Keys are fetched from the issuer's discovery document
(`<issuer>/.well-known/openid-configuration` -> `jwks_uri`) over HTTPS (plain
HTTP only for loopback issuers), cached until they expire, and refetched on
an unknown `kid` at most once a minute, so a flood of bad tokens cannot turn
the bastion into a load generator against the issuer.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bastion.errors import BastionError

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


def https_or_loopback(url: str) -> bool:
    """The rule for every URL the bastion talks to: https, or plain http on loopback only."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and is_loopback_url(url)


def check_issuer_url(url: str) -> None:
    if not https_or_loopback(url):
        raise BastionError(f"issuer URL {url!r} must be https (http only on a loopback address)")


def http_fetch(url: str) -> tuple[bytes, str | None]:
    """GET with a timeout and a size limit; redirects stay on the same scheme rules."""
    check_issuer_url(url)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310
            check_issuer_url(response.geturl())
            body = response.read(MAX_DOCUMENT_BYTES + 1)
            cache_control = response.headers.get("Cache-Control")
    except (OSError, ValueError) as exc:
        raise IssuerUnavailable(f"cannot fetch {url}: {exc}") from None
    if len(body) > MAX_DOCUMENT_BYTES:
        raise IssuerUnavailable(f"{url} returned more than {MAX_DOCUMENT_BYTES} bytes")
    return body, cache_control


class JwksCache:
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
        self._keys: dict[str, dict[str, Any]] = {}
        self._expires = 0.0
        self._last_fetch = -REFETCH_INTERVAL

    def key(self, kid: str) -> dict[str, Any] | None:
        """The JWK with this kid, refreshing when expired or (rate-limited) when unknown."""
        now = self._clock()
        if now >= self._expires:
            self.refresh()
        elif kid not in self._keys and now - self._last_fetch >= REFETCH_INTERVAL:
            self.refresh()
        return self._keys.get(kid)

    def refresh(self) -> None:
        self._last_fetch = self._clock()
        jwks_uri = self._configured_jwks_uri or self._discover()
        body, cache_control = self._fetch(jwks_uri)
        document = _json(body, jwks_uri)
        keys = document.get("keys")
        if not isinstance(keys, list) or len(keys) > MAX_KEYS:
            raise IssuerUnavailable(f"{jwks_uri}: `keys` must be a list of at most {MAX_KEYS} keys")
        found: dict[str, dict[str, Any]] = {}
        for key in keys:
            if (
                isinstance(key, dict)
                and isinstance(key.get("kid"), str)
                and isinstance(key.get("kty"), str)
            ):
                if key.get("use", "sig") == "sig":
                    found[key["kid"]] = key
        self._keys = found
        self._expires = self._clock() + _ttl(cache_control)

    def _discover(self) -> str:
        url = f"{self.issuer_url}/.well-known/openid-configuration"
        body, _ = self._fetch(url)
        document = _json(body, url)
        if document.get("issuer", "").rstrip("/") != self.issuer_url:
            raise IssuerUnavailable(
                f"{url}: its issuer {document.get('issuer')!r} is not {self.issuer_url!r}"
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise IssuerUnavailable(f"{url}: no jwks_uri")
        check_issuer_url(jwks_uri)
        return jwks_uri


def _json(body: bytes, url: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise IssuerUnavailable(f"{url} did not return JSON") from None
    if not isinstance(data, dict):
        raise IssuerUnavailable(f"{url} did not return a JSON object")
    return data


def _ttl(cache_control: str | None) -> float:
    match = re.search(r"max-age=(\d+)", cache_control or "")
    if not match:
        return DEFAULT_TTL
    return min(MAX_TTL, max(MIN_TTL, float(match.group(1))))
