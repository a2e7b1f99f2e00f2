"""Does this command run a file the bastion carried? Then judge what the file holds.

`sh f`, `bash f`, `. f`, `source f`, `./f`, `python3 f`, `perl f`, `sh < f`:
when f is in the record (bastion/relay/carried.py), the run is decided by
f's content, and the most severe verdict wins:

- shell text is decided as shell lines by the same Decider as any exec;
- an Ansible AnsiballZ payload is decoded (bastion/ansible/) and its module
  decided as the commands with the same reach (bastion/ansible/modules.py);
- other code (Python, Perl...) is not understood unless a rule allows the
  equivalent inline form (`python3 -c TEXT`);
- a carried file whose text the bastion does not hold (binary, too big,
  partially or concurrently written, changed since) is not understood.

A path the bastion cannot resolve statically while files were carried here,
and any script run after the record was poisoned (carried text may have
been copied anywhere), are not understood either. Not understood is
`review` under the rule `not-understood` (the SPEC's default unknown_action).

The engine being rewritten ("understood or held") takes a files context for
the same purpose; `CarriedFiles.files_for` is what to hand it, and then this
module's judging moves there (see the README's "Files carried, then run").
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bastion.ansible.ansiballz import NotAnsiballz, decode, looks_like_ansiballz
from bastion.ansible.modules import NotUnderstood, module_commands
from bastion.decide import Verdict
from bastion.relay.carried import CarriedFile, CarriedFiles
from bastion.relay.carried_commands import SimpleCommand, analyse
from bastion.relay.carried_effects import (
    SHELLS,
    Effects,
    Resolver,
    effects_of,
    scp_sink,
    stdin_files,
)

NOT_UNDERSTOOD = "not-understood"
MAX_DEPTH = 4  # carried scripts running carried scripts
SYSTEM_DIRS = ("/usr/", "/bin/", "/sbin/", "/lib/", "/lib64/", "/snap/bin/")
_PYTHON = re.compile(r"(python|pypy)[0-9.]*")
_INTERPRETER = re.compile(r"(perl|ruby|node|nodejs|php|lua|luajit|Rscript|tclsh)[0-9.]*")
_INLINE_FLAG = {"perl": "-e", "ruby": "-e", "node": "-e", "nodejs": "-e", "lua": "-e"}
_SHELL_VALUE_OPTIONS = frozenset({"-o", "+o", "-O", "+O", "--rcfile", "--init-file"})
_PYTHON_VALUE_OPTIONS = frozenset({"-W", "-X", "-Q", "--check-hash-based-pycs"})
# What the AnsiballZ wrapper imports before it drops its own directory from sys.path:
# a carried file of one of these names beside the payload would run first.
_SHADOWING = frozenset(
    {"datetime", "_datetime", "_pydatetime", "__future__", "math", "time", "operator",
     "_operator", "sitecustomize", "usercustomize"}
)  # fmt: skip
_UNSAFE_ENV = re.compile(r"PYTHON.*|PERL.*|RUBY.*|NODE_.*|LD_.*|BASH_ENV|ENV")
_SEVERITY = {"allow": 0, "alert": 1, "review": 2, "deny": 3}


def not_understood(reason: str) -> Verdict:
    return Verdict("review", NOT_UNDERSTOOD, reason[:1000])


def most_severe(verdicts: Sequence[Verdict]) -> Verdict:
    """Deny > review > alert > allow; a verdict that ends the session beats its equals."""
    return max(verdicts, key=lambda v: (_SEVERITY.get(v.action, 3), v.end_session))


def family(program: str) -> str | None:
    """shell, python, or the interpreter's name for a program that runs a script file."""
    name = program.rsplit("/", 1)[-1]
    if name in SHELLS:
        return "shell"
    if name in (".", "source"):
        return "source"
    if _PYTHON.fullmatch(name):
        return "python"
    match = _INTERPRETER.fullmatch(name)
    return match.group(1) if match else None


@dataclass(frozen=True)
class FileRun:
    """One simple command running a script file: `sh f`, `python3 f a b`, `./f`."""

    command: SimpleCommand
    word: str  # the file as written
    kind: str  # shell | source | python | perl ... | exec (by its #! line)
    args: tuple[str, ...] = ()


def file_runs(command: SimpleCommand) -> list[FileRun]:
    """The files a simple command runs as programs or scripts (none for `sh -c`, `python -m`)."""
    argv = command.argv
    kind = family(command.program)
    runs: list[FileRun] = []
    if argv and "/" in argv[0] and kind is None:
        runs.append(FileRun(command, argv[0], "exec", argv[1:]))
    if command.program == "exec":
        operands = [w for w in argv[1:] if not w.startswith("-")]
        if operands:
            runs.append(FileRun(command, operands[0], "exec", tuple(operands[1:])))
    if kind is None:
        return runs
    if kind == "source":
        if len(argv) > 1:
            runs.append(FileRun(command, argv[1], "shell", argv[2:]))
        return runs
    script, rest = _script_operand(argv, kind)
    if script is not None:
        runs.append(FileRun(command, script, kind, rest))
    elif script is None and rest == ("<stdin>",):
        runs += [FileRun(command, path, kind) for path in command.reads]
    return runs


def _script_operand(argv: tuple[str, ...], kind: str) -> tuple[str | None, tuple[str, ...]]:
    """(the script, its arguments); (None, ("<stdin>",)) when code comes on stdin; (None, ())
    when the code is given inline (`-c`, `-e`, `-m`)."""
    values = _SHELL_VALUE_OPTIONS if kind == "shell" else _PYTHON_VALUE_OPTIONS
    inline = {"shell": "c", "python": "cm"}.get(kind, "eEr")
    words = list(argv[1:])
    i = 0
    while i < len(words):
        word = words[i]
        if word == "--":
            i += 1
            break
        if word == "-":
            return None, ("<stdin>",)
        if word in values:
            i += 2
            continue
        if word.startswith("--"):
            if word in ("--eval", "--print", "--command"):
                return None, ()
            i += 1
            continue
        if word.startswith(("-", "+")) and len(word) > 1:
            letters = word[1:]
            if any(c in inline for c in letters):
                return None, ()
            if kind == "shell" and "s" in letters:
                return None, ("<stdin>",)
            if kind == "python" and letters[0] in "WX":  # -Wignore: value attached
                pass
            i += 1
            continue
        break
    if i >= len(words):
        return None, ("<stdin>",)
    return words[i], tuple(words[i + 1 :])


def shebang_kind(content: str) -> str:
    """How `./f` runs: by its #! line (none: the calling shell runs it as sh)."""
    if not content.startswith("#!"):
        return "shell"
    words = content[2:].split("\n", 1)[0].split()
    if not words:
        return "shell"
    program = words[0].rsplit("/", 1)[-1]
    if program == "env":
        rest = [w for w in words[1:] if not w.startswith("-") and "=" not in w]
        program = rest[0].rsplit("/", 1)[-1] if rest else ""
    return family(program) or f"#!{program}"


@dataclass
class Judgement:
    """What running the carried files of one line comes to."""

    verdict: Verdict | None  # None: the line runs no carried file, nothing to add
    effects: Effects = field(default_factory=Effects)
    notes: list[str] = field(default_factory=list)  # for the audit row: what was judged

    @property
    def detail(self) -> str | None:
        return "; ".join(self.notes)[:1000] if self.notes else None


class CarriedJudge:
    """Judges lines of one identity, target and login against the record."""

    def __init__(
        self,
        record: CarriedFiles,
        decide: Callable[[str], Verdict],
        *,
        identity: str,
        target: str,
        login: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.record = record
        self.decide = decide
        self.identity = identity
        self.target = target
        self.login = login
        self.env = dict(env or {})

    @property
    def resolver(self) -> Resolver:
        return Resolver(self.login, self.record.home(self.identity, self.target, self.login))

    def judge(self, line: str, depth: int = 0) -> Judgement:
        commands = analyse(line)
        resolver = self.resolver
        verdicts: list[Verdict] = []
        judged: list[SimpleCommand] = []
        total = Effects()
        notes: list[str] = []
        for command in commands:
            for run in file_runs(command):
                found = self._run(run, resolver, depth, total, notes)
                if found is not None:
                    verdicts.append(found)
                    judged.append(command)
        holds = lambda path: self.record.holds(self.identity, self.target, path)  # noqa: E731
        total.merge(effects_of(commands, resolver, judged, holds))
        verdict = most_severe(verdicts) if verdicts else None
        return Judgement(verdict, total, notes)

    def _run(
        self, run: FileRun, resolver: Resolver, depth: int, effects: Effects, notes: list[str]
    ) -> Verdict | None:
        """The verdict on one run, or None when it runs nothing the bastion carried."""
        identity, target = self.identity, self.target
        carried_here = bool(self.record.paths(identity, target))
        poisoned = self.record.poisoned(identity, target)
        path = resolver.path(run.word, run.command.cwd)
        if path is None:
            if carried_here or poisoned:
                return not_understood(
                    f"runs {run.word}, a path the bastion cannot know, where it carried files"
                )
            return None
        if any(c in path for c in "*?["):
            found = [p for p in self.record.matching(identity, target, path) if p != path]
            entries = [e for p in found if (e := self.record.get(identity, target, p))]
        else:
            entry = self.record.get(identity, target, path)
            entries = [entry] if entry is not None else []
        if not entries:
            if poisoned and run.kind != "exec" or poisoned and not path.startswith(SYSTEM_DIRS):
                return not_understood(
                    f"runs {path}, and files carried here may have been copied where the "
                    f"bastion cannot follow ({poisoned})"
                )
            return None
        verdicts = [self._content(run, entry, depth, effects, notes) for entry in entries]
        return most_severe(verdicts)

    def _content(
        self, run: FileRun, entry: CarriedFile, depth: int, effects: Effects, notes: list[str]
    ) -> Verdict:
        path = entry.path
        if depth >= MAX_DEPTH:
            return not_understood(f"{path}: carried scripts nested more than {MAX_DEPTH} deep")
        if entry.content is None:
            return not_understood(
                f"runs {path}, which the bastion carried ({entry.via}) but cannot judge: "
                f"{entry.why or 'its text is not known'}"
            )
        notes.append(f"runs carried {path} (sha256 {entry.sha256}, {entry.size} bytes)")
        kind = shebang_kind(entry.content) if run.kind == "exec" else run.kind
        if kind == "shell":
            return self._shell(path, entry.content, depth, effects)
        if kind == "python" and looks_like_ansiballz(entry.content):
            if run.args:
                return not_understood(f"{path}: an Ansible module run with arguments {run.args}")
            directory = path.rsplit("/", 1)[0]
            return self.ansible(entry.content, directory, effects, notes)
        return self._other_code(run, kind, path, entry.content)

    def _shell(self, path: str, text: str, depth: int, effects: Effects) -> Verdict:
        verdict = self.decide(text)
        inner = self.judge(text, depth + 1)
        effects.merge(inner.effects)
        found = most_severe([verdict, inner.verdict] if inner.verdict else [verdict])
        return _about(found, f"in {path}")

    def _other_code(self, run: FileRun, kind: str, path: str, text: str) -> Verdict:
        """Code the bastion does not analyse: allowed only by a rule naming its inline form."""
        flag = "-c" if kind == "python" else _INLINE_FLAG.get(kind)
        if flag is not None:
            program = run.command.program if run.kind != "exec" else kind
            verdict = self.decide(f"{program} {flag} {shlex.quote(text)}")
            if verdict.allowed and verdict.rule is not None:
                return verdict
        return not_understood(f"runs {path}: {kind.lstrip('#!')} code the bastion does not analyse")

    def ansible(self, text: str, directory: str, effects: Effects, notes: list[str]) -> Verdict:
        """An AnsiballZ payload run by python from `directory` (its script's, or the cwd)."""
        unsafe = sorted(name for name in self.env if _UNSAFE_ENV.fullmatch(name))
        if unsafe:
            return not_understood(f"an Ansible module run with {', '.join(unsafe)} set")
        shadow = self._importable_beside(directory)
        if shadow:
            return not_understood(f"an Ansible module run beside {shadow}, which Python may import")
        try:
            module = decode(text)
            effect = module_commands(module)
        except (NotAnsiballz, NotUnderstood) as exc:
            return not_understood(f"an Ansible module the bastion cannot vouch for: {exc}")
        notes.append(f"ansible {module.name} {dict(module.args)}"[:500])
        verdicts = []
        for command in effect.commands:
            verdicts.append(_about(self.decide(command), f"ansible {module.name}: {command}"))
            inner = self.judge(command, MAX_DEPTH - 1)
            effects.merge(inner.effects)
            if inner.verdict is not None:
                verdicts.append(inner.verdict)
        effects.copies.extend(effect.copies)
        return most_severe(verdicts)

    def _importable_beside(self, directory: str) -> str | None:
        """A file the bastion saw written that Python would import before the payload's own
        modules (a `datetime.py` beside it)."""
        prefix = directory.rstrip("/") + "/"
        for path in self.record.paths(self.identity, self.target):
            if path.startswith(prefix):
                name = path[len(prefix) :].split("/", 1)[0]
                if name.split(".", 1)[0] in _SHADOWING:
                    return path
        return None


def _about(verdict: Verdict, where: str) -> Verdict:
    if verdict.action == "allow":
        return verdict
    return Verdict(
        verdict.action,
        verdict.rule,
        f"{where}: {verdict.reason}"[:1000],
        verdict.timeout,
        verdict.approvers,
        verdict.end_session,
    )


@dataclass(frozen=True)
class CarriedVerdict(Verdict):
    """The answer of a decision worker on the carried files of one exec or line.

    A Verdict (so the decision pool carries it like any other), plus what the relay
    needs to follow the command: `judged` False means the line runs no carried file
    and the verdict adds nothing.
    """

    judged: bool = False
    effects: Effects = field(default_factory=Effects)
    detail: str | None = None
    stdin_files: tuple[str, ...] = ()  # `cat > f`: the agent's stdin becomes these files
    scp: tuple[str | None, bool] | None = None  # `scp -t DEST`: (DEST, DEST is a directory)


def judge_exec(
    decide: Callable[[str], Verdict],
    record: CarriedFiles,
    *,
    identity: str,
    target: str,
    login: str,
    command: str,
    env: Mapping[str, str] | None = None,
    pipelined: str | None = None,
    payload: str | None = None,
) -> CarriedVerdict:
    """What running `command` does with carried files (run in a decision worker, with a
    scope copy of the record). With `pipelined` (the command with its stdin-reading python
    replaced by `true`), `payload` is that stdin: an Ansible module, or not understood."""
    judge = CarriedJudge(record, decide, identity=identity, target=target, login=login, env=env)
    if pipelined is not None:
        return _judge_pipelined(judge, pipelined, payload or "")
    judgement = judge.judge(command)
    verdict = judgement.verdict or Verdict("allow", None, "runs no carried file")
    resolver = judge.resolver
    return CarriedVerdict(
        verdict.action,
        verdict.rule,
        verdict.reason,
        verdict.timeout,
        verdict.approvers,
        verdict.end_session,
        judged=judgement.verdict is not None,
        effects=judgement.effects,
        detail=judgement.detail,
        stdin_files=tuple(stdin_files(command, resolver)),
        scp=scp_sink(command, resolver),
    )


def _judge_pipelined(judge: CarriedJudge, substituted: str, text: str) -> CarriedVerdict:
    detail = f"pipelined python code on stdin ({len(text)} characters)"
    effects = Effects()
    notes = [detail]
    if looks_like_ansiballz(text):
        home = judge.record.home(judge.identity, judge.target, judge.login) or f"~{judge.login}"
        verdicts = [judge.ansible(text, home, effects, notes)]  # python runs in the home
    else:
        verdicts = [not_understood(f"{detail} that is not an Ansible module")]
    verdicts.append(judge.decide(substituted))
    wrapper = judge.judge(substituted)
    effects.merge(wrapper.effects)
    if wrapper.verdict is not None:
        verdicts.append(wrapper.verdict)
    found = most_severe(verdicts)
    return CarriedVerdict(
        found.action,
        found.rule,
        found.reason,
        found.timeout,
        found.approvers,
        found.end_session,
        judged=True,
        effects=effects,
        detail="; ".join(notes)[:1000],
    )
