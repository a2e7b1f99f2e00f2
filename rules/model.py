"""The values that cross module lines: actions, requests, commands, decisions, rules."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from rules.context import Context


class Action(enum.Enum):
    ALLOW = "allow"
    ALERT = "alert"
    REVIEW = "review"
    DENY = "deny"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Action.ALLOW: 0, Action.ALERT: 1, Action.REVIEW: 2, Action.DENY: 3}


@dataclass(frozen=True)
class Request:
    command: str
    user: str | None = None
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    target: str | None = None
    login: str | None = None


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a command is not understood: the exact word, option or feature, and why."""

    word: str
    why: str

    def __str__(self) -> str:
        return f"{self.word}: {self.why}" if self.word else self.why


class Command(NamedTuple):
    """One simple command as the bastion understood it (or did not).

    A named tuple rather than a frozen dataclass: one is made per simple command
    on the hot path, and a tuple is several times cheaper to build; it is as
    immutable and picklable.
    """

    program: str  # the catalog's name, or the name as written when it is not known
    argv: tuple[str, ...]  # the words as read (unknown parts shown as ‹?›)
    subcommand: tuple[str, ...] = ()  # the catalog path: ("push",), ("s3", "cp")
    flags: frozenset[str] = frozenset()  # every spelling of every option given, no dashes
    options: tuple[tuple[str, str], ...] = ()  # (option as written, its value)
    caps: frozenset[str] = frozenset()
    reads: tuple[str, ...] = ()  # canonical paths (globs where the word globs)
    writes: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()  # program or script files it runs, as paths
    uses: tuple[str, ...] = ()  # key and credential files used without being printed
    hosts: tuple[str, ...] = ()  # hosts and URLs it connects to
    sends: tuple[str, ...] = ()  # local files it sends to another host
    sql: tuple[str, ...] = ()  # statement kinds found in SQL handed to a client
    units: tuple[str, ...] = ()  # services and units it acts on
    targets: tuple[str, ...] = ()  # processes, resources, packages... it acts on (data)
    understood: bool = True
    reasons: tuple[Reason, ...] = ()
    via: tuple[str, ...] = ()  # what it was found in: sudo, sh -c, ssh web1, $(...)
    feeds: frozenset[str] = frozenset()  # capabilities of what feeds its input
    runs_input: bool = False  # runs code it reads from its input
    runs_downloaded: bool = False  # runs a file this session fetched from the network
    open_args: bool = False  # more arguments arrive at run time (xargs)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"program": self.program, "argv": list(self.argv)}
        if self.subcommand:
            data["subcommand"] = list(self.subcommand)
        if self.caps:
            data["capabilities"] = sorted(self.caps)
        for key in ("reads", "writes", "deletes", "runs", "uses", "hosts", "sends", "sql", "units"):
            value = getattr(self, key)
            if value:
                data[key] = list(value)
        if not self.understood:
            data["understood"] = False
            data["not_understood"] = [str(r) for r in self.reasons]
        if self.via:
            data["via"] = list(self.via)
        if self.feeds:
            data["fed_by"] = sorted(self.feeds)
        if self.runs_input:
            data["runs_input"] = True
        if self.runs_downloaded:
            data["runs_downloaded"] = True
        return data


@dataclass(frozen=True)
class Decision:
    action: Action
    rule: str | None
    reason: str
    commands: tuple[Command, ...] = ()
    review_timeout: float | None = None
    approvers: int = 1  # distinct reviewers a `review` decision needs
    end_session: bool = False  # the command does not run and the session is closed
    understood: bool = True
    not_understood: tuple[Reason, ...] = ()
    capabilities: frozenset[str] = frozenset()
    context: Context | None = None  # the shell's state after this line

    def explanation(self) -> str:
        """One paragraph a reviewer can act on."""
        if not self.understood:
            reasons = "; ".join(str(r) for r in self.not_understood[:6])
            more = len(self.not_understood) - 6
            return "not understood: " + reasons + (f"; and {more} more" if more > 0 else "")
        caps = ", ".join(sorted(self.capabilities)) or "none"
        return f"understood; capabilities: {caps}"

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.action.value,
            "rule": self.rule,
            "reason": self.reason,
            "understood": self.understood,
            "not_understood": [{"word": r.word, "why": r.why} for r in self.not_understood],
            "capabilities": sorted(self.capabilities),
            "commands": [command.to_json() for command in self.commands],
            **({"end_session": True} if self.end_session else {}),
        }


@dataclass(frozen=True)
class Scope:
    roles: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    logins: tuple[str, ...] = ()
    identities: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    name: str
    action: Action
    message: str
    program: tuple[str, ...] = ()
    command_path: tuple[str, ...] = ()  # globs over the program as written (./x, /tmp/x)
    subcommand: tuple[str, ...] = ()  # globs over the subcommand path joined by spaces
    all_flags: tuple[frozenset[str], ...] = ()  # each entry: any of these spellings
    any_flag: frozenset[str] = frozenset()
    args: tuple[str, ...] = ()
    all_args: tuple[tuple[str, ...], ...] = ()  # each entry: some argument matches one
    options: tuple[str, ...] = ()  # globs over "OPTION=VALUE" of the options given
    except_program: tuple[str, ...] = ()  # the rule does not apply to these programs
    except_args: tuple[str, ...] = ()  # ... nor to a command with any of these arguments
    except_flags: frozenset[str] = frozenset()
    caps: frozenset[str] = frozenset()  # any of these capabilities
    all_caps: frozenset[str] = frozenset()  # every one of these
    paths: tuple[str, ...] = ()  # files read, written, deleted or run, and redirected files
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()
    runs: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()
    sends: tuple[str, ...] = ()
    units: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    feeds: frozenset[str] = frozenset()  # what feeds the input has any of these capabilities
    sql: frozenset[str] = frozenset()
    understood: bool | None = None
    runs_input: bool | None = None
    runs_downloaded: bool | None = None
    open_args: bool | None = None
    via: tuple[str, ...] = ()  # globs over what the command was found in (sudo, sh -c, $EDITOR)
    except_via: tuple[str, ...] = ()
    line: tuple[str, ...] = ()  # the whole line, exactly (after trimming), as approved
    regex: str | None = None
    scope: Scope = field(default_factory=Scope)
    timeout: float | None = None
    approvers: int = 1
    end_session: bool = False
    source_line: int | None = None


@dataclass(frozen=True)
class Policy:
    name: str
    rules: tuple[Rule, ...]
