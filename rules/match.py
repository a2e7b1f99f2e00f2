"""Rules compiled into tests over one Command, and an index that finds the rules a
command could match.

A rule is filed under one condition it cannot match without (a program it
names, a capability, a kind of fact the command must have); a command asks
for the rules filed under its own program, capabilities and facts, so only
those are tried, most severe first. That is exactly what trying every rule
would decide, at a fraction of the cost.

Paths: a rule's patterns are fnmatch globs (`*` also matches `/`) over
canonical paths (rules/paths.py); a command's path that is itself a glob
(`/etc/sha*`, find's `/**/id_rsa`) matches when the two patterns share a
match (rules/globs.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from fnmatch import translate
from functools import lru_cache

from rules.globs import _bash_regex, has_glob, overlaps, rule_regex
from rules.model import Command, Policy, Request, Rule, Scope
from rules.paths import canonical_prefix

CommandTest = Callable[[Command], bool]


class Patterns:
    """fnmatch patterns: exact names by set lookup, globs as one regex; optionally
    matched against words that are globs themselves."""

    __slots__ = ("exact", "globs", "regex", "shell", "by_last", "literal_last")

    def __init__(
        self, patterns: tuple[str, ...], *, shell: bool = False, paths: bool = False
    ) -> None:
        self.shell = shell
        self.exact = frozenset(p for p in patterns if not any(ch in p for ch in "*?["))
        self.globs = tuple(p for p in patterns if p not in self.exact)
        convert = (lambda p: rule_regex(p) + r"\Z") if paths else translate
        self.regex = re.compile("|".join(convert(p) for p in self.globs)) if self.globs else None
        # For glob words: each pattern by its last name, to try only those that could agree.
        self.by_last: list[tuple[str, str, re.Pattern[str] | None]] = []
        for pattern in (*self.exact, *self.globs):
            last = pattern.rstrip("/").rsplit("/", 1)[-1]
            literal = not any(ch in last for ch in "*?[")
            self.by_last.append(
                (pattern, last, None if literal else re.compile(rule_regex(last) + r"\Z"))
            )
        self.literal_last = [(p, last) for p, last, regex in self.by_last if regex is None]

    def match(self, value: str) -> bool:
        if value in self.exact:
            return True
        if self.regex is not None and self.regex.match(value) is not None:
            return True
        return self.shell and has_glob(value) and self._overlaps(value)

    def any(self, values: tuple[str, ...] | frozenset[str]) -> bool:
        exact, regex = self.exact, self.regex
        for value in values:
            if value in exact or (regex is not None and regex.match(value) is not None):
                return True
        if self.shell:
            for value in values:
                if has_glob(value) and self._overlaps(value):
                    return True
        return False

    def _overlaps(self, word: str) -> bool:
        """A rule pattern's wildcards describe the names it protects (`id_*`), not any
        name at all: a word whose last name is itself a wildcard (`cat *`, find's
        `/etc/**/*`) meets only paths a rule spells out in full (`/etc/shadow`,
        `~/.ssh/id_rsa`). Last names are compared first (cheap); the full overlap search
        runs on the few left."""
        last = word.rstrip("/").rsplit("/", 1)[-1]
        if not last or any(ch in last for ch in "*?["):
            # `cat *`, `/etc/**/*`: only the paths a rule spells out in full
            if last == "**" or not last:
                return any(overlaps(word, p) for p in self.exact)
            name = _last_name_regex(last)
            return any(
                overlaps(word, p)
                for p in self.exact
                if name.fullmatch(p.rstrip("/").rsplit("/", 1)[-1])
            )
        for pattern, name_last, regex in self.by_last:
            if (name_last == last if regex is None else regex.match(last) is not None) and (
                overlaps(word, pattern)
            ):
                return True
        return False


@lru_cache(maxsize=1024)
def _last_name_regex(name: str) -> re.Pattern[str]:
    """A glob word's last name as bash matches it (a wildcard never matches a leading dot);
    a few hundred bytes each, 1,024 at most."""
    return _bash_regex(name)


def _paths(patterns: tuple[str, ...]) -> Patterns:
    return Patterns(
        tuple(dict.fromkeys(canonical_prefix(p) for p in patterns)), shell=True, paths=True
    )


def command_tests(rule: Rule) -> list[CommandTest]:
    """One test per condition the rule sets, cheapest first."""
    tests: list[CommandTest] = []
    if rule.program:
        programs = Patterns(rule.program)
        tests.append(lambda c: programs.match(c.program))
    if rule.except_program:
        exempt = frozenset(rule.except_program)
        tests.append(lambda c: c.program not in exempt)
    if rule.understood is not None:
        understood = rule.understood
        tests.append(lambda c: c.understood == understood)
    for name in ("runs_input", "runs_downloaded", "open_args"):
        wanted = getattr(rule, name)
        if wanted is not None:
            tests.append(lambda c, name=name, wanted=wanted: getattr(c, name) == wanted)
    if rule.caps:
        caps = rule.caps
        tests.append(lambda c: not caps.isdisjoint(c.caps))
    if rule.all_caps:
        all_caps = rule.all_caps
        tests.append(lambda c: all_caps <= c.caps)
    if rule.feeds:
        feeds = rule.feeds
        tests.append(lambda c: not feeds.isdisjoint(c.feeds))
    if rule.sql:
        sql = rule.sql
        tests.append(lambda c: not sql.isdisjoint(c.sql))
    if rule.subcommand:
        subcommand = Patterns(rule.subcommand)
        tests.append(lambda c: bool(c.subcommand) and subcommand.match(" ".join(c.subcommand)))
    if rule.command_path:
        command_path = Patterns(rule.command_path, shell=True)
        tests.append(lambda c: bool(c.argv) and command_path.match(c.argv[0]))
    if rule.all_flags:
        groups = rule.all_flags
        tests.append(lambda c: all(not group.isdisjoint(c.flags) for group in groups))
    if rule.any_flag:
        any_flag = rule.any_flag
        tests.append(lambda c: not any_flag.isdisjoint(c.flags))
    if rule.except_flags:
        except_flags = rule.except_flags
        tests.append(lambda c: except_flags.isdisjoint(c.flags))
    if rule.args:
        args = Patterns(rule.args, shell=True)
        tests.append(lambda c: args.any(c.argv[1:]))
    for group in rule.all_args:
        each = Patterns(group, shell=True)
        tests.append(lambda c, each=each: each.any(c.argv[1:]))
    if rule.except_args:
        except_args = Patterns(rule.except_args)
        tests.append(lambda c: not except_args.any(c.argv[1:]))
    if rule.options:
        options = Patterns(rule.options)
        tests.append(lambda c: options.any(tuple(f"{o}={v}" for o, v in c.options)))
    for field in ("reads", "writes", "deletes", "runs", "sends"):
        patterns = getattr(rule, field)
        if patterns:
            compiled = _paths(patterns)
            tests.append(lambda c, field=field, compiled=compiled: compiled.any(getattr(c, field)))
    if rule.paths:
        paths = _paths(rule.paths)
        tests.append(
            lambda c: (
                paths.any(c.reads)
                or paths.any(c.writes)
                or paths.any(c.deletes)
                or paths.any(c.runs)
            )
        )
    if rule.via:
        via = Patterns(rule.via)
        tests.append(lambda c: via.any(c.via))
    if rule.except_via:
        except_via = Patterns(rule.except_via)
        tests.append(lambda c: not except_via.any(c.via))
    if rule.hosts:
        hosts = Patterns(rule.hosts)
        tests.append(lambda c: hosts.any(c.hosts))
    if rule.units:
        units = Patterns(rule.units)
        tests.append(lambda c: units.any(tuple(_unit_names(c.units))))
    if rule.targets:
        targets = Patterns(rule.targets)
        tests.append(lambda c: targets.any(c.targets))
    return tests


def _unit_names(units: tuple[str, ...]) -> list[str]:
    found = []
    for unit in units:
        found.append(unit)
        if unit.endswith(".service"):
            found.append(unit[: -len(".service")])
    return found


class CompiledRule:
    __slots__ = ("rule", "tests", "line_regex", "line_exact", "order", "severity", "unconditional")

    def __init__(self, rule: Rule, order: int) -> None:
        self.rule = rule
        self.order = order
        self.severity = rule.action.severity
        self.tests = command_tests(rule)
        self.line_regex = re.compile(rule.regex) if rule.regex is not None else None
        self.line_exact = frozenset(" ".join(line.split()) for line in rule.line)
        scope = rule.scope
        self.unconditional = (
            self.line_regex is None
            and not self.line_exact
            and not scope.roles
            and not scope.targets
            and not scope.logins
            and not scope.identities
        )

    def line_matches(self, line: str, normalized: str) -> bool:
        if self.line_regex is not None and self.line_regex.search(line) is None:
            return False
        if self.line_exact and normalized not in self.line_exact:
            return False
        return True

    def matches(self, command: Command) -> bool:
        for test in self.tests:
            if not test(command):
                return False
        return True


_FEATURES = ("reads", "writes", "deletes", "runs", "sends", "hosts", "sql", "units", "targets")


class RuleIndex:
    """A list of policies' rules, filed for fast candidate lookup."""

    MAX_CACHE = 4096  # candidate lists kept; each a list of references (~64 B + 8 B per rule)

    def __init__(self, policies: tuple[Policy, ...]) -> None:
        self.by_program: dict[str, list[CompiledRule]] = {}
        self.program_globs: list[tuple[re.Pattern[str], CompiledRule]] = []
        self.by_cap: dict[str, list[CompiledRule]] = {}
        self.by_feature: dict[str, list[CompiledRule]] = {f: [] for f in _FEATURES}
        self.not_understood: list[CompiledRule] = []
        self.always: list[CompiledRule] = []
        self.cache: dict[tuple[object, ...], list[CompiledRule]] = {}
        order = 0
        for policy in policies:
            for rule in policy.rules:
                self._file(CompiledRule(rule, order))
                order += 1

    def _file(self, compiled: CompiledRule) -> None:
        rule = compiled.rule
        if rule.program:
            exact = [p for p in rule.program if not any(ch in p for ch in "*?[")]
            for program in exact:
                self.by_program.setdefault(program, []).append(compiled)
            globs = [translate(p) for p in rule.program if p not in exact]
            if globs:
                self.program_globs.append((re.compile("|".join(globs)), compiled))
        elif rule.caps:
            for cap in rule.caps:
                self.by_cap.setdefault(cap, []).append(compiled)
        elif rule.all_caps:
            self.by_cap.setdefault(next(iter(sorted(rule.all_caps))), []).append(compiled)
        elif rule.understood is False:
            self.not_understood.append(compiled)
        else:
            for feature in _FEATURES:
                if getattr(rule, feature) or (feature == "reads" and rule.paths):
                    if feature == "reads" and rule.paths:
                        for kind in ("reads", "writes", "deletes", "runs"):
                            self.by_feature[kind].append(compiled)
                    else:
                        self.by_feature[feature].append(compiled)
                    break
            else:
                self.always.append(compiled)

    def candidates(self, command: Command) -> list[CompiledRule]:
        key = (
            command.program,
            command.caps,
            command.understood,
            bool(command.reads),
            bool(command.writes),
            bool(command.deletes),
            bool(command.runs),
            bool(command.sends),
            bool(command.hosts),
            bool(command.sql),
            bool(command.units),
            bool(command.targets),
        )
        found = self.cache.get(key)
        if found is None:
            if len(self.cache) >= self.MAX_CACHE:
                self.cache.clear()
            found = self.cache[key] = self._candidates(command)
        return found

    def _candidates(self, command: Command) -> list[CompiledRule]:
        found: dict[int, CompiledRule] = {}
        for compiled in self.by_program.get(command.program, ()):
            found[compiled.order] = compiled
        for pattern, compiled in self.program_globs:
            if pattern.match(command.program):
                found[compiled.order] = compiled
        for cap in command.caps:
            for compiled in self.by_cap.get(cap, ()):
                found[compiled.order] = compiled
        for feature in _FEATURES:
            if getattr(command, feature):
                for compiled in self.by_feature[feature]:
                    found[compiled.order] = compiled
        if not command.understood:
            for compiled in self.not_understood:
                found[compiled.order] = compiled
        for compiled in self.always:
            found[compiled.order] = compiled
        return sorted(found.values(), key=lambda c: (-c.severity, c.order))


def in_scope(scope: Scope, request: Request) -> bool:
    if scope.roles and not any(Patterns(scope.roles).match(r) for r in request.roles):
        return False
    if scope.targets and not (request.target and Patterns(scope.targets).match(request.target)):
        return False
    if scope.logins and not (request.login and Patterns(scope.logins).match(request.login)):
        return False
    if scope.identities and not (request.user and Patterns(scope.identities).match(request.user)):
        return False
    return True
