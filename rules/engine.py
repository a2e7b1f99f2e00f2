"""evaluate(policies, request) -> Decision: the most severe matching rule wins.

Fails closed: a line that does not parse is never allowed, and any internal
error is a deny naming itself.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable, Sequence
from fnmatch import translate
from functools import lru_cache

from rules.globs import has_glob, overlaps
from rules.model import Action, Decision, Policy, Request, Rule, Scope, SimpleCommand
from rules.shell import analyse
from rules.tools import GLOBAL_VALUE_OPTIONS

log = logging.getLogger("rules")

UNPARSEABLE = "the line does not parse as shell"
# Programs that write to the files named in their arguments.
_WRITERS = frozenset(
    {"tee", "cp", "mv", "install", "ln", "dd", "truncate", "touch", "rsync", "sed"}
)


def evaluate(
    policies: Sequence[Policy], request: Request, *, default_action: Action = Action.ALLOW
) -> Decision:
    try:
        return _evaluate(policies, request, default_action)
    except Exception as exc:  # fail closed
        log.exception("rule evaluation failed")
        return Decision(
            Action.DENY, "internal-error", f"rule evaluation failed ({type(exc).__name__})"
        )


def _evaluate(policies: Sequence[Policy], request: Request, default_action: Action) -> Decision:
    commands = analyse(request.command)
    best: tuple[int, int, Rule] | None = None  # (severity, -order, rule)
    order = 0
    for policy in policies:
        index = _index(policy)
        # Candidates come most severe first, so the first match is this policy's answer.
        seen = None
        for negative_severity, position, rule in index.candidates(commands):
            if position == seen:
                continue  # filed under two of the line's programs
            seen = position
            rank = (-negative_severity, -(order + position))
            if best is not None and rank <= best[:2]:
                break
            if _in_scope(rule.scope, request) and _matcher(rule)(commands, request.command):
                best = (rank[0], rank[1], rule)
                break
        order += len(policy.rules)
    chosen = best[2] if best is not None else None
    if any(c.opaque and c.reason == UNPARSEABLE for c in commands):
        if chosen is None or chosen.action.severity < Action.DENY.severity:
            return Decision(
                Action.DENY, "unparseable", "the command line does not parse as shell", commands
            )
    if chosen is not None:
        return Decision(
            chosen.action,
            chosen.name,
            chosen.message,
            commands,
            chosen.timeout,
            chosen.approvers,
            chosen.end_session,
        )
    if not commands and request.command.strip():
        return Decision(
            Action.DENY, "unparseable", "no command could be read from the line", commands
        )
    return Decision(default_action, None, "no rule matched", commands)


class _RuleIndex:
    """A policy's rules filed under one condition each rule cannot match without.

    A rule naming programs is filed under them (globbed names are tried once
    per distinct program); a rule on SQL kinds, egress, opacity or written
    files only comes up when some command of the line has that feature; the
    rest come up for every line. Filing under a *necessary* condition keeps
    the decision exactly what checking every rule would give.
    """

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.by_program: dict[str, list[_Entry]] = {}
        self.program_globs: list[tuple[re.Pattern[str], _Entry]] = []
        self.when: dict[str, list[_Entry]] = {"sql": [], "egress": [], "opaque": [], "writes": []}
        self.always: list[_Entry] = []
        # (programs, features) -> candidates: lines share a few program sets.
        self.cache: dict[tuple[frozenset[str], tuple[bool, ...]], list[_Entry]] = {}
        for position, rule in enumerate(policy.rules):
            entry = (-rule.action.severity, position, rule)
            if rule.program:
                exact = [p for p in rule.program if not any(ch in p for ch in "*?[")]
                for program in exact:
                    self.by_program.setdefault(program, []).append(entry)
                globs = [translate(p) for p in rule.program if p not in exact]
                if globs:
                    self.program_globs.append((re.compile("|".join(globs)), entry))
            elif rule.sql:
                self.when["sql"].append(entry)
            elif rule.egress:
                self.when["egress"].append(entry)
            elif rule.opaque:
                self.when["opaque"].append(entry)
            elif rule.writes:
                self.when["writes"].append(entry)
            else:
                self.always.append(entry)

    def candidates(self, commands: tuple[SimpleCommand, ...]) -> list[_Entry]:
        """Rules that could match, most severe first, then in file order."""
        programs = frozenset(command.program for command in commands)
        features = (
            bool(self.when["sql"]) and any(command.sql for command in commands),
            bool(self.when["egress"]) and any(command.egress for command in commands),
            bool(self.when["opaque"]) and any(command.opaque for command in commands),
            bool(self.when["writes"])
            and any(command.writes or command.program in _WRITERS for command in commands),
        )
        key = (programs, features)
        found = self.cache.get(key)
        if found is None:
            if len(self.cache) > 4096:
                self.cache.clear()
            found = self.cache[key] = self._candidates(programs, features)
        return found

    def _candidates(self, programs: frozenset[str], features: tuple[bool, ...]) -> list[_Entry]:
        found = list(self.always)
        for program in programs:
            if has_glob(program):  # `/bin/r?`: any program it could expand to
                found += [e for entries in self.by_program.values() for e in entries]
            found += self.by_program.get(program, ())
            found += [entry for pattern, entry in self.program_globs if pattern.match(program)]
        for feature, present in zip(("sql", "egress", "opaque", "writes"), features, strict=True):
            if present:
                found += self.when[feature]
        found.sort(key=_entry_key)
        return found


_Entry = tuple[int, int, Rule]  # (-severity, position in the policy, rule)


def _entry_key(entry: _Entry) -> tuple[int, int]:
    return entry[0], entry[1]


_INDEXES: dict[int, _RuleIndex] = {}


def _index(policy: Policy) -> _RuleIndex:
    index = _INDEXES.get(id(policy))
    if index is None or index.policy is not policy:
        if len(_INDEXES) > 1000:
            _INDEXES.clear()
        index = _INDEXES[id(policy)] = _RuleIndex(policy)
    return index


def _in_scope(scope: Scope, request: Request) -> bool:
    if scope.roles and not any(_glob_any(role, scope.roles) for role in request.roles):
        return False
    if scope.targets and not (request.target and _glob_any(request.target, scope.targets)):
        return False
    if scope.logins and not (request.login and _glob_any(request.login, scope.logins)):
        return False
    return True


def _matches(rule: Rule, commands: tuple[SimpleCommand, ...], line: str) -> bool:
    return _matcher(rule)(commands, line)


_LineTest = Callable[[tuple[SimpleCommand, ...], str], bool]
_CommandTest = Callable[[SimpleCommand], bool]
_MATCHERS: dict[int, tuple[Rule, _LineTest]] = {}


def _matcher(rule: Rule) -> _LineTest:
    """The rule as one function of (commands, line), built once per rule.

    Only the conditions the rule sets are checked, cheapest first, so a
    candidate rule costs a few calls rather than a walk over every field.
    """
    entry = _MATCHERS.get(id(rule))
    if entry is None or entry[0] is not rule:
        if len(_MATCHERS) > 100_000:
            _MATCHERS.clear()
        entry = _MATCHERS[id(rule)] = (rule, _build_matcher(rule))
    return entry[1]


def _build_matcher(rule: Rule) -> _LineTest:
    tests = _command_tests(rule)
    regex = _regex(rule.regex) if rule.regex is not None else None
    if not tests:
        if regex is None:
            return lambda commands, line: True
        return lambda commands, line: regex.search(line) is not None

    def command_matches(command: SimpleCommand) -> bool:
        for test in tests:
            if not test(command):
                return False
        return True

    def matches(commands: tuple[SimpleCommand, ...], line: str) -> bool:
        if regex is not None and regex.search(line) is None:
            return False
        for command in commands:
            if command_matches(command):
                return True
        return False

    return matches


def _command_tests(rule: Rule) -> list[_CommandTest]:
    """One test per condition the rule sets, in the order they are cheapest to fail."""
    tests: list[_CommandTest] = []
    if rule.program:
        program = _GlobSet(rule.program, shell_words=True)
        tests.append(lambda c: program.match(c.program))
    if rule.command_path:
        command_path = _GlobSet(rule.command_path, shell_words=True)
        tests.append(lambda c: bool(c.argv) and command_path.match(c.argv[0]))
    if rule.opaque is not None:
        opaque = rule.opaque
        tests.append(lambda c: c.opaque == opaque)
    if rule.egress is not None:
        egress = rule.egress
        tests.append(lambda c: c.egress == egress)
    if rule.open_args is not None:
        open_args = rule.open_args
        tests.append(lambda c: c.open_args == open_args)
    if rule.sql:
        sql = rule.sql
        tests.append(lambda c: not sql.isdisjoint(c.sql))
    if rule.except_program:
        exempt = frozenset(rule.except_program)
        tests.append(lambda c: c.program not in exempt)
    if rule.except_args:
        exempt_args = _GlobSet(rule.except_args)
        tests.append(lambda c: not any(exempt_args.match(a) for a in c.argv[1:]))
    if rule.subcommand:
        subcommand = _GlobSet(rule.subcommand, shell_words=True)

        def has_subcommand(c: SimpleCommand) -> bool:
            positional = _positional(c.argv)
            return bool(positional) and subcommand.match(positional[0])

        tests.append(has_subcommand)
    if rule.all_flags:
        groups = rule.all_flags
        tests.append(lambda c: all(_has_flag(group, c.argv) for group in groups))
    if rule.any_flag:
        any_flag = rule.any_flag
        tests.append(lambda c: _has_flag(any_flag, c.argv))
    if rule.args:
        args = _GlobSet(rule.args, shell_words=True)
        tests.append(lambda c: args.any(c.argv, 1, c.cwd))
    if rule.paths:
        paths = _GlobSet(rule.paths, shell_words=True)
        tests.append(
            lambda c: (
                paths.any(c.argv, 1, c.cwd)
                or paths.any(c.reads, 0, c.cwd)
                or paths.any(c.writes, 0, c.cwd)
            )
        )
    if rule.writes:
        writes = _GlobSet(rule.writes, shell_words=True)

        def writes_to(c: SimpleCommand) -> bool:
            if writes.any(c.writes, 0, c.cwd):
                return True
            return _writes_arguments(c) and writes.any(_positional(c.argv), 0, c.cwd)

        tests.append(writes_to)
    return tests


class _GlobSet:
    """fnmatch against a list of patterns: exact names by set lookup, globs as one regex.

    With `shell_words`, the values are words from a command line: one holding
    a glob (`/et?`) matches a name the rule spells out that it could expand to
    (rules/globs.py),
    and a path is also tried without a trailing slash, with leading `../`
    read as climbing to `/`, and relative to a directory `cd` went to.
    """

    __slots__ = ("exact", "globs", "pattern", "shell_words")

    def __init__(self, patterns: tuple[str, ...], *, shell_words: bool = False) -> None:
        self.shell_words = shell_words
        self.exact = frozenset(p for p in patterns if not any(ch in p for ch in "*?["))
        self.globs = tuple(p for p in patterns if p not in self.exact)
        globs = [translate(p) for p in self.globs]
        self.pattern = re.compile("|".join(globs)) if globs else None

    def match(self, value: str) -> bool:
        if value in self.exact or (
            self.pattern is not None and self.pattern.match(value) is not None
        ):
            return True
        return self.shell_words and has_glob(value) and self._overlaps(value)

    def any(self, values: tuple[str, ...], start: int = 0, cwd: str | None = None) -> bool:
        """Whether any of values[start:] matches (a loop: this is the hot path)."""
        exact, pattern = self.exact, self.pattern
        for index in range(start, len(values)):
            value = values[index]
            if value in exact or (pattern is not None and pattern.match(value) is not None):
                return True
        if not self.shell_words:
            return False
        for spelling in _other_spellings(values, start, cwd):
            if spelling in exact or (pattern is not None and pattern.match(spelling) is not None):
                return True
            if has_glob(spelling) and self._overlaps(spelling):
                return True
        return False

    def _overlaps(self, word: str) -> bool:
        # Against the names a rule spells out (/etc/shadow, rm). Against a rule's own globs
        # (*/.ssh/id_rsa) only when the word's last name starts with a letter spelled out
        # (`id_*`, `sha*`): `dir/*` or `*.json` could meet nearly any such pattern.
        if any(overlaps(word, p) for p in self.exact):
            return True
        last = word.rstrip("/").rsplit("/", 1)[-1]
        if not last or last[0] in "*?[":
            return False
        return any(overlaps(word, p) for p in self.globs)


@lru_cache(maxsize=8192)
def _other_spellings(values: tuple[str, ...], start: int, cwd: str | None) -> tuple[str, ...]:
    """The same paths written other ways, and the values that hold a glob (cached: every
    candidate rule asks about the same words)."""
    found: list[str] = []
    for index in range(start, len(values)):
        value = values[index]
        if has_glob(value):
            found.append(value)
        if len(value) > 1 and value.endswith("/") and not value.startswith("-"):
            found.append(value.rstrip("/") or "/")
        if value.startswith("../"):
            found.append("/" + _CLIMB.sub("", value))  # ../../etc/shadow from somewhere deep
        if cwd and value and not value.startswith(("/", "~", "-")) and "://" not in value:
            found.append(posixpath.normpath(posixpath.join(cwd, value)))
    return tuple(found)


_CLIMB = re.compile(r"^(\.\./)+")


_SCOPES: dict[int, tuple[tuple[str, ...], _GlobSet]] = {}


def _glob_any(value: str, patterns: tuple[str, ...]) -> bool:
    """fnmatch against a pattern list, compiled once per list (scopes live as long as policies)."""
    entry = _SCOPES.get(id(patterns))
    if entry is None or entry[0] is not patterns:
        if len(_SCOPES) > 100_000:
            _SCOPES.clear()
        entry = _SCOPES[id(patterns)] = (patterns, _GlobSet(patterns))
    return entry[1].match(value)


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=8192)
def _positional(argv: tuple[str, ...]) -> tuple[str, ...]:
    """Arguments that are not options (cached: every candidate rule asks for the same argv)."""
    result: list[str] = []
    options_done = False
    takes_value = GLOBAL_VALUE_OPTIONS.get(posixpath.basename(argv[0]) if argv else "", ())
    skip = False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg == "--" and not options_done:
            options_done = True
            continue
        if not options_done and arg.startswith("-") and arg != "-":
            skip = arg in takes_value  # `aws --profile prod s3 ...`: prod is not the subcommand
            continue
        result.append(arg)
    return tuple(result)


def _writes_arguments(command: SimpleCommand) -> bool:
    """Whether the command writes the files it names (sed and perl only in place: -i)."""
    if command.program in ("sed", "perl"):
        return any(
            (len(a) > 3 and "--in-place".startswith(a.split("=", 1)[0]))  # --in, --in-pl
            or (a.startswith("-") and not a.startswith("--") and "i" in a[1:])  # -i, -ni
            for a in command.argv[1:]
        )
    return command.program in _WRITERS


def _has_flag(spellings: frozenset[str], argv: tuple[str, ...]) -> bool:
    """Whether argv gives one of the flag's spellings, or an abbreviation of a long one
    (GNU getopt takes any unambiguous prefix: `rm --rec` is `rm --recursive`)."""
    given = _flags(argv)
    if not spellings.isdisjoint(given):
        return True
    return any(
        len(flag) >= 3 and name.startswith(flag)
        for flag in _long_flags(argv)
        for name in spellings
        if len(name) > 3
    )


@lru_cache(maxsize=8192)
def _long_flags(argv: tuple[str, ...]) -> tuple[str, ...]:
    found = []
    for arg in argv[1:]:
        if arg == "--":
            break
        if arg.startswith("--") and len(arg) > 4:
            found.append(arg[2:].split("=", 1)[0])
    return tuple(found)


@lru_cache(maxsize=8192)
def _flags(argv: tuple[str, ...]) -> frozenset[str]:
    """Every spelling of every flag: -rf gives r and f; --force=x gives force; -name gives name too."""
    found: set[str] = set()
    for arg in argv[1:]:
        if arg == "--":
            break
        if arg.startswith("--") and len(arg) > 2:
            found.add(arg[2:].split("=", 1)[0])
        elif arg.startswith("-") and len(arg) > 1 and not arg[1].isdigit():
            body = arg[1:]
            found.update(body)
            if len(body) > 1:
                found.add(body)
    return frozenset(found)
