"""The ansible-core releases the bastion can vouch for: what their AnsiballZ payloads hold.

One JSON file per release under bastion/ansible/known/, written by
`python -m bastion.ansible.manifest` from an installed ansible-core: the
sha256 of the wrapper's code (normalised as bastion/ansible/ansiballz.py
compares it), of every file a payload's zip may hold, the serialization
profiles and the internal `_ansible_*` arguments that release passes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

MAX_MANIFEST = 1 << 20


@dataclass(frozen=True)
class KnownRelease:
    version: str
    wrapper_sha256: str
    profiles: frozenset[str]
    internal_args: frozenset[str]
    members: dict[str, str]  # zip member path -> sha256 of its bytes


def parse_release(text: str) -> KnownRelease:
    data = json.loads(text)
    return KnownRelease(
        version=str(data["ansible_core"]),
        wrapper_sha256=str(data["wrapper_sha256"]),
        profiles=frozenset(str(p) for p in data["profiles"]),
        internal_args=frozenset(str(a) for a in data["internal_args"]),
        members={str(k): str(v) for k, v in data["members"].items()},
    )


@cache
def known_releases() -> dict[str, KnownRelease]:
    found = {}
    for entry in resources.files("bastion.ansible").joinpath("known").iterdir():
        if entry.name.endswith(".json"):
            text = entry.read_text()
            if len(text) <= MAX_MANIFEST:
                release = parse_release(text)
                found[release.version] = release
    return found


def known_release(version: str) -> KnownRelease | None:
    return known_releases().get(version)
