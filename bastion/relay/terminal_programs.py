"""Programs that read the terminal while a shell line runs, and what the bastion knows of each.

When a line starts a program that reads the terminal, the lines typed next
are that program's input, not the shell's. The bastion decides them in the
program's own terms where this table says what they are:

- `sql`: database prompts (sqlite3, psql, mysql, mariadb): the typed text is
  SQL and client commands (`.shell`, `.system`, `\\!`, `system`...), decided
  by the rules engine as the program's standard input (rules/sql.py parses
  it). A statement is decided, and sent, only when it is complete, so a
  refused one never waits half-typed in the program's buffer.
- `redis`: redis-cli's commands, likewise.
- `data`: `read`, `cat`, `tee`: whatever is typed is data, decided as the
  program's input (a heredoc) so that later lines are judged with it.
- `passwords`: programs that may ask for a password; a line typed at their
  password prompt is secret (see ShellGate) and is data for them.
- `full_screen`: programs that take the whole screen (the alternate screen)
  and cannot run commands: keys pass to them raw. Any other program that
  takes the screen gets no keys but Ctrl-C, Ctrl-Z and Ctrl-\\.

A program not in this table is not understood: what is typed while it runs
gets the role's unknown action. The command catalog (rules/) will say what
each program does with terminal input; until then this table is that
knowledge, kept small on purpose.

Full-screen notes. `less` is safe only with LESSSECURE=1 and no LESSOPEN
(the bastion's shell sets both, read-only; `env -u` or any other wrapper
makes it unsafe, see `reader_for`). `man` pages through that same `less`
(MANPAGER and PAGER are set, read-only) unless told another pager or a
browser (-P, -H, -X). `top` and `htop` run no commands; they can signal
and renice the login's own processes, and htop's `l` and `s` keys run
lsof and strace on a process.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class TerminalProgram:
    name: str
    reads: str  # sql | redis | data | passwords | screen
    own_newline: bool = False  # ends an accepted line with its own newline (readline does)
    passwords: bool = False  # may ask for a password: a line typed at that prompt is data
    full_screen: bool = False  # keys may pass to it raw when it takes the screen
    refused_options: tuple[str, ...] = ()  # with one of these, it is not safe on the full screen
    secret_options: tuple[str, ...] = ()  # with one of these, what is typed is secret (read -s)
    one_line: bool = False  # reads one line and is done (what is typed next is for the shell)


def _programs(*programs: TerminalProgram) -> dict[str, TerminalProgram]:
    return {p.name: p for p in programs}


PROGRAMS = _programs(
    TerminalProgram("sqlite3", "sql", own_newline=True),
    TerminalProgram("psql", "sql", own_newline=True, passwords=True),
    TerminalProgram("mysql", "sql", own_newline=True, passwords=True),
    TerminalProgram("mariadb", "sql", own_newline=True, passwords=True),
    TerminalProgram("redis-cli", "redis", own_newline=True),
    TerminalProgram("read", "data", secret_options=("-s",), one_line=True),
    TerminalProgram("cat", "data"),
    TerminalProgram("tee", "data"),
    *(
        TerminalProgram(name, "passwords", passwords=True)
        for name in (
            "sudo",
            "su",
            "passwd",
            "ssh",
            "scp",
            "sftp",
            "ssh-add",
            "ssh-keygen",
            "gpg",
            "kinit",
            "htpasswd",
        )
    ),
    TerminalProgram("less", "screen", full_screen=True),
    TerminalProgram(
        "man",
        "screen",
        full_screen=True,
        refused_options=("-P", "--pager", "-H", "--html", "-X", "--gxditview"),
    ),
    TerminalProgram("top", "screen", full_screen=True),
    TerminalProgram("htop", "screen", full_screen=True),
)

# Commands on a line that set the scene and never read the terminal.
_SCENE = frozenset({"cd", "pushd", "popd", "=", "export", "true", ":"})
# mysql's client commands: recognised at the start of a line, complete at its end.
_MYSQL_COMMANDS = frozenset(
    "? charset clear connect delimiter edit ego exit go help nopager notee nowarning pager "
    "print prompt query_attributes quit rehash resetconnection source ssl_session_data_print "
    "status system tee use warnings".split()
)


class EngineCommand(Protocol):
    """A simple command as the rules engine reports it (either engine: program and argv)."""

    @property
    def program(self) -> str: ...
    @property
    def argv(self) -> tuple[str, ...]: ...


@dataclass(frozen=True)
class Reader:
    """Who reads what is typed while a shell line runs: a known program, or nobody known."""

    line: str  # the shell line that started it
    program: TerminalProgram | None = None
    argv: tuple[str, ...] = ()
    wrapped: bool = False  # started through a wrapper (env, sudo, nice...)
    passwords: bool = False  # something on the line may ask for a password
    alone: bool = False  # the line is this one command (its redirections included)

    @property
    def name(self) -> str:
        return self.program.name if self.program else (self.argv[0] if self.argv else "a program")

    @property
    def understands_input(self) -> bool:
        """The bastion knows what this program does with the lines it reads."""
        return self.program is not None and self.program.reads in ("sql", "redis", "data")

    @property
    def secret(self) -> bool:
        """Everything typed is secret (read -s)."""
        if self.program is None:
            return False
        return any(_has_option(self.argv, option) for option in self.program.secret_options)

    @property
    def full_screen_ok(self) -> bool:
        program = self.program
        if program is None or not program.full_screen or self.wrapped:
            return False
        return not any(_has_option(self.argv, option) for option in program.refused_options)

    def stdin_command(self, lines: Sequence[str]) -> str:
        """The shell command that hands `lines` to this program: what the engine decides.

        Where the line is this one command, it is the line itself with the input as a
        here-document, so its redirections count (`cat > job.sh` then what is typed:
        job.sh holds that text); else the program's words alone."""
        delimiter = "BASTION_INPUT"
        while delimiter in lines:
            delimiter += "_"
        body = "\n".join(lines)
        head = self.line.strip() if self.alone and _ends_plainly(self.line) else None
        return f"{head or shlex.join(self.argv)} <<'{delimiter}'\n{body}\n{delimiter}"


def _ends_plainly(line: str) -> bool:
    """A here-document operator appended to `line` binds to its one command: no comment,
    here-document or newline in it, and it does not end in an operator."""
    text = line.strip()
    return bool(text) and not any(c in text for c in "#\n\\") and "<<" not in text and (
        text[-1] not in ";&|("
    )


def reader_for(line: str, commands: Sequence[EngineCommand]) -> Reader:
    """The program the line leaves reading the terminal: its one command that is not scenery.

    A wrapper (`sudo -u pg psql`) is reported by the engine before what it
    wraps, with the wrapped command at the end of its own words; it does not
    count as another program. Anything else (a pipeline, a list of several
    programs) leaves nobody known.
    """
    passwords = any(
        (known := PROGRAMS.get(c.program)) is not None and known.passwords for c in commands
    )
    chosen = [c for c in commands if c.program not in _SCENE]
    wrapped = False
    while len(chosen) > 1 and _wraps(chosen[0], chosen[1]):
        chosen = chosen[1:]
        wrapped = True
    if len(chosen) != 1:
        return Reader(line, None, (), wrapped, passwords)
    command = chosen[0]
    program = PROGRAMS.get(command.program)
    if program is not None and program.reads == "data" and not _reads_terminal(command):
        program = None  # `cat FILE`, `read x < f`: the terminal is not what it reads
    alone = len(commands) == 1 and not wrapped
    return Reader(line, program, tuple(command.argv), wrapped, passwords, alone)


def statement_complete(program: TerminalProgram, pending: Sequence[str]) -> bool:
    """Whether the lines typed so far make something the program runs now."""
    if program.reads != "sql":
        return True
    first = pending[0].strip()
    if program.name == "sqlite3" and first.startswith("."):
        return True
    if first.startswith("\\"):
        return True
    if (
        program.name in ("mysql", "mariadb")
        and first.split(maxsplit=1)[:1]
        and (first.split(maxsplit=1)[0].lower().rstrip(";") in _MYSQL_COMMANDS)
    ):
        return True
    return _ends_with_semicolon("\n".join(pending))


def misread_reason(program: TerminalProgram, text: str) -> str | None:
    """Input the analysis would read differently from the program, so it is not understood."""
    if program.name == "psql" and "\\" in text.strip()[1:]:
        return "a psql meta-command inside a line (psql runs it where it stands)"
    if program.name in ("mysql", "mariadb") and text.strip().lower().startswith("delimiter"):
        return "a new statement delimiter (the bastion would not see where statements end)"
    return None


def _ends_with_semicolon(text: str) -> bool:
    """A `;` outside quotes and comments ends the text (what sqlite3_complete() checks)."""
    complete = False
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "'\"`":
            end = text.find(ch, i + 1)
            while end >= 0 and text[end + 1 : end + 2] == ch:  # a doubled quote is a quote
                end = text.find(ch, end + 2)
            if end < 0:
                return False  # an open string: more is coming
            i, complete = end + 1, False
            continue
        if text.startswith("--", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline + 1
            continue
        if text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return False
            i = end + 2
            continue
        if ch == ";":
            complete = True
        elif not ch.isspace():
            complete = False
        i += 1
    return complete


def _reads_terminal(command: EngineCommand) -> bool:
    """A data reader reads the terminal unless its input is redirected or it is given files."""
    if getattr(command, "reads", ()) or getattr(command, "stdin", None):
        return False
    if command.program == "cat":
        operands = [a for a in command.argv[1:] if a == "-" or not a.startswith("-")]
        return all(a == "-" for a in operands)
    return True


def _wraps(outer: EngineCommand, inner: EngineCommand) -> bool:
    size = len(inner.argv)
    return 0 < size < len(outer.argv) and tuple(outer.argv[-size:]) == tuple(inner.argv)


def _has_option(argv: Sequence[str], option: str) -> bool:
    for arg in argv[1:]:
        if arg == "--":
            return False
        if arg == option or (option.startswith("--") and arg.startswith(option + "=")):
            return True
        if len(option) == 2 and arg.startswith("-") and not arg.startswith("--"):
            if option[1] in arg[1:] and (option != "-P" or arg.startswith("-P")):
                return True
    return False
