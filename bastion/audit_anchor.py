"""Anchors: the audit chain's head with a time, kept somewhere the bastion cannot rewrite.

A chain shows an edit or a deletion inside it, but not a cut of its newest
entries together with their rows, nor a middle row deleted and the chain
recomputed after it: both leave a chain that is consistent with itself. An
anchor printed (or POSTed to the alerts webhook, or signed with a key from
config) and kept elsewhere catches both: `bastion audit verify --head HASH`
fails unless the chain still holds that entry with that hash.

    >>> text = anchor_text(ChainHead(12, "ab" * 32), 1700000000.0)
    >>> text.splitlines()[0]
    'bastion-audit-anchor v1'
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import asyncssh

from bastion.errors import BastionError, UsageError
from bastion.store.records import ChainHead

MAX_ANCHOR_BYTES = 64 * 1024


def anchor_text(head: ChainHead, at: float) -> str:
    """The exact bytes a signature covers."""
    return f"bastion-audit-anchor v1\nseq {head.seq}\nhead {head.hash}\ntime {at:.3f}\n"


def make_anchor(head: ChainHead, at: float, key_file: Path | None = None) -> dict[str, Any]:
    anchor: dict[str, Any] = {"seq": head.seq, "head": head.hash, "time": round(at, 3)}
    if key_file is not None:
        try:
            key = asyncssh.read_private_key(key_file)
        except (OSError, asyncssh.KeyImportError, ValueError) as exc:
            raise UsageError(f"cannot read audit.anchor_key {key_file}: {exc}") from None
        signature = key.sign(anchor_text(head, at).encode(), key.sig_algorithms[0])
        anchor["key"] = key.export_public_key().decode().strip()
        anchor["signature"] = base64.b64encode(signature).decode()
    return anchor


def read_anchor(path: Path) -> dict[str, Any]:
    """An anchor JSON file; its signature checked if it has one."""
    try:
        if path.stat().st_size > MAX_ANCHOR_BYTES:
            raise UsageError(f"{path} is too large to be an anchor")
        anchor = json.loads(path.read_text())
        head = ChainHead(int(anchor["seq"]), str(anchor["head"]))
        at = float(anchor["time"])
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError):
        raise UsageError(f"{path} is not an anchor written by `bastion audit anchor`") from None
    if "signature" in anchor:
        try:
            key = asyncssh.import_public_key(str(anchor["key"]))
            signature = base64.b64decode(str(anchor["signature"]), validate=True)
        except (asyncssh.KeyImportError, ValueError):
            raise BastionError(f"{path}: unreadable key or signature") from None
        if not key.verify(anchor_text(head, at).encode(), signature):
            raise BastionError(f"{path}: the anchor's signature does not match its content")
    return anchor
