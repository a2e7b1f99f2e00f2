"""An SSHServerConnection that remembers who authenticated and what was refused.

asyncssh verifies client certificates but does not keep them, and it refuses
agent and X11 forwarding silently; the bastion needs the certificate (its key
id is the identity) and wants to tell the agent why a request was refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncssh

from bastion.identity.certinfo import CertificateInfo, certificate_info_from_blob

CertificateCheck = Callable[[str, CertificateInfo], Awaitable[bool]]
PreCheck = Callable[[str, CertificateInfo | None], str | None]


class BastionServerConnection(asyncssh.SSHServerConnection):
    """Keeps the certificate that passed public-key auth with a valid signature.

    `pre_check` may return a one-line reason to show the client (as an auth
    banner) why its key will be refused; `certificate_check` runs after
    asyncssh verified the CA, validity window, principals and signature,
    and may still refuse (unknown or revoked serial).
    """

    bastion_certificate: CertificateInfo | None = None
    refused_requests: list[str]
    pre_check: PreCheck | None = None
    certificate_check: CertificateCheck | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.refused_requests = []
        self._banners_sent: set[str] = set()

    async def validate_public_key(
        self, username: str, key_data: bytes, msg: bytes, signature: bytes
    ) -> bool:
        try:
            info: CertificateInfo | None = certificate_info_from_blob(key_data)
        except ValueError:
            info = None
        if self.pre_check is not None:
            reason = self.pre_check(username, info)
            if reason is not None:
                self._banner(reason)
                return False
        ok = await super().validate_public_key(username, key_data, msg, signature)
        if not ok or info is None:
            return False
        if msg:  # only a signed attempt proves possession of the key
            if self.certificate_check is not None and not await self.certificate_check(
                username, info
            ):
                return False
            self.bastion_certificate = info
        return True

    def _banner(self, reason: str) -> None:
        if reason not in self._banners_sent:
            self._banners_sent.add(reason)
            self.send_auth_banner(f"bastion: {reason}\r\n")

    async def create_agent_listener(self) -> bool:
        self.refused_requests.append("agent forwarding")
        return False

    async def attach_x11_listener(
        self, chan: Any, auth_proto: bytes, auth_data: bytes, screen: int
    ) -> str | None:
        self.refused_requests.append("X11 forwarding")
        return None
