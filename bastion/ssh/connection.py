"""An SSHServerConnection that remembers who authenticated and what was refused.

asyncssh verifies client certificates but does not keep them, and it refuses
agent and X11 forwarding silently; the bastion needs the certificate (its key
id is the identity) and wants to tell the agent why a request was refused.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncssh
from asyncssh.constants import MSG_IGNORE
from asyncssh.packet import String

from bastion.identity.certinfo import CertificateInfo, certificate_info_from_blob

CertificateCheck = Callable[[str, CertificateInfo], Awaitable[bool]]
PreCheck = Callable[[str, CertificateInfo | None], str | None]


_EMPTY_IGNORE = (String(b""),)


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
        self._gathered: list[bytes] = []
        self._gather_scheduled = False
        self._wire: Any = None

    # --- the write path: one write per event-loop turn, no padding packets -----------

    def connection_made(self, transport: Any) -> None:
        self._wire = transport
        super().connection_made(transport)

    def _send(self, data: bytes) -> None:
        """Gather this turn's packets and write them at once.

        asyncssh writes every packet as it is made; relaying a burst of
        output that way costs one syscall (or, on the inner connection, one
        outer SSH packet) per packet. Order is kept: every write goes
        through this buffer, and `_force_close` writes it out first.
        """
        self._gathered.append(data)
        if not self._gather_scheduled:
            self._gather_scheduled = True
            self._loop.call_soon(self._write_gathered)

    def _write_gathered(self) -> None:
        self._gather_scheduled = False
        if not self._gathered:
            return
        data = b"".join(self._gathered) if len(self._gathered) > 1 else self._gathered[0]
        self._gathered.clear()
        wire = self._wire
        if wire is not None and not wire.is_closing():
            try:
                wire.write(data)
            except ConnectionError:
                pass

    def _force_close(self, exc: Exception | None) -> None:
        self._write_gathered()  # the disconnect message, if that is what is pending
        super()._force_close(exc)

    def send_packet(self, pkttype: int, *args: bytes, handler: Any = None) -> None:
        """Skip the empty IGNORE asyncssh puts before each packet, unless a CBC cipher is in use.

        That padding packet defends CBC mode's predictable IVs (RFC 4251
        section 9.3.1); the bastion's agent-facing legs negotiate only
        AES-GCM, an AEAD mode with no such weakness, where the extra packet
        costs a write and an outer SSH packet per data packet.
        """
        if pkttype == MSG_IGNORE and args == _EMPTY_IGNORE and not self._cbc_in_use():
            return
        super().send_packet(pkttype, *args, handler=handler)

    def _cbc_in_use(self) -> bool:
        algs = (getattr(self, "_enc_alg_cs", b""), getattr(self, "_enc_alg_sc", b""))
        return any(b"cbc" in alg for alg in algs) or not all(algs)

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
