"""Turning a verified OIDC token and a fresh public key into a short-lived certificate.

Runs over the bastion's own SSH port: the client logs in as `bastion-login`
with the token as its password (inside the encrypted SSH transport), then
asks `issue-certificate <public key>`. The certificate's key id is the
token's identity, its principals the exact logins the identity's roles
grant, its lifetime the roles' TTL but never past the token's own expiry.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import asyncssh

from bastion.config import Config
from bastion.identity.authorities import Authorities
from bastion.identity.issuing import issue_user_certificate
from bastion.identity.jwks import JwksCache
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
        return {
            "certificate": cert.export_certificate().decode(),
            "serial": str(record.serial),
            "identity": verified.identity,
            "principals": logins,
            "valid_before": record.valid_before,
            "host_ca": self.authorities.public_key_line("host"),
        }


def _unverified_issuer(token: str) -> str:
    """The `iss` claim, read only to choose which issuer's keys verify the token."""
    parts = token.strip().split(".")
    if len(parts) != 3:
        raise TokenRejected("not a signed JWT (expected three dot-separated parts)")
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        raise TokenRejected("token payload is not base64url JSON") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str):
        raise TokenRejected("token has no issuer (iss)")
    return issuer
