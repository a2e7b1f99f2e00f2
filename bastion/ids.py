"""Short ids that are easy to read aloud and type."""

from __future__ import annotations

import secrets

# Crockford-style alphabet: no i, l, o, u to avoid misreading.
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def new_session_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(10))
