"""What a shell session's earlier decided lines set up, for deciding its next line.

The rules engine decides a line in a `rules.Context` (variables, functions,
aliases, `cd`, `set`/`shopt`, files written, PATH...) and hands back the
context after it. A session keeps the context of the last line that went to
the target, so `x=/etc/shadow` then `cat $x`, `cd /etc` then `cat shadow`,
or an alias defined and then used, are judged as one program would be. A
line that was refused changes nothing: it never ran.

Text typed into a program the shell started (`read x`, `cat > f`, `psql`)
is decided as that program's input: everything typed into it so far, handed
to it as a here-document, in the context the program started in. So `read
x` and then `/etc/shadow` typed into it leaves `x=/etc/shadow` for the next
line, and `sh f` after `cat > f` sees every line typed into f, not only the
last. Past MAX_FED_BYTES typed into one program, its input is no longer
followed (`input_script` returns None and the caller holds the line).

    >>> from rules import Request, default_policy, evaluate
    >>> session = SessionContext("deploy")
    >>> first = evaluate([default_policy()], Request("x=/etc/shadow", login="deploy"))
    >>> session.ran(first.context)
    >>> dict(session.current.variables)["x"].value
    '/etc/shadow'
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from rules import Context

from bastion.relay.terminal_programs import Reader

MAX_FED_BYTES = 32 * 1024


@dataclass
class _Feed:
    """What was typed into the program one shell line started, and where it started."""

    line: str  # the shell line that started the program
    base: Context  # the context that line left: the program's input is decided in it
    lines: list[str] = field(default_factory=list)
    size: int = 0  # bytes of `lines`, a newline each
    overflowed: bool = False  # more than MAX_FED_BYTES was sent: the input is not known

    def fits(self, text: str) -> bool:
        return not self.overflowed and self.size + len(text.encode()) + 1 <= MAX_FED_BYTES


class SessionContext:
    def __init__(self, login: str) -> None:
        self.current = Context.start(login=login)
        self._feed: _Feed | None = None

    def ran(self, after: Context | None) -> None:
        """A shell line went to the target; `after` is the context its decision left (None:
        its effect on the shell is not known, so every later use of a name is unknown)."""
        self._feed = None
        self.current = self._or_poisoned(after)

    def input_script(self, reader: Reader, text: str) -> tuple[str, Context] | None:
        """(the command that hands everything typed into `reader` so far and then `text`
        to its program, the context to decide it in); None past MAX_FED_BYTES."""
        feed = self._feed_of(reader) or _Feed(reader.line, self.current)
        if not feed.fits(text):
            return None
        return reader.stdin_command([*feed.lines, text]), feed.base

    def fed(self, reader: Reader, text: str, after: Context | None) -> None:
        """`text` was sent to the program `reader` names; `after` is the context its
        decision (of `input_script`) left."""
        feed = self._feed_of(reader)
        if feed is None:
            feed = self._feed = _Feed(reader.line, self.current)
        if feed.fits(text):
            feed.lines.append(text)
            feed.size += len(text.encode()) + 1
        else:  # sent all the same (a reviewer approved it): what the program read is unknown
            feed.overflowed, feed.lines = True, []
        self.current = self._or_poisoned(after)

    def typed_into(self, reader: Reader) -> list[str] | None:
        """The lines sent so far to the program `reader` names (since its line ran);
        None when more was sent than is kept."""
        feed = self._feed_of(reader)
        if feed is None:
            return []
        return None if feed.overflowed else list(feed.lines)

    def _feed_of(self, reader: Reader) -> _Feed | None:
        feed = self._feed
        return feed if feed is not None and feed.line == reader.line else None

    def _or_poisoned(self, after: Context | None) -> Context:
        return after if after is not None else replace(self.current, poisoned=True)
