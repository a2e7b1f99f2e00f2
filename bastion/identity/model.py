"""The identity attached to every outer connection."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """Who an agent is, as proven by its user certificate.

    `name` is the certificate's key id; `principals` are the target logins it
    may use; `groups` come from the certificate record the bastion kept when
    it signed it (roles will match on them).
    """

    name: str
    principals: tuple[str, ...]
    groups: tuple[str, ...]
    serial: int
    valid_before: float

    def may_login_as(self, login: str) -> bool:
        return login in self.principals
