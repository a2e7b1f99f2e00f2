"""A development OIDC issuer for `bastion demo` and tests. NOT FOR PRODUCTION.

It listens on 127.0.0.1 only, signs with an ES256 key made at start, and
hands an ID token to anyone who asks for a named demo identity:

- GET  /.well-known/openid-configuration, GET /jwks
- POST /token  grant_type=urn:bastion:dev-identity&identity=NAME
        (curl -d grant_type=urn:bastion:dev-identity -d identity=demo-agent URL/token)
- POST /device_authorization, then POST /token with the device code grant
  (RFC 8628). Sign-in is a GET of the verification URL with the user code
  (`/device?user_code=ABCD-EFGH&identity=NAME`): opening it in a browser, or
  fetching it, approves the code; `&deny=1` declines it.

There is no authentication at all: it exists so that `bastion login`, token
verification, roles and the device grant run for real in a demo.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jose import jwk, jwt

DEV_GRANT = "urn:bastion:dev-identity"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
MAX_BODY = 16 * 1024
TOKEN_TTL = 3600
DEVICE_TTL = 600


@dataclass
class _DeviceCode:
    user_code: str
    client_id: str
    expires: float
    identity: str | None = None  # set when approved
    denied: bool = False
    last_poll: float = 0.0


@dataclass
class DevIssuer:
    """Start with `DevIssuer.start(identities)`; `url` is the issuer; `stop()` ends it."""

    identities: Mapping[str, list[str]]  # identity -> groups
    audience: str = "bastion"
    url: str = ""
    kid: str = field(default_factory=lambda: secrets.token_hex(4))
    poll_interval: int = 1
    _key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    _codes: dict[str, _DeviceCode] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    @classmethod
    def start(cls, identities: Mapping[str, list[str]], audience: str = "bastion") -> DevIssuer:
        issuer = cls(dict(identities), audience)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(issuer))
        issuer._server = server
        issuer.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return issuer

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.url,
            "jwks_uri": f"{self.url}/jwks",
            "token_endpoint": f"{self.url}/token",
            "device_authorization_endpoint": f"{self.url}/device_authorization",
            "id_token_signing_alg_values_supported": ["ES256"],
            "grant_types_supported": [DEV_GRANT, DEVICE_GRANT],
        }

    def jwks(self) -> dict[str, Any]:
        pem = self._key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        data = jwk.construct(pem.decode(), "ES256").to_dict()
        data.update(kid=self.kid, use="sig", alg="ES256")
        return {"keys": [{k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}]}

    def id_token(self, identity: str) -> str:
        if identity not in self.identities:
            raise KeyError(identity)
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": self.audience,
            "sub": identity,
            "groups": list(self.identities[identity]),
            "iat": now,
            "nbf": now,
            "exp": now + TOKEN_TTL,
            "jti": secrets.token_hex(16),  # the bastion exchanges a token once
        }
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return jwt.encode(claims, pem.decode(), algorithm="ES256", headers={"kid": self.kid})

    # --- the device grant ----------------------------------------------------------

    def device_authorization(self, client_id: str) -> dict[str, Any]:
        device_code = secrets.token_urlsafe(24)
        user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
        with self._lock:
            self._codes[device_code] = _DeviceCode(user_code, client_id, time.time() + DEVICE_TTL)
        return {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": f"{self.url}/device",
            "verification_uri_complete": f"{self.url}/device?user_code={user_code}",
            "expires_in": DEVICE_TTL,
            "interval": self.poll_interval,
        }

    def sign_in(self, user_code: str, identity: str, deny: bool = False) -> bool:
        with self._lock:
            for code in self._codes.values():
                if code.user_code == user_code and code.expires > time.time():
                    code.denied = deny
                    code.identity = None if deny else identity
                    return True
        return False

    def device_token(self, device_code: str) -> tuple[int, dict[str, Any]]:
        with self._lock:
            code = self._codes.get(device_code)
            if code is None:
                return 400, {"error": "invalid_grant"}
            now = time.time()
            if code.expires < now:
                return 400, {"error": "expired_token"}
            if code.denied:
                del self._codes[device_code]
                return 400, {"error": "access_denied"}
            if code.identity is None:
                too_fast = now - code.last_poll < self.poll_interval * 0.5
                code.last_poll = now
                return 400, {"error": "slow_down" if too_fast else "authorization_pending"}
            del self._codes[device_code]
            identity = code.identity
        return 200, {"id_token": self.id_token(identity), "token_type": "Bearer"}


def _handler(issuer: DevIssuer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path == "/.well-known/openid-configuration":
                self._json(200, issuer.discovery())
            elif parts.path == "/jwks":
                self._json(200, issuer.jwks())
            elif parts.path == "/device":
                identity = query.get("identity", next(iter(issuer.identities), ""))
                if identity not in issuer.identities:
                    self._text(400, f"unknown demo identity {identity!r}\n")
                elif issuer.sign_in(query.get("user_code", ""), identity, "deny" in query):
                    self._text(200, f"signed in as {identity}; return to your terminal\n")
                else:
                    self._text(404, "no such code, or it expired\n")
            else:
                self._text(404, "not found\n")

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._json(413, {"error": "invalid_request"})
                return
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            path = urlsplit(self.path).path
            if path == "/device_authorization":
                self._json(200, issuer.device_authorization(form.get("client_id", "")))
            elif path == "/token" and form.get("grant_type") == DEVICE_GRANT:
                self._json(*issuer.device_token(form.get("device_code", "")))
            elif path == "/token" and form.get("grant_type") == DEV_GRANT:
                try:
                    token = issuer.id_token(form.get("identity", ""))
                except KeyError:
                    self._json(
                        400, {"error": "invalid_request", "error_description": "unknown identity"}
                    )
                    return
                self._json(200, {"id_token": token, "token_type": "Bearer"})
            else:
                self._json(400, {"error": "unsupported_grant_type"})

        def _json(self, status: int, body: dict[str, Any]) -> None:
            self._send(status, json.dumps(body).encode(), "application/json")

        def _text(self, status: int, body: str) -> None:
            self._send(status, body.encode(), "text/plain; charset=utf-8")

        def _send(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    return Handler
