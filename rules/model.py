"""The values that cross module lines: actions, requests, commands, decisions, rules."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


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


@dataclass(frozen=True)
class SimpleCommand:
    """One command after wrappers, quoting and paths were normalized away."""

    program: str
    argv: tuple[str, ...]
    opaque: bool = False
    reason: str | None = None
    reads: tuple[str, ...] = ()  # files redirected in with <
    writes: tuple[str, ...] = ()  # files redirected out with > >> &>
    sql: tuple[str, ...] = ()  # statement kinds found in SQL handed to a client
    egress: bool = False  # opens a raw network connection
    open_args: bool = False  # more arguments come from input at run time (xargs, parallel)
    cwd: str | None = None  # where an earlier `cd` on the line went: relative paths are there

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"program": self.program, "argv": list(self.argv)}
        if self.opaque:
            data["opaque"] = self.reason or True
        if self.sql:
            data["sql"] = list(self.sql)
        if self.reads:
            data["reads"] = list(self.reads)
        if self.writes:
            data["writes"] = list(self.writes)
        if self.egress:
            data["egress"] = True
        if self.open_args:
            data["open_args"] = True
        if self.cwd:
            data["cwd"] = self.cwd
        return data


@dataclass(frozen=True)
class Decision:
    action: Action
    rule: str | None
    reason: str
    commands: tuple[SimpleCommand, ...] = ()
    review_timeout: float | None = None
    approvers: int = 1  # distinct reviewers a `review` decision needs
    end_session: bool = False  # the command does not run and the session is closed

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.action.value,
            "rule": self.rule,
            "reason": self.reason,
            "commands": [command.to_json() for command in self.commands],
            **({"end_session": True} if self.end_session else {}),
        }


@dataclass(frozen=True)
class Scope:
    roles: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()
    logins: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rule:
    name: str
    action: Action
    message: str
    program: tuple[str, ...] = ()
    command_path: tuple[str, ...] = ()  # globs over the program as written (./x, /tmp/x)
    subcommand: tuple[str, ...] = ()
    all_flags: tuple[frozenset[str], ...] = ()  # each entry: any of these spellings
    any_flag: frozenset[str] = frozenset()
    args: tuple[str, ...] = ()
    except_program: tuple[str, ...] = ()  # the rule does not apply to these programs
    except_args: tuple[str, ...] = ()  # ... nor to a command with any of these arguments
    paths: tuple[str, ...] = ()  # arguments and redirected files
    writes: tuple[str, ...] = ()  # files written by redirection (or by tee/cp/mv arguments)
    sql: frozenset[str] = frozenset()
    egress: bool | None = None
    opaque: bool | None = None
    open_args: bool | None = None
    regex: str | None = None
    scope: Scope = field(default_factory=Scope)
    timeout: float | None = None
    approvers: int = 1
    end_session: bool = False
    line: int | None = None


@dataclass(frozen=True)
class Policy:
    name: str
    rules: tuple[Rule, ...]
