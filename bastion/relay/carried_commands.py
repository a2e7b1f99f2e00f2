"""The simple commands of a line, in the shape the carried-files code reads them.

The carried-files record (carried_effects.py, carried_runs.py) needs each
simple command's program, its words and the files it reads and writes; the
rules engine's `Command` has those and much more. This keeps that code on one
small shape: `opaque` where the engine did not understand the command (or the
line), with the first reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from rules import analyse as _analyse


@dataclass(frozen=True)
class SimpleCommand:
    program: str
    argv: tuple[str, ...]
    opaque: bool = False
    reason: str | None = None
    reads: tuple[str, ...] = ()  # paths it reads (redirections and arguments)
    writes: tuple[str, ...] = ()  # paths it writes (redirections and arguments)
    open_args: bool = False  # more arguments arrive at run time (xargs)
    cwd: str | None = None


# Programs whose writes change a file's metadata, never its bytes.
_METADATA_ONLY = frozenset({"chmod", "chown", "chgrp", "touch", "setfacl", "chattr"})


def analyse(line: str) -> list[SimpleCommand]:
    """Every simple command of `line`; a line the engine could not read is one opaque
    command, so callers never mistake it for a line that runs nothing."""
    analysis = _analyse(line)
    commands = [
        SimpleCommand(
            c.program,
            tuple(c.argv),
            opaque=not c.understood,
            reason=str(c.reasons[0]) if c.reasons else None,
            reads=tuple(c.reads),
            writes=() if c.program in _METADATA_ONLY else tuple(c.writes),
            open_args=c.open_args,
        )
        for c in analysis.commands
    ]
    if analysis.unparseable or (analysis.reasons and not commands):
        why = str(analysis.reasons[0]) if analysis.reasons else "the line could not be read"
        commands.append(SimpleCommand("", (), opaque=True, reason=why))
    return commands
