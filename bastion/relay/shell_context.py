"""What a shell session's earlier lines set up, for deciding its next line (until the engine's own).

A line is judged with what ran before it in the same shell: `x=/etc/shadow`
then `cat $x`, `cd /etc` then `cat shadow`, an alias or a function defined
and then used, `read x` (and what was typed into it) then `cat "$x"`.

The rules engine on main decides one line at a time. Until its session
context (`rules.Context`) is wired here, the earlier lines that can set
something up (assignments, functions, `cd`, `alias`, `read`, `export`,
`source`...; with what was typed into `read`/`cat` as a heredoc) are kept,
bounded, and a new line is decided twice: alone, and as the last line of
that script. The script's verdict counts when it is more severe than both
the line's alone and the script's before the line (so an earlier approved
or alerted line does not hold every later one). What this cannot see: a
line that is more severe only in context, but no more than an earlier line
already was (say, a second reason for review).

    >>> ctx = ShellContext()
    >>> ctx.ran("x=/etc/shadow", severity=0)
    >>> ctx.script("cat $x")
    'x=/etc/shadow\\ncat $x'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from bastion.relay.shell_guard import assigned_names, defines_function
from bastion.relay.terminal_programs import EngineCommand, Reader

MAX_LINES = 64
MAX_BYTES = 32 * 1024
# Commands whose effect outlives them in the shell.
SETTERS = frozenset(
    {
        "cd",
        "pushd",
        "popd",
        "alias",
        "unalias",
        "read",
        "readarray",
        "mapfile",
        "export",
        "declare",
        "typeset",
        "local",
        "readonly",
        "unset",
        "source",
        ".",
        "set",
        "shopt",
        "eval",
        "hash",
        "umask",
        "=",
    }
)


@dataclass
class _Entry:
    line: str
    reader: Reader | None = None
    fed: list[str] = field(default_factory=list)

    def text(self) -> str:
        if self.reader is not None and self.fed and self.reader.program is not None:
            return self.reader.stdin_command(self.fed)
        return self.line


class ShellContext:
    def __init__(self) -> None:
        self._entries: list[_Entry] = []
        self.severity = 0  # of the kept script, as it was last judged
        self.lines_seen = 0

    @property
    def empty(self) -> bool:
        return not self._entries

    def script(self, last: str) -> str:
        """The kept lines, then `last`: one script to decide."""
        return "\n".join([*(e.text() for e in self._entries), last])

    def ran(
        self,
        line: str,
        *,
        severity: int,
        commands: Sequence[EngineCommand] = (),
        reader: Reader | None = None,
    ) -> None:
        """A shell line was sent to the target; `severity`: the script's verdict with it."""
        self.lines_seen += 1
        if not sets_something(line, commands):
            return
        self._entries.append(_Entry(line, reader))
        self.severity = max(self.severity, severity)
        self._bound()

    def fed(self, reader: Reader, text: str) -> None:
        """Input was sent to the program a kept line started (`read x`, `cat > f`)."""
        if self._entries and self._entries[-1].line == reader.line:
            self._entries[-1].reader = reader
            self._entries[-1].fed.append(text)
            self._bound()

    def fed_script(self, reader: Reader, text: str) -> str:
        """The script as it would be with `text` fed to the reader's program."""
        kept = [e.text() for e in self._entries]
        if self._entries and self._entries[-1].line == reader.line:
            entry = self._entries[-1]
            kept[-1] = reader.stdin_command([*entry.fed, text])
        else:
            kept.append(reader.stdin_command([text]))
        return "\n".join(kept)

    def _bound(self) -> None:
        while len(self._entries) > MAX_LINES or (
            len(self._entries) > 1 and sum(len(e.text()) for e in self._entries) > MAX_BYTES
        ):
            del self._entries[0]


def sets_something(line: str, commands: Sequence[EngineCommand]) -> bool:
    """Could this line change how a later line is read (variables, functions, cwd...)?"""
    if any(c.program in SETTERS for c in commands):
        return True
    return bool(assigned_names(line)) or defines_function(line)
