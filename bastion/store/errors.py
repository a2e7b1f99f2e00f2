"""What the store raises: named failures a caller can act on, never a driver's exception."""

from __future__ import annotations

from bastion.errors import BastionError


class StoreError(BastionError):
    """The database could not do what was asked (unreachable, locked, broken)."""


class StoreUnavailable(StoreError):
    """The database cannot be reached or written now; callers fail closed."""


class Conflict(StoreError):
    """A row with this key exists already (a unique constraint said no)."""


class RequestClosed(BastionError):
    """The request is no longer pending (decided, expired or cancelled)."""
