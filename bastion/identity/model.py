"""The identity attached to every outer connection."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bastion.identity.roles import Grants


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
    grants: Grants | None = None  # None: no [[role]] configured, principals alone decide

    def may_login_as(self, login: str) -> bool:
        return login in self.principals

    def may_reach(self, target: str, labels: Mapping[str, str]) -> bool:
        return self.grants is None or self.grants.may_reach(target, labels)

    def may_login(self, target: str, labels: Mapping[str, str], login: str) -> bool:
        if not self.may_login_as(login):
            return False
        return self.grants is None or self.grants.may_login(target, labels, login)

    def may_forward(self, host: str, port: int) -> bool:
        return self.grants is not None and self.grants.may_forward(host, port)

    def shell_allowed(self, target: str, labels: Mapping[str, str]) -> bool:
        return self.grants is None or self.grants.shell_allowed(target, labels)
