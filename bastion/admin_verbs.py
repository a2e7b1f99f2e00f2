"""Reviewer verbs as one command string: what `ssh reviewer@bastion approve 42` runs.

    requests [--all] [--json]
    requests show ID            (also: show ID)
    approve ID [--reason TEXT] [--for DURATION]
    deny ID [--reason TEXT]

Parsed with shlex into a small fixed grammar (no shell is ever involved);
anything else is a usage error. The same rendering is used by the local CLI.
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from typing import Any

from bastion.approvals import Reviewer, decide, parse_grant, show_request, visible_requests
from bastion.errors import BastionError, UsageError
from bastion.store import Store
from bastion.store.records import RequestRecord

MAX_COMMAND = 4096
USAGE = (
    "usage: requests [--all] [--json] | requests show ID | "
    "approve ID [--reason TEXT] [--for 30m] | deny ID [--reason TEXT]"
)


@dataclass(frozen=True)
class AdminCommand:
    verb: str  # list | show | approve | deny
    request_id: int | None = None
    reason: str | None = None
    grant: str | None = None
    include_decided: bool = False
    as_json: bool = False


def parse(command: str) -> AdminCommand:
    if len(command) > MAX_COMMAND:
        raise UsageError("command too long")
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"cannot parse the command: {exc}") from None
    if not words:
        raise UsageError(USAGE)
    verb, rest = words[0], words[1:]
    if verb == "requests" and rest[:1] == ["show"]:
        verb, rest = "show", rest[1:]
    options, positional = _options(rest)
    allowed = {
        "requests": {"--all", "--json"},
        "show": set(),
        "approve": {"--reason", "--for"},
        "deny": {"--reason"},
    }.get(verb)
    if allowed is None or set(options) - allowed:
        raise UsageError(USAGE)
    if verb == "requests":
        if positional:
            raise UsageError(USAGE)
        return AdminCommand("list", include_decided="--all" in options, as_json="--json" in options)
    if len(positional) != 1 or not positional[0].isdigit() or len(positional[0]) > 12:
        raise UsageError(f"{verb} takes one request id (a number)")
    return AdminCommand(
        verb,
        request_id=int(positional[0]),
        reason=options.get("--reason"),
        grant=options.get("--for"),
    )


def _options(words: list[str]) -> tuple[dict[str, str | None], list[str]]:
    options: dict[str, str | None] = {}
    positional: list[str] = []
    flags = {"--all", "--json"}
    valued = {"--reason", "--for"}
    index = 0
    while index < len(words):
        word = words[index]
        name, eq, value = word.partition("=")
        if name in valued:
            if not eq:
                index += 1
                if index >= len(words):
                    raise UsageError(f"{name} needs a value")
                value = words[index]
            options[name] = value
        elif word in flags:
            options[word] = None
        elif word.startswith("-"):
            raise UsageError(f"unknown option {word}")
        else:
            positional.append(word)
        index += 1
    return options, positional


async def run(store: Store, reviewer: Reviewer, command: AdminCommand) -> str:
    """Carry out a parsed verb for `reviewer`; returns the text to print."""
    if command.verb == "list":
        rows = await visible_requests(store, reviewer, include_decided=command.include_decided)
        if command.as_json:
            return render_json([row.to_json() for row in rows])
        return render_table(rows, time.time())
    assert command.request_id is not None
    if command.verb == "show":
        return render_json((await show_request(store, reviewer, command.request_id)).to_json())
    if command.verb in ("approve", "deny"):
        return await decide(
            store,
            reviewer,
            command.request_id,
            approve=command.verb == "approve",
            reason=command.reason,
            grant_seconds=parse_grant(command.grant),
        )
    raise BastionError(USAGE)


def render_json(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True)


def render_table(rows: list[RequestRecord], now: float) -> str:
    headers = ["id", "state", "identity", "where", "command", "rule", "approvals", "left"]
    cells = [
        [
            str(r.id),
            r.state,
            r.identity,
            f"{r.login}@{r.target}",
            _one_line(r.command)[:60],
            r.rule or "-",
            f"{len(r.approvals)}/{r.approvals_needed or 1}",
            f"{max(0, int(r.expires - now))}s" if r.state == "pending" else "-",
        ]
        for r in rows
    ]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def render_line(row: RequestRecord) -> str:
    """One request on one line, for `requests --watch` and the serve log."""
    return (
        f"request {row.id} {row.state}: {row.identity} on {row.login}@{row.target}"
        f" (rule {row.rule or '-'}): {_one_line(row.command)[:200]}"
    )


def _one_line(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)
