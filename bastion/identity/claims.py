"""Bounds on a token's claims, and the key that makes a token usable once.

A token reaches the bastion from anyone who can open its SSH port, and
its payload is decoded before the signature is checked (to pick the
issuer). So its shape is bounded first: the token's size (oidc.py), then
the claims' count, nesting and total number of values, each refused with
one line. Real ID tokens carry a few dozen claims nested two or three
levels deep (a Kubernetes token's `kubernetes.io.pod.name`).
"""

from __future__ import annotations

import hashlib
from typing import Any

MAX_CLAIMS = 100  # top-level claims
MAX_DEPTH = 8  # objects and arrays inside each other
MAX_VALUES = 2000  # every value at every level
MAX_TOKEN_ID_CHARS = 256


class ClaimsRefused(ValueError):
    """The payload's shape is out of bounds; the message is one line."""


def check_claims_shape(claims: Any) -> None:
    """Raise ClaimsRefused unless `claims` is a JSON object within the bounds."""
    if not isinstance(claims, dict):
        raise ClaimsRefused("token payload is not a JSON object")
    if len(claims) > MAX_CLAIMS:
        raise ClaimsRefused(f"token has {len(claims)} claims (at most {MAX_CLAIMS})")
    values = 0
    stack: list[tuple[Any, int]] = [(claims, 1)]
    while stack:  # iterative: a hostile payload cannot exhaust the recursion limit
        value, depth = stack.pop()
        values += 1
        if values > MAX_VALUES:
            raise ClaimsRefused(f"token claims hold more than {MAX_VALUES} values")
        if isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise ClaimsRefused(f"token claims nested deeper than {MAX_DEPTH} levels")
            children = value.values() if isinstance(value, dict) else value
            stack.extend((child, depth + 1) for child in children)


def token_id(claims: dict[str, Any]) -> str | None:
    """The token's `jti`, checked: None if it has none; ClaimsRefused if it is unusable."""
    jti = claims.get("jti")
    if jti is None:
        return None
    if (
        not isinstance(jti, str)
        or not jti
        or len(jti) > MAX_TOKEN_ID_CHARS
        or not jti.isprintable()
    ):
        raise ClaimsRefused(
            f"claim 'jti' is not a usable token id (1-{MAX_TOKEN_ID_CHARS} printable characters)"
        )
    return jti


def replay_key(issuer_url: str, jti: str | None, token: str) -> str:
    """What the store remembers of a used token: its issuer and `jti`, else its hash.

    Issuers choose `jti` values, so two issuers may use the same one: the
    key names the issuer (a URL, which holds no space).
    """
    if jti is not None:
        return f"jti:{issuer_url.rstrip('/')} {jti}"
    return "sha256:" + hashlib.sha256(token.strip().encode()).hexdigest()
