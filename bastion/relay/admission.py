"""May this channel open, and with which environment? Pure functions over a request.

    >>> from bastion.relay.request import ChannelRequest
    >>> admit(ChannelRequest("shell"), shell_allowed=True).refusal.rule
    'shell-without-terminal'
    >>> admit(ChannelRequest("exec", "true", env=(("LANG", "C"), ("LD_PRELOAD", "x"))),
    ...       shell_allowed=True).env
    (('LANG', 'C'),)

Refusals here come before any rule: a shell without a terminal (its lines
cannot be delimited), a shell or a terminal for roles that forbid them.
The environment the agent sent reaches the target only through an
allow-list; names whose value a shell or the dynamic linker would run as
code are never forwarded, whatever the list says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bastion.relay.request import ChannelRequest

DEFAULT_ENV = ("LANG", "LC_*", "TERM", "COLORTERM")
MAX_ENV_VARS = 64
MAX_ENV_VALUE = 4096
# A value for any of these is code to bash, sh, or ld.so.
_NEVER = re.compile(
    r"^(BASH_FUNC_.*|BASH_ENV|ENV|LD_.*|PROMPT_COMMAND|PS[0-9]|SHELLOPTS|BASHOPTS|IFS|"
    r"PERL5OPT|PERL5LIB|PYTHON(STARTUP|PATH|HOME|INSPECT)|NODE_OPTIONS|RUBYOPT|GIT_.*|"
    r"LESSOPEN|LESSCLOSE|PAGER|EDITOR|VISUAL|HISTFILE|PATH|HOME|SHELL|MAIL|"
    r"SSH_.*|GCONV_PATH|HOSTALIASES|LOCALDOMAIN|RES_OPTIONS|TZDIR|NLSPATH)$"
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Refusal:
    rule: str
    reason: str

    @property
    def message(self) -> str:
        return f"bastion: denied by rule {self.rule}: {self.reason}"


@dataclass(frozen=True)
class Admission:
    refusal: Refusal | None
    env: tuple[tuple[str, str], ...] = ()  # forwarded to the target
    env_refused: tuple[str, ...] = ()  # names the agent sent that were not


def admit(
    request: ChannelRequest, *, shell_allowed: bool, env_names: Sequence[str] | None = None
) -> Admission:
    env, refused = filter_env(request.env, DEFAULT_ENV if env_names is None else env_names)
    return Admission(_refusal(request, shell_allowed), env, refused)


def _refusal(request: ChannelRequest, shell_allowed: bool) -> Refusal | None:
    if request.kind == "shell" and not shell_allowed:
        return Refusal(
            "shell-not-allowed", "interactive shells are not allowed for your roles; use exec"
        )
    if request.kind == "exec" and request.pty and not shell_allowed:
        # Keys typed on a terminal reach whatever runs there (a pager's `!`, an
        # editor's `:!`) and are never decided: exec-only roles get no terminal.
        return Refusal(
            "terminal-not-allowed",
            "a terminal for exec is not allowed for your roles; run without -t",
        )
    if request.kind == "shell" and not request.pty:
        return Refusal(
            "shell-without-terminal",
            "a shell without a terminal reads commands the bastion cannot decide; "
            "run them with exec (ssh ... 'COMMAND')",
        )
    return None


def filter_env(
    env: Sequence[tuple[str, str]], allowed: Sequence[str]
) -> tuple[tuple[tuple[str, str], ...], tuple[str, ...]]:
    """(forwarded pairs, refused names): allow-listed, never code, bounded in count and size."""
    kept: list[tuple[str, str]] = []
    refused: list[str] = []
    for name, value in env:
        ok = (
            len(kept) < MAX_ENV_VARS
            and _NAME.match(name) is not None
            and not _NEVER.match(name)
            and len(value) <= MAX_ENV_VALUE
            and value.isprintable()
            and any(fnmatchcase(name, pattern) for pattern in allowed)
        )
        if ok:
            kept.append((name, value))
        else:
            refused.append(name if _NAME.match(name) else repr(name[:64]))
    return tuple(kept), tuple(refused)
