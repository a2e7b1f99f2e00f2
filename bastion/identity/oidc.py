"""Verifying OIDC ID tokens with python-jose, without its known pitfalls.

python-jose takes the algorithm from the token header when `algorithms` is
omitted, and public keys in PEM, OpenSSH or DER form pass as HMAC secrets
(SPEC section 12). So: the header is read only to pick `alg` and `kid`; the
algorithm must be on the issuer's allow-list, which may hold asymmetric
algorithms only; the key is the JWKS entry with that `kid` whose `kty` (and
curve) matches the algorithm's family; and `jwt.decode` always gets exactly
that one algorithm.

python-jose also accepts a token without `aud` even when an audience is
given, and accepts `exp`/`iat` as numeric strings; the claim checks after
decoding close both. A token whose lifetime (exp - iat) exceeds 24 hours is
refused: no CI or device-flow ID token lives that long, and one that does is
a long-lived credential in disguise.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError

from bastion.errors import BastionError, ConfigError
from bastion.identity.jwks import IssuerUnavailable, JwksCache, check_issuer_url

MAX_TOKEN_BYTES = 16 * 1024
MAX_GROUPS = 256
MAX_NAME = 256
MAX_LIFETIME = 24 * 3600
_FAMILIES = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
}


class TokenRejected(BastionError):
    """A token was refused; the message is one line, safe for the client and the audit log."""

    exit_code = 6

    def __init__(self, reason: str) -> None:
        super().__init__(_one_line(reason))


@dataclass(frozen=True)
class IssuerConfig:
    name: str
    url: str
    audience: str
    identity_claim: str = "sub"
    groups_claim: str = "groups"
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    jwks_uri: str | None = None
    leeway: int = 30

    def validate(self) -> None:
        """Raise ConfigError unless this issuer can be used safely (see the module docstring)."""
        for key in ("name", "url", "audience", "identity_claim", "groups_claim"):
            value = getattr(self, key)
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"issuer {self.name!r}: {key} must be a non-empty string")
        for key, url in (("url", self.url), ("jwks_uri", self.jwks_uri)):
            if url is None:
                continue
            try:
                check_issuer_url(url)
            except BastionError as exc:
                raise ConfigError(f"issuer {self.name}: {key}: {exc}") from None
        bad = [a for a in self.algorithms if a not in _FAMILIES]
        if bad or not self.algorithms:
            raise ConfigError(
                f"issuer {self.name}: algorithms must be asymmetric ({', '.join(sorted(_FAMILIES))}), not {bad or 'empty'}"
            )
        if not isinstance(self.leeway, int) or not 0 <= self.leeway <= 300:
            raise ConfigError(f"issuer {self.name}: leeway must be 0-300 seconds")


@dataclass(frozen=True)
class VerifiedToken:
    issuer: str  # the IssuerConfig's name
    identity: str
    groups: tuple[str, ...]
    claims: dict[str, Any]
    expires_at: int


class TokenVerifier:
    """Verifies one issuer's ID tokens; `verify` raises TokenRejected and nothing else."""

    def __init__(
        self, issuer: IssuerConfig, jwks: JwksCache, clock: Callable[[], float] = time.time
    ) -> None:
        issuer.validate()
        self.issuer = issuer
        self.jwks = jwks
        self._clock = clock

    def verify(self, token: str) -> VerifiedToken:
        """Blocking: it may fetch the issuer's keys (bounded by a 5 s timeout)."""
        try:
            return self._verify(token)
        except TokenRejected:
            raise
        except IssuerUnavailable as exc:
            raise TokenRejected(f"cannot check the token: {exc}") from None
        except Exception as exc:  # fail closed on anything unforeseen
            raise TokenRejected(f"token rejected ({type(exc).__name__})") from None

    def _verify(self, token: str) -> VerifiedToken:
        if not isinstance(token, str) or len(token) > MAX_TOKEN_BYTES:
            raise TokenRejected(f"token larger than {MAX_TOKEN_BYTES} bytes")
        if len(token.encode("utf-8", errors="replace")) > MAX_TOKEN_BYTES:
            raise TokenRejected(f"token larger than {MAX_TOKEN_BYTES} bytes")
        token = token.strip()
        header = _header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.issuer.algorithms or alg not in _FAMILIES:
            raise TokenRejected(f"token algorithm {str(alg)[:20]!r} is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise TokenRejected("token has no key id (kid)")
        key = self._key(kid, alg)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.issuer.audience,
                issuer=self.issuer.url,
                options={"leeway": self.issuer.leeway, "verify_at_hash": False},
            )
        except ExpiredSignatureError:
            raise TokenRejected("token expired") from None
        except JWTClaimsError as exc:
            raise TokenRejected(self._claims_reason(exc)) from None
        except JOSEError as exc:
            raise TokenRejected(f"token signature or format rejected: {_first_line(exc)}") from None
        if not isinstance(claims, dict):
            raise TokenRejected("token payload is not a JSON object")
        self._check_times(claims)
        return self._identity(claims)

    def _key(self, kid: str, alg: str) -> dict[str, Any]:
        """The JWKS entry with this kid whose key type (and curve) fits the algorithm."""
        candidates = self.jwks.keys_for(kid)
        if not candidates:
            raise TokenRejected(f"unknown signing key {kid[:64]!r}")
        kty, curve = _FAMILIES[alg]
        fitting = [
            k
            for k in candidates
            if k.get("kty") == kty and (curve is None or k.get("crv") == curve)
        ]
        if not fitting:
            raise TokenRejected(f"key {kid[:64]!r} does not fit algorithm {alg}")
        fitting = [k for k in fitting if k.get("alg") in (None, alg)]
        if not fitting:
            raise TokenRejected(f"key {kid[:64]!r} is not for {alg}")
        return fitting[0]

    def _claims_reason(self, exc: JWTClaimsError) -> str:
        text = _first_line(exc)
        known = {
            "Invalid issuer": f"token issuer is not {self.issuer.url}",
            "Invalid audience": f"token audience does not include {self.issuer.audience!r}",
            "The token is not yet valid (nbf)": "token not valid yet (nbf)",
        }
        return known.get(text, f"token claims rejected: {text}")

    def _check_times(self, claims: dict[str, Any]) -> None:
        """What python-jose lets through: missing or non-numeric exp/iat/nbf, a missing aud."""
        now, leeway = self._clock(), self.issuer.leeway
        if "aud" not in claims:
            raise TokenRejected("token has no audience (aud)")
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
        if not _is_time(exp):
            raise TokenRejected("token has no numeric expiry (exp)")
        if not _is_time(iat):
            raise TokenRejected("token has no numeric issue time (iat)")
        if nbf is not None and not _is_time(nbf):
            raise TokenRejected("token not-before (nbf) is not a number")
        if exp <= now - leeway:
            raise TokenRejected("token expired")
        if iat > now + leeway:
            raise TokenRejected("token issued in the future (iat)")
        if nbf is not None and nbf > now + leeway:
            raise TokenRejected("token not valid yet (nbf)")
        if exp - iat > MAX_LIFETIME:
            raise TokenRejected("token lifetime longer than 24h")

    def _identity(self, claims: dict[str, Any]) -> VerifiedToken:
        identity = claims.get(self.issuer.identity_claim)
        if not _is_name(identity):
            raise TokenRejected(f"claim {self.issuer.identity_claim!r} is not a usable identity")
        groups = claims.get(self.issuer.groups_claim, [])
        if isinstance(groups, str):
            groups = [groups]
        if (
            not isinstance(groups, list)
            or len(groups) > MAX_GROUPS
            or not all(_is_name(g) for g in groups)
        ):
            raise TokenRejected(f"claim {self.issuer.groups_claim!r} is not a list of group names")
        return VerifiedToken(
            self.issuer.name, identity, tuple(groups), claims, int(claims["exp"])
        )


def parse_issuers(items: Any, source: str, lines: Sequence[int] = ()) -> list[IssuerConfig]:
    """`[[issuer]]` tables -> validated IssuerConfigs; each error names the file and line.

    `lines[i]` is the line of the i-th `[[issuer]]` header (tomllib keeps no
    positions; config.py finds them by scanning the text).
    """
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError(f"{source}: `issuer` must be an array of tables ([[issuer]])")
    issuers: list[IssuerConfig] = []
    for index, item in enumerate(items):
        where = f"{source}:{lines[index]}" if index < len(lines) else source
        issuer = _issuer(item, where)
        if any(i.name == issuer.name for i in issuers):
            raise ConfigError(f"{where}: duplicate issuer name {issuer.name!r}")
        if any(i.url.rstrip("/") == issuer.url.rstrip("/") for i in issuers):
            raise ConfigError(f"{where}: issuer url {issuer.url!r} appears twice")
        issuers.append(issuer)
    return issuers


_ISSUER_KEYS = (
    "name",
    "url",
    "audience",
    "identity_claim",
    "groups_claim",
    "algorithms",
    "jwks_uri",
    "leeway",
)


def _issuer(item: Any, where: str) -> IssuerConfig:
    if not isinstance(item, dict):
        raise ConfigError(f"{where}: each [[issuer]] must be a table")
    unknown = sorted(set(item) - set(_ISSUER_KEYS))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {unknown} in [[issuer]] (known: {', '.join(_ISSUER_KEYS)})"
        )
    for key in ("name", "url", "audience"):
        if key not in item:
            raise ConfigError(f"{where}: [[issuer]] needs {key}")
    for key in ("name", "url", "audience", "identity_claim", "groups_claim", "jwks_uri"):
        if key in item and not isinstance(item[key], str):
            raise ConfigError(f"{where}: [[issuer]] {key} must be a string")
    algorithms = item.get("algorithms", ["RS256", "ES256"])
    if not isinstance(algorithms, list) or not all(isinstance(a, str) for a in algorithms):
        raise ConfigError(f'{where}: [[issuer]] algorithms must be a list such as ["RS256"]')
    leeway = item.get("leeway", 30)
    if not isinstance(leeway, int) or isinstance(leeway, bool):
        raise ConfigError(f"{where}: [[issuer]] leeway must be a whole number of seconds")
    issuer = IssuerConfig(
        name=item["name"],
        url=item["url"],
        audience=item["audience"],
        identity_claim=item.get("identity_claim", "sub"),
        groups_claim=item.get("groups_claim", "groups"),
        algorithms=tuple(algorithms),
        jwks_uri=item.get("jwks_uri"),
        leeway=leeway,
    )
    try:
        issuer.validate()
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return issuer


def _is_time(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


def _is_name(value: Any) -> bool:
    """A non-empty printable string of bounded length: safe in certificates and logs."""
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME and value.isprintable()


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenRejected("not a signed JWT (expected three dot-separated parts)")
    try:
        raw = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header = json.loads(raw)
    except (ValueError, RecursionError):
        raise TokenRejected("token header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise TokenRejected("token header is not a JSON object")
    if header.get("crit") is not None:
        raise TokenRejected("token header has critical extensions")
    return header


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


def _one_line(text: str) -> str:
    """Control characters out, length bounded: the reason goes to a client and a log line."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in str(text))
    return " ".join(cleaned.split())[:300] or "token rejected"
