"""Reading the key files operators and agents pass on the command line.

asyncssh happily derives a public key from a private key file, so a private
key given where a public one belongs would be accepted and then copied or
printed. Each file is read with a size limit and checked for its kind first.
"""

from __future__ import annotations

from pathlib import Path

import asyncssh

from bastion.errors import UsageError

MAX_KEY_FILE = 64 * 1024


def read_key_text(path: Path, what: str) -> str:
    try:
        if path.stat().st_size > MAX_KEY_FILE:
            raise UsageError(f"{what} {path} is too large to be a key file")
        return path.read_text()
    except OSError as exc:
        raise UsageError(f"{what}: cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {path} is not an OpenSSH public key (binary file)") from None


def public_key_from_text(text: str, what: str) -> asyncssh.SSHKey:
    """The one public key in `text`; a private key or a certificate is refused by kind."""
    if "PRIVATE KEY-----" in text:
        raise UsageError(f"{what} is a private key: pass the public key (the .pub file) instead")
    first = text.strip().split(None, 1)[0] if text.strip() else ""
    if "-cert-v01@openssh.com" in first:
        raise UsageError(f"{what} is a certificate: pass the public key (the .pub file) instead")
    try:
        return asyncssh.import_public_key(text.strip())
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise UsageError(f"{what} is not an OpenSSH public key: {exc}") from None


def read_public_key(path: Path, what: str) -> asyncssh.SSHKey:
    return public_key_from_text(read_key_text(path, what), f"{what} {path}")
