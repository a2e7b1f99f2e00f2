"""One root exception for everything the bastion reports to a person.

Only the CLI layer prints these or exits; every other module raises them with
a message a user can act on.
"""

from __future__ import annotations


class BastionError(Exception):
    """A failure with a one-line message and the exit code the CLI uses."""

    exit_code = 1


class UsageError(BastionError):
    """The caller asked for something malformed (bad name, bad duration...)."""

    exit_code = 2


class NotInitialised(BastionError):
    """The state directory has not been set up with `bastion init`."""

    exit_code = 3


class NotFound(BastionError):
    """A named object (target, session, certificate) does not exist."""

    exit_code = 4


class ConfigError(BastionError):
    """bastion.toml or another loaded file is invalid."""

    exit_code = 5


class UpstreamError(BastionError):
    """The bastion could not reach or log in to a target.

    `reason` is a short fixed name for metrics: host-key, login, ssh,
    unreachable or timeout.
    """

    exit_code = 255

    def __init__(self, message: str, *, reason: str = "ssh") -> None:
        super().__init__(message)
        self.reason = reason


class TokenRefused(BastionError):
    """The bastion (or the issuer) refused the OIDC token offered at login."""

    exit_code = 6


class NotAllowed(BastionError):
    """The caller is known but may not do this (approve without an approving role...)."""

    exit_code = 7
