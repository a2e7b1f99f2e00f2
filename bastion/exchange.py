"""Turning a verified OIDC token and a fresh public key into a short-lived certificate.

Runs over the bastion's own SSH port: the client logs in as `bastion-login`
with the token as its password (inside the encrypted SSH transport), then
asks `issue-certificate <public key>`. The certificate's key id is the
token's identity, its principals the exact logins the identity's roles
grant, its lifetime the roles' TTL but never past the token's own expiry.

A token is refused while its identity is revoked (`bastion cert revoke
--identity`, until `bastion cert unrevoke`), and, with its issuer's
`replay = "once"` (the default), the second time it is presented: the
store remembers its `jti` (or, without one, its hash) until it expires,
on every node at once.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import asyncssh

from bastion.config import Config
from bastion.errors import UsageError
from bastion.identity.authorities import Authorities
from bastion.identity.claims import ClaimsRefused, check_claims_shape
from bastion.identity.issuing import issue_user_certificate
from bastion.identity.jwks import JwksCache
from bastion.identity.names import quoted
from bastion.identity.oidc import MAX_TOKEN_BYTES, TokenRejected, TokenVerifier, VerifiedToken
from bastion.identity.roles import grants_for
from bastion.store import Store

LOGIN_USER = "bastion-login"
MIN_TTL = 30


class TokenExchange:
    def __init__(self, config: Config, authorities: Authorities) -> None:
        self.config = config
        self.authorities = authorities
        self._verifiers = {
            issuer.url.rstrip("/"): TokenVerifier(
                issuer, JwksCache(issuer.url, jwks_uri=issuer.jwks_uri)
            )
            for issuer in config.issuers
        }

    def verify(self, token: str) -> VerifiedToken:
        """Blocking (it may fetch the issuer's keys): call it from a worker thread."""
        if len(token) > MAX_TOKEN_BYTES:  # before anything decodes it
            raise TokenRejected(f"token larger than {MAX_TOKEN_BYTES} bytes")
        issuer = _unverified_issuer(token)
        verifier = self._verifiers.get(issuer.rstrip("/"))
        if verifier is None:
            raise TokenRejected(f"tokens from issuer {issuer[:100]!r} are not accepted here")
        return verifier.verify(token)

    async def issue(
        self, store: Store, verified: VerifiedToken, public_key_line: str
    ) -> dict[str, Any]:
        try:
            key = asyncssh.import_public_key(public_key_line)
        except (asyncssh.KeyImportError, ValueError):
            raise TokenRejected("the public key sent is not an OpenSSH public key") from None
        if await store.identity_revocation(verified.identity) is not None:
            raise TokenRejected(
                f"{verified.identity!r} is revoked; an operator lifts it with"
                " `bastion cert unrevoke --identity ...`"
            )
        grants = grants_for(self.config.roles, verified.claims, verified.groups, verified.issuer)
        if not grants.any:
            raise TokenRejected(f"no role grants {verified.identity!r} access")
        logins = list(grants.logins)
        if not logins:
            raise TokenRejected("the matching roles grant no exact login name")
        ttl = grants.cert_ttl(token_expires_in=verified.expires_at - time.time())
        if ttl < MIN_TTL:
            raise TokenRejected("the token expires too soon to issue a certificate")
        await _use_token(store, verified)
        try:
            cert, record = await issue_user_certificate(
                store,
                self.authorities,
                key,
                identity=verified.identity,
                principals=logins,
                groups=list(verified.groups),
                ttl=ttl,
                source=f"oidc:{verified.issuer}",
            )
        except UsageError as exc:  # what the roles or the token gave cannot be signed
            raise TokenRejected(str(exc)) from None
        return {
            "certificate": cert.export_certificate().decode(),
            "serial": str(record.serial),
            "identity": verified.identity,
            "principals": logins,
            "valid_before": record.valid_before,
            "host_ca": self.authorities.public_key_line("host"),
        }


async def _use_token(store: Store, verified: VerifiedToken) -> None:
    """Record the token's use; with replay = "once", refuse it if it was used before."""
    first = await store.use_token_once(
        verified.replay_key, verified.identity, float(verified.expires_at)
    )
    if not first and verified.replay == "once":
        what = f"token {quoted(verified.token_id)}" if verified.token_id else "this token"
        raise TokenRejected(
            f"{what} was exchanged before; a token gives one certificate (get a new token)"
        )


def token_description(verified: VerifiedToken) -> str:
    """How an audit row names the token a certificate came from."""
    if verified.token_id is not None:
        return f"token jti {quoted(verified.token_id)}"
    return f"token {verified.replay_key[:23]}"  # sha256: and 16 hex digits


def _unverified_issuer(token: str) -> str:
    """The `iss` claim, read only to choose which issuer's keys verify the token."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenRejected("not a signed JWT (expected three dot-separated parts)")
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise TokenRejected("token payload is not base64url JSON") from None
    except RecursionError:
        raise TokenRejected("token claims nested too deeply") from None
    try:
        check_claims_shape(claims)
    except ClaimsRefused as exc:
        raise TokenRejected(str(exc)) from None
    issuer = claims.get("iss")
    if not isinstance(issuer, str):
        raise TokenRejected("token has no issuer (iss)")
    return issuer
