"""Read the fields of an OpenSSH certificate (asyncssh keeps key id and serial private)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    SSHCertificate,
    SSHCertificateType,
    load_ssh_public_identity,
)


@dataclass(frozen=True)
class CertificateInfo:
    key_id: str
    serial: int
    principals: tuple[str, ...]
    valid_after: int
    valid_before: int
    ca_public_key: str  # "ssh-ed25519 AAAA..." of the CA that signed it
    cert_type: str  # "user" or "host"
    key_fingerprint: str = ""  # "SHA256:..." of the certified public key, as ssh-keygen -l


def certificate_info(cert_line: bytes) -> CertificateInfo:
    """Parse an OpenSSH certificate line (`type base64 [comment]`)."""
    cert = load_ssh_public_identity(cert_line)
    if not isinstance(cert, SSHCertificate):
        raise ValueError("not an OpenSSH certificate")
    return CertificateInfo(
        key_id=cert.key_id.decode("utf-8", errors="replace"),
        serial=cert.serial,
        principals=tuple(p.decode("utf-8", errors="replace") for p in cert.valid_principals),
        valid_after=cert.valid_after,
        valid_before=cert.valid_before,
        ca_public_key=cert.signature_key()
        .public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
        .decode(),
        cert_type="user" if cert.type == SSHCertificateType.USER else "host",
        key_fingerprint=_fingerprint(
            cert.public_key().public_bytes(Encoding.OpenSSH, PublicFormat.OpenSSH)
        ),
    )


def _fingerprint(openssh_line: bytes) -> str:
    blob = base64.b64decode(openssh_line.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def certificate_info_from_blob(blob: bytes) -> CertificateInfo:
    """Parse the wire form (as sent in public-key auth) of an OpenSSH certificate."""
    if len(blob) < 4 or len(blob) > 65536:
        raise ValueError("certificate blob has an invalid size")
    name_len = int.from_bytes(blob[:4], "big")
    name = blob[4 : 4 + name_len]
    if not name.endswith(b"-cert-v01@openssh.com"):
        raise ValueError("not an OpenSSH certificate")
    return certificate_info(name + b" " + base64.b64encode(blob))
