"""Every simple command a shell line would run, read with tree-sitter-bash and a model
of the shell's state.

    >>> [c.program for c in analyse("sudo r'm' -rf / ; echo $(id)").commands]
    ['sudo', 'rm', 'id', 'echo']

The walk visits lists, pipelines, subshells, groups, command and process
substitutions, functions (at the call, with their arguments), loops and
conditionals (every branch: any of them may run), and the strings and
words handed to other programs as commands (rules/invoke.py). Variables,
`cd`, aliases, functions and files written are tracked in a ShellState,
so a later command is read with what earlier ones set up, within the line
and, through the Context, across lines. Subshells, pipeline stages and
substitutions get a copy of the state, as in bash.

Budgets bound the work (nested parses, commands, words, time): past one,
the line is not understood, never allowed by accident.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from rules import fastpath
from rules.catalog import CATALOG
from rules.context import Context, ShellState
from rules.model import Command, Reason
from rules.values import ANY, SAFE, Word
from rules.words import Expander, node_text

MAX_LINE = 64 * 1024
MAX_DEPTH = 12  # nested lines: sh -c inside ssh inside sudo...
MAX_PARSES = 128
MAX_COMMANDS = 512
MAX_SECONDS = 1.0  # CPU seconds: a line still being read after this is not understood

_PARSER = Parser(Language(tree_sitter_bash.language()))


@dataclass(slots=True)
class Feed:
    """What a command's standard input is."""

    kind: str  # agent (the SSH channel) | pipe | text | file | none
    text: str | None = None  # what it holds, when known
    caps: frozenset[str] = frozenset()  # capabilities of the commands producing it
    path: str | None = None


AGENT = Feed("agent")


@dataclass(slots=True)
class Outcome:
    """What a statement printed (for pipes and substitutions): known text or a class."""

    text: str | None = None
    unknown: int = ANY
    caps: frozenset[str] = frozenset()
    paths: str | None = None  # a glob every line it prints matches (find, git ls-files)


NOTHING = Outcome("", 0)


@dataclass(slots=True)
class Analysis:
    commands: list[Command] = field(default_factory=list)
    reasons: list[Reason] = field(default_factory=list)  # line-level: parse, budget
    unparseable: bool = False
    context: Context | None = None


class BudgetExceeded(Exception):
    pass


# The budget counts this thread's CPU time: a busy machine or another thread does not use
# up a line's budget, only the work of reading the line does.
_clock = time.thread_time


def lost_text(node: Node) -> str | None:
    """Text between a node's children that is not blank: tree-sitter-bash drops the
    word `-` in `cat - 2>x`. A word the parser lost could be anything, so the line is
    then not understood rather than read without it."""
    children = node.children
    if len(children) < 2:
        return None
    text = node.text or b""
    base = node.start_byte
    end = children[0].end_byte
    for child in children[1:]:
        start = child.start_byte
        if start > end:
            gap = text[end - base : start - base].replace(b"\\\n", b"")
            if gap.strip():
                return gap.strip().decode(errors="replace")[:40]
        end = child.end_byte
    return None


class Walker:
    """Reads one line (and everything nested in it) into Commands."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.analysis = Analysis()
        self.parses = 0
        self.deadline = _clock() + MAX_SECONDS
        self.compile_seen = CATALOG.compile_seconds
        self.expanding_aliases: set[str] = set()
        self.fast = True  # plain lines skip tree-sitter (rules/fastpath.py)
        self.proc_caps: set[str] = set()  # what process substitutions on the line do
        self.calling: list[str] = []

    # --- budget --------------------------------------------------------------------

    def check_budget(self) -> None:
        if len(self.analysis.commands) >= MAX_COMMANDS:
            raise BudgetExceeded("too many commands to analyse")
        if _clock() > self.deadline:
            # compiling a program the first time it is used is not this line's cost
            self.deadline += CATALOG.compile_seconds - self.compile_seen
            self.compile_seen = CATALOG.compile_seconds
            if _clock() > self.deadline:
                raise BudgetExceeded("the line took too long to analyse")

    def emit(self, command: Command, at: int | None = None) -> None:
        self.check_budget()
        if at is None or at >= len(self.analysis.commands):
            self.analysis.commands.append(command)
        else:
            self.analysis.commands.insert(at, command)

    # --- lines ---------------------------------------------------------------------

    def line(
        self, text: str, state: ShellState, *, via: tuple[str, ...], depth: int, feed: Feed
    ) -> Outcome:
        if depth > MAX_DEPTH:
            raise BudgetExceeded("commands nested too deeply")
        self.parses += 1
        if self.parses > MAX_PARSES:
            raise BudgetExceeded("too much nested code to analyse")
        if len(text) > MAX_LINE:
            raise BudgetExceeded("the command line is too long to analyse")
        if "\x00" in text:
            self.analysis.unparseable = True
            self.analysis.reasons.append(Reason("", "the line holds a NUL byte"))
            return Outcome()
        text = _joined(text)
        if self.fast:
            plain = fastpath.tokens(text)
            if plain is not None:
                return self.plain(plain, state, feed, via, depth)
        safe, unusual = _parser_safe(text)
        if unusual:
            self.analysis.reasons.append(
                Reason("", "the line holds characters from unassigned or private Unicode planes")
            )
        tree = _PARSER.parse(safe.encode("utf-8", errors="replace"))
        root = tree.root_node
        if root.has_error:
            self.analysis.unparseable = True
            where = _first_error(root)
            self.analysis.reasons.append(Reason(where, "the line does not parse as shell"))
        return self.block(root, state, feed, via, depth)

    def plain(
        self, line: list, state: ShellState, feed: Feed, via: tuple[str, ...], depth: int
    ) -> Outcome:
        """A line rules/fastpath.py read: its words need no expansion."""

        outcome = NOTHING
        for pipeline, _ in line:
            if len(pipeline) == 1:
                words, redirects = pipeline[0]
                outcome = _invoke.plain_command(self, words, redirects, state, feed, via, depth)
                continue
            current = feed
            for position, (words, redirects) in enumerate(pipeline):
                last = position == len(pipeline) - 1
                stage_state = state.copy() if not (last and "lastpipe" in state.options) else state
                start = len(self.analysis.commands)
                outcome = _invoke.plain_command(
                    self, words, redirects, stage_state, current, via, depth
                )
                caps = frozenset().union(*(c.caps for c in self.analysis.commands[start:]))
                caps = caps | current.caps if current.kind == "pipe" else caps
                current = Feed("pipe", outcome.text, caps, outcome.paths)
        return outcome

    def block(
        self, node: Node, state: ShellState, feed: Feed, via: tuple[str, ...], depth: int
    ) -> Outcome:
        outcome = NOTHING
        for child in node.children:
            if child.is_named and child.type != "comment":
                outcome = self.statement(child, state, feed, via, depth)
        return outcome

    # --- statements ------------------------------------------------------------------

    def statement(
        self,
        node: Node,
        state: ShellState,
        feed: Feed,
        via: tuple[str, ...],
        depth: int,
        redirects: tuple[Node, ...] = (),
    ) -> Outcome:

        kind = node.type
        if redirects and kind == "pipeline":
            return self.pipeline(node, state, feed, via, depth, last_redirects=redirects)
        if redirects and kind not in (
            "command",
            "redirected_statement",
            "variable_assignment",
            "declaration_command",
            "unset_command",
            "word",
            "string",
            "concatenation",
            "simple_expansion",
            "expansion",
            "raw_string",
            "number",
            "file_redirect",
        ):
            feed = _invoke.redirect_only(self, redirects, state, via, depth) or feed
            redirects = ()
        if kind == "command":
            return _invoke.simple_command(self, node, state, feed, via, depth, redirects)
        if kind == "redirected_statement":
            return self.redirected(node, state, feed, via, depth, redirects)
        if kind == "pipeline":
            return self.pipeline(node, state, feed, via, depth)
        if kind == "list":
            outcome = NOTHING
            for child in node.children:
                if child.is_named and child.type != "comment":
                    outcome = self.statement(child, state, feed, via, depth)
            return outcome
        if kind in ("subshell",):
            inner = state.copy()
            return self.block(node, inner, feed, via, depth)
        if kind in ("compound_statement", "do_group", "else_clause", "elif_clause"):
            return self.block(node, state, feed, via, depth)
        if kind in ("if_statement", "while_statement", "until_statement"):
            return self.branches(node, state, feed, via, depth)
        if kind == "for_statement":
            return self.for_loop(node, state, feed, via, depth)
        if kind == "c_style_for_statement":
            return self.c_for(node, state, feed, via, depth)
        if kind == "case_statement":
            return self.case(node, state, feed, via, depth)
        if kind == "function_definition":
            self.define_function(node, state)
            return NOTHING
        if kind == "negated_command":
            return self.block(node, state, feed, via, depth)
        if kind in ("variable_assignment", "variable_assignments"):
            return _invoke.simple_command(self, node, state, feed, via, depth, redirects)
        if kind in ("declaration_command", "unset_command"):
            return _invoke.simple_command(self, node, state, feed, via, depth, redirects)
        if kind == "test_command":
            return _invoke.test_command(self, node, state, feed, via, depth)
        if kind == "arithmetic_expansion" or kind == "arithmetic_command":
            return _invoke.arithmetic_statement(self, node, state, via)
        if kind == "comment":
            return NOTHING
        if kind == "file_redirect" or kind.endswith("redirect"):
            return _invoke.simple_command(self, node, state, feed, via, depth, redirects)
        if kind in ("command_substitution", "process_substitution"):
            return self.substitution(node, state, via, depth)[0]
        if kind in (
            "word",
            "string",
            "concatenation",
            "simple_expansion",
            "expansion",
            "raw_string",
            "number",
        ):
            # A bare word as a statement is a command (tree-sitter reads some as such).
            return _invoke.simple_command(self, node, state, feed, via, depth, redirects)
        if kind == "ERROR":
            self.analysis.unparseable = True
            return NOTHING
        # Anything else: walk its children so no command inside is missed.
        self.analysis.reasons.append(Reason(kind, "shell syntax the bastion does not analyse"))
        return self.block(node, state, feed, via, depth)

    def redirected(
        self,
        node: Node,
        state: ShellState,
        feed: Feed,
        via: tuple[str, ...],
        depth: int,
        outer: tuple[Node, ...],
    ) -> Outcome:
        body = node.child_by_field_name("body")
        redirects = tuple(c for c in node.children if c.type.endswith("redirect")) + outer
        lost = lost_text(node)
        if lost is not None:
            self.analysis.reasons.append(Reason(lost, "text the shell parser dropped"))
        if body is None:
            return _invoke.simple_command(self, node, state, feed, via, depth, redirects)
        if body.type == "command":
            return self.statement(body, state, feed, via, depth, redirects)
        if body.type in ("list", "pipeline"):
            # tree-sitter-bash puts `a && b > f` and `a | b > f` under one redirect; bash
            # gives the redirect to the last command only.
            parts = [c for c in body.children if c.is_named and c.type != "comment"]
            if parts:
                if body.type == "list":
                    for part in parts[:-1]:
                        self.statement(part, state, feed, via, depth)
                    return self.statement(parts[-1], state, feed, via, depth, redirects)
                return self.pipeline(body, state, feed, via, depth, last_redirects=redirects)
        # A compound statement with redirects: the files count on their own, and the
        # body's commands read what the redirects give them.

        feed = _invoke.redirect_only(self, redirects, state, via, depth) or feed
        return self.statement(body, state, feed, via, depth)

    def pipeline(
        self,
        node: Node,
        state: ShellState,
        feed: Feed,
        via: tuple[str, ...],
        depth: int,
        last_redirects: tuple[Node, ...] = (),
    ) -> Outcome:
        stages = [c for c in node.children if c.is_named and c.type != "comment"]
        outcome = NOTHING
        current = feed
        first_redirects: tuple[Node, ...] = ()
        if stages and stages[0].type == "redirected_statement":
            body = stages[0].child_by_field_name("body")
            if body is not None and body.type == "list":
                # tree-sitter-bash reads `a && b > f | c` as `(a && b > f) | c`; bash reads
                # `a && (b > f | c)`: the list's first parts run before the pipeline.
                parts = [c for c in body.children if c.is_named and c.type != "comment"]
                for part in parts[:-1]:
                    self.statement(part, state, feed, via, depth)
                first_redirects = tuple(
                    c for c in stages[0].children if c.type.endswith("redirect")
                )
                stages = [parts[-1], *stages[1:]] if parts else stages
        for position, stage in enumerate(stages):
            last = position == len(stages) - 1
            stage_state = state.copy() if not (last and "lastpipe" in state.options) else state
            start = len(self.analysis.commands)
            redirects = last_redirects if last else ()
            if position == 0 and first_redirects:
                redirects = first_redirects + redirects
            outcome = self.statement(stage, stage_state, current, via, depth, redirects)
            caps = frozenset().union(*(c.caps for c in self.analysis.commands[start:]))
            caps = caps | current.caps if current.kind == "pipe" else caps
            current = Feed("pipe", outcome.text, caps, outcome.paths)
        return outcome

    def branches(
        self, node: Node, state: ShellState, feed: Feed, via: tuple[str, ...], depth: int
    ) -> Outcome:
        """if/while/until: the condition, then every body (each may run)."""
        outcome = NOTHING
        for child in node.children:
            if child.is_named and child.type != "comment":
                outcome = self.statement(child, state, feed, via, depth)
        return outcome

    def for_loop(
        self, node: Node, state: ShellState, feed: Feed, via: tuple[str, ...], depth: int
    ) -> Outcome:

        name = node.child_by_field_name("variable")
        values = _invoke.loop_values(self, node, state, via)
        body = node.child_by_field_name("body")
        if name is None or body is None:
            return self.block(node, state, feed, via, depth)
        var = node_text(name)
        outcome = NOTHING
        readings = values if values is not None else [None]
        for value in readings[:8]:
            if value is None:
                state.set_var(var, None, ANY)
            elif isinstance(value, Word):
                if value.pattern is not None and value.unknown <= SAFE:
                    state.set_var(var, value.pattern, 0, "g")  # each match of the glob
                else:
                    state.set_var(var, None, ANY)
            else:
                state.set_var(var, value)
            outcome = self.statement(body, state, feed, via, depth)
        if values is not None and len(values) > 8:
            state.set_var(var, None, ANY)
            outcome = self.statement(body, state, feed, via, depth)
        state.set_var(var, None, ANY) if len(readings) > 1 else None
        return outcome

    def c_for(
        self, node: Node, state: ShellState, feed: Feed, via: tuple[str, ...], depth: int
    ) -> Outcome:

        for child in node.children:
            if child.type not in ("do_group", "compound_statement") and child.is_named:
                _invoke.arithmetic_statement(self, child, state, via)
        body = node.child_by_field_name("body")
        for name in _assigned_in(node):
            state.set_var(name, None, SAFE)
        if body is None:
            return NOTHING
        return self.statement(body, state, feed, via, depth)

    def case(
        self, node: Node, state: ShellState, feed: Feed, via: tuple[str, ...], depth: int
    ) -> Outcome:

        value = node.child_by_field_name("value")
        if value is not None:
            _invoke.expander(self, state, via, depth).words(value)
        outcome = NOTHING
        for item in node.children:
            if item.type != "case_item":
                continue
            for child in item.children:
                if child.is_named and node.field_name_for_child(0) != "value":
                    if child.type in (
                        "word",
                        "concatenation",
                        "string",
                        "raw_string",
                        "extglob_pattern",
                        "simple_expansion",
                        "expansion",
                    ):
                        _invoke.expander(self, state, via, depth).words(child)
                        continue
                    outcome = self.statement(child, state, feed, via, depth)
        return outcome

    def define_function(self, node: Node, state: ShellState) -> None:
        name = node.child_by_field_name("name")
        body = node.child_by_field_name("body")
        if name is None or body is None:
            return
        function = node_text(name)
        state.functions[function] = node_text(body)
        if function in ("command_not_found_handle",):
            self.analysis.reasons.append(
                Reason(function, "this function runs implicitly for every unknown command")
            )

    def substitution(
        self, node: Node, state: ShellState, via: tuple[str, ...], depth: int
    ) -> tuple[Outcome, list[Command]]:
        """$(...), `...`, <(...), >(...): the commands inside, in a subshell."""
        inner = state.copy()
        start = len(self.analysis.commands)
        label = "$(...)" if node.type == "command_substitution" else node_text(node)[:2] + "...)"
        outcome = NOTHING
        body = [c for c in node.children if c.is_named]
        if node.type == "command_substitution" and node_text(node).startswith("`"):
            # Inside backquotes a backslash quotes $ ` and \: read the text as its own line.
            text = (
                node_text(node)[1:-1].replace("\\`", "`").replace("\\$", "$").replace("\\\\", "\\")
            )
            outcome = self.line(text, inner, via=(*via, label), depth=depth + 1, feed=AGENT)
        else:
            for child in body:
                if child.type == "comment":
                    continue
                if child.type == "file_redirect" and node.type == "command_substitution":
                    outcome = _invoke.file_read_substitution(self, child, inner, via, depth)
                    continue
                outcome = self.statement(child, inner, AGENT, (*via, label), depth + 1)
        return outcome, self.analysis.commands[start:]


def _assigned_in(node: Node) -> list[str]:
    names = []
    stack = [node]
    while stack:
        current = stack.pop()
        if (
            current.type == "variable_name"
            and current.parent is not None
            and (
                current.parent.type
                in (
                    "binary_expression",
                    "postfix_expression",
                    "unary_expression",
                    "variable_assignment",
                )
            )
        ):
            names.append(node_text(current))
        stack.extend(current.children)
    return names


def _joined(text: str) -> str:
    """Backslash-newline is removed before anything else, even inside a word (`r\\<nl>m`)."""
    if "\\\n" not in text:
        return text
    out: list[str] = []
    i = 0
    quote = None
    while i < len(text):
        ch = text[i]
        if quote == "'":
            out.append(ch)
            if ch == "'":
                quote = None
            i += 1
            continue
        if ch == "\\" and i + 1 < len(text):
            if text[i + 1] == "\n":
                i += 2
                continue
            out.append(text[i : i + 2])
            i += 2
            continue
        if ch == "'" and quote is None:
            quote = "'"
        elif ch == '"':
            quote = None if quote == '"' else '"' if quote is None else quote
        out.append(ch)
        i += 1
    return "".join(out)


def _parser_safe(text: str) -> tuple[str, bool]:
    """Characters outside the Basic Multilingual Plane crash tree-sitter-bash on some
    inputs (found by property tests); they carry no meaning here, so they become U+FFFD,
    and the rarest planes (unassigned, private use) make the line not understood."""
    if text.isascii():
        return text, False
    unusual = False
    out = []
    for ch in text:
        code = ord(ch)
        if code >= 0x10000 or 0xD800 <= code < 0xE000:
            unusual = unusual or code >= 0x30000 or 0xD800 <= code < 0xE000
            out.append("\ufffd")
        else:
            out.append(ch)
    return "".join(out), unusual


def _first_error(node: Node) -> str:
    stack = [node]
    while stack:
        current = stack.pop(0)
        if current.type == "ERROR" or current.is_missing:
            return node_text(current)[:40] or current.type
        if current.has_error:
            stack.extend(current.children)
    return ""


def analyse(line: str, context: Context | None = None, *, fast: bool = True) -> Analysis:
    """Every command of `line`, read in `context`; never raises for any input. `fast=False`
    reads every line with tree-sitter (the property tests compare the two readings)."""
    context = context or Context.start()
    walker = Walker(context)
    walker.fast = fast
    state = ShellState.from_context(context)
    try:
        walker.line(line, state, via=(), depth=0, feed=AGENT)
    except BudgetExceeded as exc:
        walker.analysis.reasons.append(Reason("", str(exc)))
        state.poisoned = True
    except RecursionError:
        walker.analysis.reasons.append(Reason("", "the line is nested too deeply to analyse"))
        state.poisoned = True
    walker.analysis.context = state.to_context()
    return walker.analysis


def read_words(line: str) -> list[list[str]]:
    """The argv of each command as text (for tests and doctests)."""
    from rules.values import text_of

    return [[text_of(w) for w in c.argv] for c in analyse(line).commands]


def expander_for(walker: Walker, state: ShellState) -> Expander:

    return _invoke.expander(walker, state, (), 0)


from rules import invoke as _invoke  # noqa: E402  (the walk's other half; imports this module)
