"""What an allowed command line does to the files the bastion carried.

The record (bastion/relay/carried.py) is only worth something if a file
cannot change behind it. So every command the bastion lets through is read
for what it may write: `rm` removes entries, `mv`/`cp` move or copy them
(exactly, once the command exits 0), a redirection or `tee`/`dd` marks its
file written with bytes unseen, and a command the bastion cannot follow
(any program not known to leave files alone) poisons the scope: every entry
becomes unknown. When such a command names a carried file (or a directory
holding one), is opaque, or makes a link, carried text may now be under any
name: the scope is marked spread, and from then on a script run that is not
in the record is not understood either.

    >>> from rules import analyse
    >>> effects = effects_of(analyse("rm -rf /srv/app && ls"), Resolver("deploy", None))
    >>> effects.removed, effects.poison
    (['/srv/app'], None)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from bastion.relay.carried import CarriedFiles, resolve
from bastion.relay.carried_commands import SimpleCommand, analyse

# Programs that write no file (beyond redirections, read separately) and run no code of
# their own; wrappers are here too, as the analysis reports the wrapped command apart.
LEAVES_FILES_ALONE = frozenset(
    """
    cat ls dir stat file head tail wc grep egrep fgrep cut tr uniq echo printf pwd id
    whoami groups hostname uname uptime date df du free ps pgrep which type command test
    [ [[ true false : sleep printenv sha256sum sha1sum sha512sum sha224sum sha384sum md5sum
    cksum b2sum diff cmp basename dirname realpath readlink seq nproc lsb_release lscpu
    lsblk getent w who last umask cd pushd popd export set unset shopt local readonly
    declare typeset hash ulimit wait jobs exit return alias less more jq column nl od
    hexdump strings base64 chmod chown chgrp touch mkdir env sudo doas nice ionice
    timeout nohup stdbuf time exec xargs watch journalctl ss netstat ping
    dig host nslookup lsof lsattr locale tty stty logname users arch
    """.split()
)
SHELLS = frozenset({"sh", "bash", "dash", "zsh", "ksh", "mksh", "ash", "busybox"})
_SYSTEMCTL_READS = frozenset(
    {"status", "show", "cat", "is-active", "is-enabled", "is-failed", "list-units",
     "list-unit-files", "list-timers", "list-sockets", "list-dependencies", "--version"}
)  # fmt: skip
_FIND_ACTIONS = frozenset(
    {"-delete", "-exec", "-execdir", "-ok", "-okdir", "-fprint", "-fprint0", "-fprintf", "-fls"}
)
_DEVICES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/fd/")
_CP_FLAGS = frozenset("aRrfpvdPLHnuxil")
_MV_FLAGS = frozenset("fivnu")


@dataclass(frozen=True)
class Resolver:
    """How a login's command names paths (see carried.resolve)."""

    login: str
    home: str | None

    def path(self, word: str, cwd: str | None = None) -> str | None:
        return resolve(word, login=self.login, home=self.home, cwd=cwd)


@dataclass
class Effects:
    unknown: list[str] = field(default_factory=list)  # written with bytes the bastion did not see
    removed: list[str] = field(default_factory=list)
    moves: list[tuple[str, str]] = field(default_factory=list)  # exact once the command exits 0
    copies: list[tuple[str, str]] = field(default_factory=list)
    poison: str | None = None  # entries are not known any more
    spread: str | None = None  # ...and their text may be under other names

    def merge(self, other: Effects) -> None:
        self.unknown += other.unknown
        self.removed += other.removed
        self.moves += other.moves
        self.copies += other.copies
        self.poison = self.poison or other.poison
        self.spread = self.spread or other.spread

    def poisoned(self, why: str, *, spread: bool = False) -> None:
        self.poison = self.poison or why
        if spread:
            self.spread = self.spread or why

    @property
    def empty(self) -> bool:
        return not (self.unknown or self.removed or self.moves or self.copies or self.poison)


def _operands(argv: Sequence[str]) -> tuple[set[str], list[str]]:
    """(single-letter and long flags, operands) of a command with flags that take no value."""
    flags: set[str] = set()
    operands: list[str] = []
    options = True
    for word in argv[1:]:
        if options and word == "--":
            options = False
        elif options and word.startswith("--"):
            flags.add(word)
        elif options and word.startswith("-") and word != "-":
            flags.update(word[1:])
        else:
            operands.append(word)
    return flags, operands


def _written(command: SimpleCommand, resolver: Resolver, effects: Effects) -> None:
    for word in command.writes:
        if word.startswith(_DEVICES):
            continue
        path = resolver.path(word, command.cwd)
        if path is None:
            effects.poisoned(f"{command.program} writes to a path the bastion cannot know")
        else:
            effects.unknown.append(path)


def _two_paths(
    command: SimpleCommand, resolver: Resolver, allowed: frozenset[str]
) -> list[tuple[str, str]] | None:
    """(source, destination) pairs of `cp`/`mv SRC... DEST`, or None when not exact."""
    flags, operands = _operands(command.argv)
    if not flags <= allowed or len(operands) < 2 or command.open_args:
        return None
    paths = [resolver.path(word, command.cwd) for word in operands]
    if any(p is None or any(c in p for c in "*?[") for p in paths):
        return None
    *sources, destination = paths
    assert destination is not None
    pairs = []
    for source in sources:
        assert source is not None
        if len(sources) == 1:
            pairs.append((source, destination))  # DEST is the new name...
        if "T" not in flags:
            base = source.rstrip("/").rsplit("/", 1)[-1]
            pairs.append((source, f"{destination.rstrip('/')}/{base}"))  # ...or a directory
    return pairs


def effects_of(
    commands: Iterable[SimpleCommand],
    resolver: Resolver,
    judged: Sequence[SimpleCommand] = (),
    carried: Callable[[str], bool] = lambda path: False,
) -> Effects:
    """The effects of the simple commands of one allowed line (see the module doc).

    `judged` are the commands that run a carried file: their content's effects are the
    caller's to add (bastion/relay/carried_runs.py), not a poisoning unknown run.
    `carried(path)` says whether a path is, or holds, a file in the record.
    """
    effects = Effects()
    for command in commands:
        _written(command, resolver, effects)
        program = command.program
        if any(command is j for j in judged):
            continue
        if command.opaque:
            effects.poisoned(f"an opaque command ran ({command.reason or program})", spread=True)
        elif program == "ln":
            effects.poisoned("a link was made: a path may now name another file", spread=True)
        elif program in ("rm", "unlink", "rmdir"):
            _flags, operands = _operands(command.argv)
            for word in operands:
                path = resolver.path(word, command.cwd)
                if path is None or command.open_args:
                    effects.poisoned(f"{program} of a path the bastion cannot know")
                else:
                    effects.removed.append(path)
        elif program in ("mv", "cp"):
            pairs = _two_paths(command, resolver, _MV_FLAGS if program == "mv" else _CP_FLAGS)
            if pairs is None:
                effects.poisoned(f"{program} with arguments the bastion cannot follow")
            else:
                (effects.moves if program == "mv" else effects.copies).extend(pairs)
        elif program in ("tee", "dd"):
            targets, _append = stdin_targets(command, resolver)
            if targets is None:
                effects.poisoned(f"{program} with arguments the bastion cannot follow")
            else:
                effects.unknown.extend(targets)
        elif program == "find":
            if _FIND_ACTIONS & set(command.argv):
                effects.poisoned("find with an action that writes or runs")
        elif program == "systemctl":
            _flags, operands = _operands(command.argv)
            if operands and operands[0] not in _SYSTEMCTL_READS:
                effects.poisoned(f"systemctl {operands[0]} runs units")
        elif program in SHELLS and ("-c" in command.argv or _has_c_flag(command.argv)):
            continue  # the string is analysed as its own commands
        elif program == "scp" and "-f" in command.argv:
            continue  # sends files, writes none
        elif program == "scp" and "-t" in command.argv:
            continue  # the scp observer records what arrives
        elif program not in LEAVES_FILES_ALONE:
            named = _names_carried(command, resolver, carried)
            why = f"{program} may change files the bastion cannot follow"
            effects.poisoned(f"{why} ({named})" if named else why, spread=named is not None)
    return effects


def _names_carried(
    command: SimpleCommand, resolver: Resolver, carried: Callable[[str], bool]
) -> str | None:
    """The first word of a command that names a carried file or a directory holding one."""
    for word in (*command.argv[1:], *command.reads):
        value = word.partition("=")[2] if word.startswith("-") and "=" in word else word
        if value.startswith("-"):
            continue
        path = resolver.path(value, command.cwd)
        if path is None:
            return value  # a computed word: it may name anything
        if carried(path):
            return value
    return None


def _has_c_flag(argv: Sequence[str]) -> bool:
    return any(w.startswith("-") and not w.startswith("--") and "c" in w for w in argv[1:3])


def stdin_targets(command: SimpleCommand, resolver: Resolver) -> tuple[list[str] | None, bool]:
    """(files `tee`/`dd` write their input to, appending?), or (None, False) when not exact."""
    if command.program == "tee":
        flags, operands = _operands(command.argv)
        if not flags <= {"a", "i", "p", "--append", "--ignore-interrupts"}:
            return None, False
        paths = [resolver.path(w, command.cwd) for w in operands]
        if any(p is None for p in paths):
            return None, False
        return [p for p in paths if p is not None], bool(flags & {"a", "--append"})
    if command.program == "dd":
        outputs = []
        for word in command.argv[1:]:
            key, _, value = word.partition("=")
            if key == "of":
                outputs.append(value)
            elif key not in ("bs", "obs", "ibs", "status"):
                return None, False
        paths = [resolver.path(w, command.cwd) for w in outputs]
        if len(paths) != 1 or paths[0] is None:
            return None, False
        return [paths[0]], False
    return [], False


class Applied:
    """Effects applied to the record: the worst case now, the exact result on success."""

    def __init__(self, record: CarriedFiles, identity: str, target: str, effects: Effects):
        self.record = record
        self.identity = identity
        self.target = target
        self.effects = effects
        self.version = -1

    def before(self) -> None:
        """Before the command runs: what it may write is unknown from now on."""
        record, identity, target, effects = self.record, self.identity, self.target, self.effects
        if effects.poison:
            record.poison(identity, target, effects.poison, spread=effects.spread)
        for path in effects.unknown:
            record.mark_unknown(identity, target, path, "written by a command", via="command")
        for path in effects.removed:
            for found in record.matching(identity, target, path):
                record.mark_unknown(identity, target, found, "being removed", via="command")
        for _source, destination in effects.moves + effects.copies:
            if record.matching(identity, target, destination) or record.matching(
                identity, target, _source
            ):
                record.mark_unknown(identity, target, destination, "being replaced", "command")
        self.version = record.version(identity, target)

    def succeeded(self) -> None:
        """The command exited 0: removals, moves and copies are exact, if nothing else moved."""
        record, identity, target, effects = self.record, self.identity, self.target, self.effects
        if record.version(identity, target) != self.version:
            return  # something else changed the scope meanwhile: keep the worst case
        for path in effects.removed:
            record.remove(identity, target, path)
        for source, destination in effects.moves + effects.copies:
            record.copy(identity, target, source, destination)
        for source in dict.fromkeys(source for source, _ in effects.moves):
            record.remove(identity, target, source)


def stdin_files(command: str, resolver: Resolver) -> list[str]:
    """`cat > f`, `tee f`, `dd of=f` and nothing else on the line: the files the agent's
    stdin becomes (appending forms excluded: earlier bytes would remain)."""
    commands = analyse(command)
    if len(commands) != 1 or ">>" in command:
        return []
    only = commands[0]
    if only.opaque or only.reads or only.cwd or only.open_args:
        return []
    if only.program == "cat" and only.argv in (("cat",), ("cat", "-")):
        if len(only.writes) != 1:
            return []
        found = resolver.path(only.writes[0])
        return [found] if found else []
    if only.program in ("tee", "dd") and not only.writes:
        paths, append = stdin_targets(only, resolver)
        return [] if paths is None or append else paths[:16]
    return []


def scp_sink(command: str, resolver: Resolver) -> tuple[str | None, bool] | None:
    """`scp -t [-d] [-r] [-p] [-v] [--] DEST`, the sink of a legacy scp upload:
    (DEST as the record names it, or None when it cannot be known; DEST must be a
    directory); None for any other command."""
    commands = analyse(command)
    if len(commands) != 1 or commands[0].program != "scp" or commands[0].opaque:
        return None
    words = list(commands[0].argv[1:])
    flags: set[str] = set()
    while words and words[0].startswith("-") and words[0] != "--":
        flags.update(words.pop(0)[1:])
    if words and words[0] == "--":
        words.pop(0)
    if "t" not in flags or not flags <= set("tdrpvq") or len(words) != 1:
        return None
    return resolver.path(words[0]), "d" in flags
