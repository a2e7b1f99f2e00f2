"""A development OIDC issuer on 127.0.0.1, for `bastion demo` and the tests.

    >>> issuer = DevIssuer({"demo-agent": ("deployers",)})
    >>> token = issuer.token("demo-agent")           # an RS256 ID token its JWKS verifies
    >>> issuer.stop()

It serves what a real provider serves to the bastion and to `bastion login`:
the discovery document, the JWKS, a token endpoint (`POST /token` with
`identity=NAME` for the configured demo identities) and the OAuth 2.0 device
authorization grant (RFC 8628: `/device/authorize`, polling `/token`, and
`/device/verify?user_code=...` standing in for the page a human would open).
It listens on 127.0.0.1 only, bounds every table and request body, and signs
with keys it generates in memory. It is not an identity provider: anyone who
can reach its port can mint a token for a demo identity.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwt

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MAX_BODY = 8 * 1024
MAX_PENDING_DEVICES = 64
MAX_TTL = 24 * 3600
_USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"  # no vowels, no look-alikes (RFC 8628 6.1)

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class _DeviceRequest:
    device_code: str
    user_code: str
    expires_at: float
    interval: float
    last_poll: float = 0.0
    identity: str | None = None  # set when approved
    denied: bool = False


class DevIssuer:
    """A dev OIDC issuer: discovery, JWKS, token endpoint and device grant over real HTTP.

    `identities` maps each demo identity to its groups; only those can get a
    token over HTTP. `token()` signs any claims directly, for tests that need
    tokens a real issuer would never send.
    """

    def __init__(
        self,
        identities: Mapping[str, Sequence[str]] | None = None,
        *,
        audience: str = "bastion",
        port: int = 0,
        es256: bool = False,
        default_ttl: int = 300,
        device_interval: float = 5.0,
        device_ttl: int = 600,
        jwks_max_age: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not 0 < default_ttl <= MAX_TTL or not 0 < device_ttl <= MAX_TTL:
            raise ValueError(f"token and device-code lifetimes must be 1-{MAX_TTL} seconds")
        self.identities = {name: tuple(groups) for name, groups in (identities or {}).items()}
        self.audience = audience
        self.default_ttl = default_ttl
        self.device_interval = device_interval
        self.device_ttl = device_ttl
        self.jwks_max_age = jwks_max_age
        self.discovery_overrides: dict[str, Any] = {}  # e.g. {"issuer": "..."} for tests
        self.jwks_fetches = 0
        self.discovery_fetches = 0
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, PrivateKey] = {}
        self._removed: dict[str, PrivateKey] = {}
        self._devices: dict[str, _DeviceRequest] = {}  # device_code -> request
        self.signing_kid = self._add_key(rsa.generate_private_key(65537, 2048))
        self.es256_kid = self._add_key(ec.generate_private_key(ec.SECP256R1())) if es256 else None
        self._server = _Server(("127.0.0.1", port), _handler_for(self))
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="dev-oidc-issuer", daemon=True
        )
        self._thread.start()

    # -- keys ------------------------------------------------------------

    def _add_key(self, key: PrivateKey) -> str:
        kid = secrets.token_hex(8)
        with self._lock:
            self._keys[kid] = key
        return kid

    @property
    def kids(self) -> tuple[str, ...]:
        """The key ids the JWKS currently publishes."""
        with self._lock:
            return tuple(self._keys)

    def rotate_key(self, *, keep_old: bool = False) -> str:
        """Sign with a fresh RSA key from now on; the old one stays in the JWKS only if asked."""
        old = self.signing_kid
        self.signing_kid = self._add_key(rsa.generate_private_key(65537, 2048))
        if not keep_old:
            self.remove_key(old)
        return self.signing_kid

    def remove_key(self, kid: str) -> None:
        """Drop a key from the JWKS (tokens it signed must stop verifying)."""
        with self._lock:
            key = self._keys.pop(kid, None)
            if key is not None:
                self._removed[kid] = key  # still signs, for tests of removed keys

    def public_key(self, kid: str | None = None) -> rsa.RSAPublicKey | ec.EllipticCurvePublicKey:
        with self._lock:
            return self._keys[kid or self.signing_kid].public_key()

    def jwks(self) -> dict[str, Any]:
        with self._lock:
            return {"keys": [_public_jwk(kid, key) for kid, key in self._keys.items()]}

    # -- tokens ----------------------------------------------------------

    def token(
        self,
        identity: str,
        *,
        ttl: int | None = None,
        audience: str | list[str] | None = None,
        extra_claims: Mapping[str, Any] | None = None,
        kid: str | None = None,
        headers: Mapping[str, Any] | None = None,
        alg: str = "RS256",
    ) -> str:
        """A signed ID token for `identity`; `extra_claims` override (None deletes a claim).

        `kid` names the signing key (default: the current RSA key, or the EC
        key for ES256) and may name one already removed from the JWKS.
        """
        now = int(self._clock())
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": audience if audience is not None else self.audience,
            "sub": identity,
            "groups": list(self.identities.get(identity, ())),
            "iat": now,
            "exp": now + (self.default_ttl if ttl is None else ttl),
            "jti": secrets.token_hex(8),
        }
        for name, value in (extra_claims or {}).items():
            if value is None:
                claims.pop(name, None)
            else:
                claims[name] = value
        if kid is None:
            kid = self.es256_kid if alg.startswith("ES") else self.signing_kid
        if kid is None:
            raise ValueError("this DevIssuer has no EC key: construct it with es256=True")
        with self._lock:
            key = self._keys.get(kid) or self._removed.get(kid)
        if key is None:
            raise KeyError(f"this DevIssuer never had a key {kid!r}")
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return jwt.encode(claims, pem, algorithm=alg, headers={"kid": kid, **(headers or {})})

    # -- device authorization grant (RFC 8628) ---------------------------

    def authorize_device(self) -> dict[str, Any]:
        now = self._clock()
        with self._lock:
            for code in [c for c, d in self._devices.items() if d.expires_at <= now]:
                del self._devices[code]
            if len(self._devices) >= MAX_PENDING_DEVICES:
                raise IssuerRefused(429, "slow_down", "too many pending device authorizations")
            raw = "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(8))
            request = _DeviceRequest(
                device_code=secrets.token_urlsafe(32),
                user_code=f"{raw[:4]}-{raw[4:]}",
                expires_at=now + self.device_ttl,
                interval=self.device_interval,
            )
            self._devices[request.device_code] = request
        verify = f"{self.url}/device/verify"
        return {
            "device_code": request.device_code,
            "user_code": request.user_code,
            "verification_uri": verify,
            "verification_uri_complete": f"{verify}?user_code={request.user_code}",
            "expires_in": self.device_ttl,
            "interval": max(1, int(self.device_interval)) if self.device_interval else 0,
        }

    def approve_device(self, user_code: str, identity: str | None = None) -> str:
        """What the human does on the verification page: returns the identity approved."""
        identity = identity or next(iter(self.identities), None)
        if identity not in self.identities:
            raise IssuerRefused(400, "invalid_request", f"unknown demo identity {identity!r}")
        self._find_user_code(user_code).identity = identity
        return identity

    def deny_device(self, user_code: str) -> None:
        self._find_user_code(user_code).denied = True

    def _find_user_code(self, user_code: str) -> _DeviceRequest:
        wanted = user_code.upper().replace("-", "").strip()
        with self._lock:
            for request in self._devices.values():
                if request.user_code.replace("-", "") == wanted:
                    if request.expires_at <= self._clock():
                        break
                    return request
        raise IssuerRefused(400, "invalid_request", "unknown or expired user code")

    def poll_device(self, device_code: str) -> dict[str, Any]:
        """One poll of the token endpoint: an error per RFC 8628 3.5, or the tokens."""
        now = self._clock()
        with self._lock:
            request = self._devices.get(device_code)
            if request is None:
                raise IssuerRefused(400, "invalid_grant", "unknown device code")
            if request.expires_at <= now:
                del self._devices[device_code]
                raise IssuerRefused(400, "expired_token", "the device code expired")
            if request.denied:
                del self._devices[device_code]
                raise IssuerRefused(400, "access_denied", "the user denied the request")
            too_soon = now - request.last_poll < request.interval * 0.8
            request.last_poll = now
            if request.identity is None:
                if too_soon:
                    request.interval += 5
                    raise IssuerRefused(400, "slow_down", "polling faster than the interval")
                raise IssuerRefused(400, "authorization_pending", "not approved yet")
            del self._devices[device_code]  # single use
            identity = request.identity
        return self._token_response(identity)

    def _token_response(self, identity: str) -> dict[str, Any]:
        return {
            "id_token": self.token(identity),
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": self.default_ttl,
        }

    # -- HTTP ------------------------------------------------------------

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks",
            "token_endpoint": f"{self.url}/token",
            "device_authorization_endpoint": f"{self.url}/device/authorize",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
            "grant_types_supported": [DEVICE_GRANT, "urn:bastion:dev:identity"],
            **self.discovery_overrides,
        }

    def _handle(self, method: str, path: str, form: dict[str, str]) -> tuple[int, Any, str]:
        """(status, body, Cache-Control) for one request; body is a dict (JSON) or text."""
        if method == "GET" and path == "/.well-known/openid-configuration":
            self.discovery_fetches += 1
            return 200, self.discovery(), "no-store"
        if method == "GET" and path == "/jwks":
            self.jwks_fetches += 1
            cache = f"max-age={self.jwks_max_age}" if self.jwks_max_age is not None else ""
            return 200, self.jwks(), cache
        if method == "POST" and path == "/device/authorize":
            return 200, self.authorize_device(), "no-store"
        if path == "/device/verify" and method in ("GET", "POST"):
            code = form.get("user_code", "")
            if form.get("deny"):
                self.deny_device(code)
                return 200, "denied\n", "no-store"
            identity = self.approve_device(code, form.get("identity"))
            return 200, f"approved for {identity}\n", "no-store"
        if method == "POST" and path == "/token":
            if form.get("grant_type") == DEVICE_GRANT:
                return 200, self.poll_device(form.get("device_code", "")), "no-store"
            identity = form.get("identity", "")
            if identity not in self.identities:
                raise IssuerRefused(400, "invalid_request", "unknown demo identity")
            return 200, self._token_response(identity), "no-store"
        raise IssuerRefused(404, "not_found", f"no {method} {path}")

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> DevIssuer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class IssuerRefused(Exception):
    """An OAuth error answer (`error` per RFC 6749/8628) and its HTTP status."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class _Server(ThreadingHTTPServer):
    """At most MAX_CONNECTIONS requests at once; errors of a stalled client stay quiet."""

    daemon_threads = True
    MAX_CONNECTIONS = 32

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self._slots = threading.BoundedSemaphore(self.MAX_CONNECTIONS)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


def _handler_for(issuer: DevIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 5  # a stalled client cannot hold a thread forever

        def do_GET(self) -> None:  # noqa: N802
            self._serve("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._serve("POST")

        def _serve(self, method: str) -> None:
            parts = urlsplit(self.path)
            try:
                form = _form(parts.query)
                if method == "POST":
                    length = int(self.headers.get("Content-Length") or 0)
                    if not 0 <= length <= MAX_BODY:
                        raise IssuerRefused(413, "invalid_request", "request body too large")
                    form.update(_form(self.rfile.read(length).decode("utf-8", "replace")))
                status, body, cache = issuer._handle(method, parts.path, form)
            except IssuerRefused as refused:
                status, cache = refused.status, "no-store"
                body = {"error": refused.error, "error_description": refused.description}
            except ValueError:
                status, cache = 400, "no-store"
                body = {"error": "invalid_request", "error_description": "malformed request"}
            if isinstance(body, str):
                data, kind = body.encode(), "text/plain; charset=utf-8"
            else:
                data, kind = json.dumps(body).encode(), "application/json"
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            if cache:
                self.send_header("Cache-Control", cache)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _form(text: str) -> dict[str, str]:
    """A urlencoded form, first value of each field, bounded."""
    fields = parse_qs(text, keep_blank_values=True, max_num_fields=32)
    return {name: values[0][:1024] for name, values in fields.items()}


def _b64(number: int, length: int | None = None) -> str:
    data = number.to_bytes(length or (number.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_jwk(kid: str, key: PrivateKey) -> dict[str, str]:
    if isinstance(key, rsa.RSAPrivateKey):
        numbers = key.public_key().public_numbers()
        return {
            "kty": "RSA",
            "kid": kid,
            "use": "sig",
            "alg": "RS256",
            "n": _b64(numbers.n),
            "e": _b64(numbers.e),
        }
    point = key.public_key().public_numbers()
    return {
        "kty": "EC",
        "kid": kid,
        "use": "sig",
        "alg": "ES256",
        "crv": "P-256",
        "x": _b64(point.x, 32),
        "y": _b64(point.y, 32),
    }
