"""Verifying OIDC ID tokens with python-jose, without its known pitfalls.

python-jose takes the algorithm from the token header when `algorithms` is
omitted, and public keys in PEM, OpenSSH or DER form pass as HMAC secrets
(SPEC section 12). So: the header is read only to pick `alg` and `kid`; the
algorithm must be on the issuer's allow-list, which may hold asymmetric
algorithms only; the key is the JWKS entry with that `kid` whose `kty` (and
curve) matches the algorithm's family; and `jwt.decode` always gets exactly
that one algorithm.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from jose import jwt
from jose.exceptions import ExpiredSignatureError, JOSEError, JWTClaimsError

from bastion.errors import BastionError
from bastion.identity.claims import ClaimsRefused, check_claims_shape, replay_key, token_id
from bastion.identity.jwks import IssuerUnavailable, JwksCache, check_issuer_url
from bastion.identity.names import (
    GROUP_RULE,
    MAX_GROUPS,
    IdentityNameRefused,
    canonical_identity,
    is_group_name,
    quoted,
)

MAX_TOKEN_BYTES = 16 * 1024
REPLAY_MODES = ("once", "allow")
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
    replay: str = "once"  # once: a token (its jti, else its hash) is exchanged once; allow

    def validate(self) -> None:
        check_issuer_url(self.url)
        bad = [a for a in self.algorithms if a not in _FAMILIES]
        if bad or not self.algorithms:
            raise BastionError(
                f"issuer {self.name}: algorithms must be asymmetric ({', '.join(sorted(_FAMILIES))}), not {bad or 'empty'}"
            )
        if not 0 <= self.leeway <= 300:
            raise BastionError(f"issuer {self.name}: leeway must be 0-300 seconds")
        if self.replay not in REPLAY_MODES:
            raise BastionError(
                f'issuer {self.name}: replay must be "once" or "allow", not {self.replay!r}'
            )


@dataclass(frozen=True)
class VerifiedToken:
    issuer: str
    identity: str  # canonical (bastion/identity/names.py)
    groups: tuple[str, ...]
    claims: dict[str, Any]
    expires_at: int
    token_id: str | None = None  # the `jti` claim
    replay_key: str = ""  # what the store keeps to refuse a second exchange (claims.py)
    replay: str = "once"  # the issuer's replay mode


class TokenVerifier:
    def __init__(
        self, issuer: IssuerConfig, jwks: JwksCache, clock: Callable[[], float] = time.time
    ) -> None:
        issuer.validate()
        self.issuer = issuer
        self.jwks = jwks
        self._clock = clock

    def verify(self, token: str) -> VerifiedToken:
        try:
            return self._verify(token)
        except TokenRejected:
            raise
        except IssuerUnavailable as exc:
            raise TokenRejected(f"cannot check the token: {exc}") from None
        except Exception as exc:  # fail closed on anything unforeseen
            raise TokenRejected(f"token rejected ({type(exc).__name__})") from None

    def _verify(self, token: str) -> VerifiedToken:
        if (
            not isinstance(token, str)
            or len(token.encode("utf-8", errors="replace")) > MAX_TOKEN_BYTES
        ):
            raise TokenRejected(f"token larger than {MAX_TOKEN_BYTES} bytes")
        token = token.strip()
        header = _header(token)
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.issuer.algorithms or alg not in _FAMILIES:
            raise TokenRejected(f"token algorithm {str(alg)[:20]!r} is not allowed")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise TokenRejected("token has no key id (kid)")
        key = self.jwks.key(kid)
        if key is None:
            raise TokenRejected(f"unknown signing key {kid[:64]!r}")
        kty, curve = _FAMILIES[alg]
        if key.get("kty") != kty or (curve is not None and key.get("crv") != curve):
            raise TokenRejected(f"key {kid[:64]!r} does not fit algorithm {alg}")
        if key.get("alg") not in (None, alg):
            raise TokenRejected(f"key {kid[:64]!r} is for {key.get('alg')}, not {alg}")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.issuer.audience,
                issuer=self.issuer.url,
                options={
                    "leeway": self.issuer.leeway,
                    "require_exp": True,
                    "require_iat": True,
                    "require_sub": False,
                },
            )
        except ExpiredSignatureError:
            raise TokenRejected("token expired") from None
        except JWTClaimsError as exc:
            raise TokenRejected(f"token claims rejected: {_first_line(exc)}") from None
        except JOSEError as exc:
            raise TokenRejected(f"token signature or format rejected: {_first_line(exc)}") from None
        try:
            check_claims_shape(claims)
            jti = token_id(claims)
        except ClaimsRefused as exc:
            raise TokenRejected(str(exc)) from None
        verified = self._identity(claims)
        return replace(
            verified,
            token_id=jti,
            replay_key=replay_key(self.issuer.url, jti, token),
            replay=self.issuer.replay,
        )

    def _identity(self, claims: dict[str, Any]) -> VerifiedToken:
        # python-jose 3.5.0 lets a token with no `aud` through even when an audience is given.
        audience = claims.get("aud")
        audiences = [audience] if isinstance(audience, str) else audience
        if not isinstance(audiences, list) or self.issuer.audience not in audiences:
            raise TokenRejected(
                f"token claims rejected: audience does not include {self.issuer.audience!r}"
            )
        now = self._clock()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, (int, float)) or iat > now + self.issuer.leeway:
            raise TokenRejected("token issued in the future")
        if not isinstance(exp, (int, float)) or exp - iat > MAX_LIFETIME:
            raise TokenRejected("token lifetime longer than 24h")
        nbf = claims.get("nbf")
        if nbf is not None and (
            not isinstance(nbf, (int, float)) or nbf > now + self.issuer.leeway
        ):
            raise TokenRejected("token not valid yet")
        identity = self._identity_claim(claims)
        groups = self._groups_claim(claims)
        return VerifiedToken(self.issuer.name, identity, groups, claims, int(exp))

    def _groups_claim(self, claims: dict[str, Any]) -> tuple[str, ...]:
        name = self.issuer.groups_claim
        groups = claims.get(name, [])
        if isinstance(groups, str):
            groups = [groups]
        if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
            raise TokenRejected(f"claim {name!r} is not a list of at most {MAX_GROUPS} groups")
        for group in groups:
            if not is_group_name(group):
                shown = quoted(group if isinstance(group, str) else repr(group), limit=64)
                raise TokenRejected(f"claim {name!r}: {shown} is not a group name ({GROUP_RULE})")
        return tuple(groups)

    def _identity_claim(self, claims: dict[str, Any]) -> str:
        """The identity claim, which must already be canonical.

        Not folded to NFKC here: an issuer may hold `ａｌｉｃｅ` and `alice` as
        two subjects, and folding would make the first the second.
        """
        name = self.issuer.identity_claim
        identity = claims.get(name)
        if not isinstance(identity, str) or not identity:
            raise TokenRejected(f"claim {name!r} is not a usable identity")
        try:
            canonical = canonical_identity(identity)
        except IdentityNameRefused as exc:
            raise TokenRejected(f"claim {name!r}: {exc}") from None
        if canonical != identity:
            raise TokenRejected(
                f"claim {name!r}: identity {quoted(identity)} is not in Unicode normal form"
                f" NFKC (it would read as {quoted(canonical)})"
            )
        return identity


def _header(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        raise TokenRejected("not a signed JWT (expected three dot-separated parts)")
    try:
        raw = base64.urlsafe_b64decode(parts[0] + "=" * (-len(parts[0]) % 4))
        header = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise TokenRejected("token header is not base64url JSON") from None
    if not isinstance(header, dict):
        raise TokenRejected("token header is not a JSON object")
    if header.get("crit") is not None:
        raise TokenRejected("token header has critical extensions")
    return header


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]
