"""Turn approved requests into allow rules an operator can review and add.

    >>> print(suggest([Approved("agent-1", "web1", "deploy", "./deploy.sh prod", ("alice",), 7)]))
    # 1 approved request for agent-1 on web1 (requests 7; approved by alice)
    #   ./deploy.sh prod
    [[rule]]
    name = "approved-agent-1-web1"
    action = "allow"
    message = "approved before by a reviewer (bastion rules suggest)"
    line = ["./deploy.sh prod"]
    scope = { identities = ["agent-1"], targets = ["web1"], logins = ["deploy"] }
    <BLANKLINE>

Each rule allows exactly the lines a reviewer approved, for the identity,
target and login that ran them: nothing broader than what a human already
looked at. A rule never outranks a deny rule (the most severe match wins),
so a line that a later pack change denies stays denied.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

MAX_LINES_PER_RULE = 200
MAX_LINE = 4096


@dataclass(frozen=True)
class Approved:
    identity: str
    target: str
    login: str
    command: str
    reviewers: tuple[str, ...]
    request_id: int


def suggest(requests: Iterable[Approved]) -> str:
    """TOML text: one allow rule per identity, target and login."""
    groups: dict[tuple[str, str, str], list[Approved]] = defaultdict(list)
    for request in requests:
        if 0 < len(request.command) <= MAX_LINE and request.command.strip():
            groups[(request.identity, request.target, request.login)].append(request)
    blocks: list[str] = []
    names: set[str] = set()
    for (identity, target, login), found in sorted(groups.items()):
        lines = list(dict.fromkeys(" ".join(r.command.split()) for r in found))[:MAX_LINES_PER_RULE]
        name = _unique(_name(f"approved-{identity}-{target}"), names)
        reviewers = sorted({reviewer for r in found for reviewer in r.reviewers})
        ids = ", ".join(str(r.request_id) for r in sorted(found, key=lambda r: r.request_id))
        count = len(found)
        header = (
            f"# {count} approved request{'s' if count != 1 else ''} for {identity} on {target}"
            f" (requests {ids}; approved by {', '.join(reviewers) or 'unknown'})"
        )
        comments = [f"#   {_comment(line)}" for line in lines]
        scope = (
            f"scope = {{ identities = [{_string(identity)}], targets = [{_string(target)}], "
            f"logins = [{_string(login)}] }}"
        )
        blocks.append(
            "\n".join(
                [
                    header,
                    *comments,
                    "[[rule]]",
                    f'name = "{name}"',
                    'action = "allow"',
                    'message = "approved before by a reviewer (bastion rules suggest)"',
                    "line = [" + ", ".join(_string(line) for line in lines) + "]",
                    scope,
                    "",
                ]
            )
        )
    return "\n".join(blocks)


def _name(text: str) -> str:
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-.")
    return (name or "approved")[:60]


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate = f"{name[:56]}-{number}"
        number += 1
    taken.add(candidate)
    return candidate


def _string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def _comment(line: str) -> str:
    return line.replace("\n", " ").replace("\r", " ")[:200]
