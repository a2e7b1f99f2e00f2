"""Every simple command a shell line would run, parsed with tree-sitter-bash.

    >>> [c.program for c in analyse("sudo r'm' -rf / ; echo $(id)")]
    ['sudo', 'rm', 'id', 'echo']

The walk visits lists, pipelines, subshells, groups, command and process
substitutions, functions, loops and conditionals, and re-parses the strings
handed to `sh -c`, `su -c`, `ssh HOST CMD`, `watch`, `xargs` and
`find -exec`. Wrappers (sudo, env, nice, timeout...) are reported and then
stripped, so the wrapped program is matched under its own name. What cannot
be known without running it (a variable as the command name, eval, code piped
into an interpreter, inline interpreter code, a line that does not parse) is
marked opaque with a reason: rules can match opacity itself.

The walker also remembers what the line sets up for later commands
(variables, `cd`, files echoed or downloaded, aliases) and reads a command a
second time with that knowledge; second readings only add commands. Words
are read in rules/words.py, program knowledge lives in rules/programs.py.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import replace
from functools import lru_cache
from typing import Any

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from rules.model import SimpleCommand
from rules.normalize import (
    MAX_BRACE_RESULTS,
    SHELLS,
    expand_braces,
    interpreter_name,
    strip_wrapper,
)
from rules.programs import (
    DOWNLOADERS,
    MAX_XARGS_ITEMS,
    STDIN_PATHS,
    download_outputs,
    echoed_text,
    found_paths,
    input_command_reason,
    opaque_reason,
    reads_commands_from_input,
    reads_pipe,
    script_of,
    xargs_replace_string,
)
from rules.sql import sql_for_client
from rules.tools import (
    CODE_LOADING_VARIABLES,
    COMMAND_VARIABLES,
    option_directory,
    option_writes,
    tool_code,
)
from rules.words import (
    HIDDEN_SUBSTITUTION,
    NO_SUBSTITUTION,
    SPLIT,
    assignment_text,
    has_computed_part,
    heredoc_text,
    node_text,
    normalize_path,
    parser_safe,
    printed_text,
    word_text,
)

MAX_LINE = 64 * 1024
MAX_VARIABLES = 64  # variables remembered per line
MAX_VALUES = 8  # values remembered per variable (readings per command)
MAX_VALUE = 4096
MAX_DEPTH = 6
MAX_COMMANDS = 512
MAX_PARSES = 128  # nested lines (sh -c, aliases, heredocs...) parsed for one analysis

_PARSER = Parser(Language(tree_sitter_bash.language()))
_NETWORK_REDIRECT = re.compile(r"^/dev/(tcp|udp)/")


@lru_cache(maxsize=4096)
def analyse(line: str) -> tuple[SimpleCommand, ...]:
    """The simple commands in `line`, normalized; never raises for any input."""
    walker = _Walker()
    walker.line(line, depth=0)
    return tuple(walker.commands)


class _Walker:
    def __init__(self) -> None:
        self.commands: list[SimpleCommand] = []
        # Values given to variables earlier on the line (NAME=value, export, for NAME in ...):
        # a command using them is judged a second time with them put in.
        self.values: dict[str, list[str]] = {}
        self.cwd: str | None = None  # where `cd` went earlier on the line, if anywhere
        self.written: dict[str, str] = {}  # file -> text echoed into it
        self.downloaded: set[str] = set()  # files curl or wget wrote
        self.aliases: dict[str, str] = {}
        self.expanding: set[str] = set()  # aliases being expanded
        self.parses = 0  # lines parsed for this analysis, nested ones included

    def change_directory(self, argv: tuple[str, ...]) -> None:
        """`cd DIR` / `pushd DIR`: later relative paths are judged under DIR too."""
        target = next((a for a in argv[1:] if not a.startswith("-") or a == "-"), "~")
        self.cwd = self.resolve_directory(target)

    def resolve_directory(self, target: str | None) -> str | None:
        """DIR as an absolute (or ~) path where it can be known, else as given, else None."""
        if target is None or target == "-" or has_computed_part(target):
            return None
        if target.startswith(("/", "~")) or self.cwd is None:
            return normalize_path(target)
        return normalize_path(posixpath.join(self.cwd, target))

    def add(self, command: SimpleCommand) -> None:
        if len(self.commands) < MAX_COMMANDS:
            self.commands.append(command)
        elif not self.commands[-1].opaque:
            self.commands.append(SimpleCommand("", (), True, "too many commands to analyse"))

    def opaque(self, reason: str, program: str = "") -> None:
        self.add(SimpleCommand(program, (program,) if program else (), True, reason))

    # --- lines and nodes -----------------------------------------------------------

    def line(self, text: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            self.opaque("commands nested too deeply")
            return
        self.parses += 1
        if self.parses > MAX_PARSES or len(self.commands) >= MAX_COMMANDS:
            self.opaque("too much nested code to analyse")  # `alias a='a;a;a'`, sh -c in loops
            return
        if len(text) > MAX_LINE:
            self.opaque("command line too long to analyse")
            return
        if "\x00" in text:
            self.opaque("command line contains a NUL byte")
            return
        text, unusual = parser_safe(text)
        if unusual:
            self.opaque("the line contains characters from unassigned or private Unicode planes")
        tree = _PARSER.parse(text.encode("utf-8", errors="replace"))
        if tree.root_node.has_error:
            self.opaque("the line does not parse as shell")
        self.node(tree.root_node, depth)
        joined = text.replace("\\\n", "")
        if joined != text:
            self.joined_reading(joined, depth)

    def joined_reading(self, joined: str, depth: int) -> None:
        """The line again with every backslash-newline removed, as bash reads it even in
        the middle of a word (`r\\<newline>m`), which tree-sitter takes for a space.
        Its commands are added to the first reading's: a second reading only adds."""
        tree = _PARSER.parse(joined.encode("utf-8", errors="replace"))
        if tree.root_node.has_error:
            self.opaque("the line reads differently once its backslash-newlines are joined")
            return
        seen = set(self.commands)
        start = len(self.commands)
        self.node(tree.root_node, depth)
        self.commands[start:] = [c for c in self.commands[start:] if c not in seen]

    def node(self, node: Node, depth: int) -> None:
        kind = node.type
        if kind == "command":
            self.command(node, depth, redirects=())
        elif kind == "redirected_statement":
            self.redirected(node, depth)
        elif kind == "pipeline":
            self.pipeline(node, depth)
        elif kind in ("declaration_command", "unset_command"):
            self.declaration(node, depth)
        elif kind == "variable_assignment":  # a bare NAME=value statement
            self.substitutions(node, depth)
            self.assign(node, depth)
            self.add(SimpleCommand("=", ("=", assignment_text(node))))
        elif kind == "file_redirect":  # $(<file) reads the file
            reads, writes, _, egress = self.read_redirects((node,), depth)
            self.add(SimpleCommand("=", ("=",), reads=reads, writes=writes, egress=egress))
        elif kind == "for_statement":
            self.loop_values(node)
            for child in node.children:
                self.node(child, depth)
        else:
            for child in node.children:
                self.node(child, depth)

    def redirected(self, node: Node, depth: int) -> None:
        body = node.child_by_field_name("body")
        redirect_nodes = tuple(c for c in node.children if c.type.endswith("redirect"))
        if body is not None and body.type == "command":
            self.command(body, depth, redirects=redirect_nodes)
            return
        # `a && b > f`, `{ ...; } > f`, a bare `> f`: the files still count, on their own entry.
        for child in node.children:
            if not child.type.endswith("redirect"):
                self.node(child, depth)
        reads, writes, heredoc, egress = self.read_redirects(redirect_nodes, depth)
        if reads or writes or egress:
            self.add(
                SimpleCommand("=", ("=",), reads=reads, writes=writes, egress=egress, cwd=self.cwd)
            )

    def heredoc_tail(self, redirect: Node, depth: int) -> None:
        """tree-sitter-bash nests what follows `<<EOF` on its line (`| sh`, `&& rm x`)
        inside the heredoc node: walk it, and treat a pipe out of the heredoc as one."""
        for child in redirect.children:
            if child.type in ("<<", "<<-", "heredoc_start", "heredoc_body", "heredoc_end"):
                continue
            start = len(self.commands)
            self.node(child, depth)
            if child.type == "pipeline":
                for position in range(start, len(self.commands)):
                    self.commands[position] = reads_pipe(self.commands[position], None, 1)

    def declaration(self, node: Node, depth: int) -> None:
        """export/declare/local/readonly/unset: the keyword and its names or assignments."""
        words = [node_text(node.children[0])] if node.children else []
        for child in node.children[1:]:
            self.substitutions(child, depth)
            if child.type == "variable_assignment":
                self.assign(child, depth)
                words.append(assignment_text(child))
            elif child.is_named:
                words.append(word_text(child)[0])
        if words:
            self.add(SimpleCommand(words[0], tuple(words)))

    def pipeline(self, node: Node, depth: int) -> None:
        stages = [c for c in node.children if c.type not in ("|", "|&")]
        before = len(self.commands)
        first_stage_end = before
        feeding_text: str | None = None
        for index, stage in enumerate(stages):
            start = len(self.commands)
            self.node(stage, depth)
            if index == 0:
                first_stage_end = len(self.commands)
                feeding_text = echoed_text(self.commands[before:first_stage_end])
                continue
            for position in range(start, len(self.commands)):
                command = self.commands[position]
                self.commands[position] = reads_pipe(command, feeding_text, index)
            stage_commands = self.commands[start:]
            if index == 1 and stage_commands and stage_commands[0].program == "xargs":
                fed = feeding_text
                if fed is None:
                    fed = found_paths(self.commands[before:first_stage_end])
                if fed is not None:  # its arguments are known after all
                    for position in range(start, len(self.commands)):
                        self.commands[position] = replace(self.commands[position], open_args=False)
                    self.xargs_input(stage_commands[0], fed, depth)

    def xargs_input(self, command: SimpleCommand, fed: str, depth: int) -> None:
        """`echo ARGS | xargs CMD`: judge CMD with the arguments it will be given, too."""
        if command.program != "xargs":
            return
        inner = strip_wrapper("xargs", list(command.argv))
        if inner is None or inner[0] != "input":
            return
        items = fed.split()
        if len(items) > MAX_XARGS_ITEMS:
            self.opaque(f"xargs given more than {MAX_XARGS_ITEMS} items", "xargs")
            return
        replace_with = xargs_replace_string(command.argv)
        words = list(inner[1]) or ["echo"]
        if replace_with is None:
            self.simple(words + items, depth)
        else:
            for item in items:
                self.simple([w.replace(replace_with, item) for w in words], depth)

    # --- one simple command ----------------------------------------------------------

    def command(self, node: Node, depth: int, redirects: tuple[Node, ...]) -> None:
        words: list[str] = []
        word_nodes: list[Node] = []  # read again by with_values
        assignments: list[str] = []
        dynamic_name = False
        reason = None
        for position, child in enumerate(node.children):
            kind = child.type
            if kind == "variable_assignment":
                self.substitutions(child, depth)
                assignments.append(assignment_text(child))
                name, _, value = assignments[-1].partition("=")
                self.variable_code(name, value, depth)
                continue
            if kind.endswith("redirect"):
                redirects += (child,)
                continue
            if kind == "command_name":  # the grammar's `name` field is always this node
                self.substitutions(child, depth)
                value, dynamic = self.word(child)
                if dynamic:
                    dynamic_name = True
                    reason = f"the command name {node_text(child)!r} is computed"
                words.extend(value)
                word_nodes.append(child)
                continue
            # Unnamed arguments are operators such as `==` and `=~` inside `[ ]`.
            if child.is_named or node.field_name_for_child(position) == "argument":
                self.substitutions(child, depth)
                value, _ = self.word(child)
                words.extend(value)
                word_nodes.append(child)
        reads, writes, heredoc, egress = self.read_redirects(redirects, depth)
        if not words:
            if assignments:
                self.add(SimpleCommand("=", ("=", *assignments), writes=writes, reads=reads))
            return
        alias = words[0]
        if alias in self.aliases and alias not in self.expanding:
            # bash does not expand an alias again inside its own expansion
            self.expanding.add(alias)
            try:
                self.line(" ".join([self.aliases[alias], *map(shlex.quote, words[1:])]), depth + 1)
            finally:
                self.expanding.discard(alias)
        if dynamic_name:
            self.add(SimpleCommand(words[0], tuple(words), True, reason, reads, writes, (), egress))
        else:
            self.simple(words, depth, reads=reads, writes=writes, heredoc=heredoc, egress=egress)
        for substituted in self.with_values(node, word_nodes, words):
            self.simple(
                substituted, depth, reads=reads, writes=writes, heredoc=heredoc, egress=egress
            )

    # --- files written, then run, on the same line ------------------------------------

    def follow_files(
        self,
        program: str,
        argv: tuple[str, ...],
        writes: tuple[str, ...],
        heredoc: str | None,
        depth: int,
    ) -> None:
        """`echo CODE > x.sh; sh x.sh` runs CODE; `curl URL > x && ./x` runs what was fetched;
        `alias x=rm; x ...` runs rm; `read x <<< V` sets x."""
        if program in ("echo", "printf") and writes:
            text = printed_text(program, argv[1:])
            for path in writes:
                self.written[path] = text
        elif program in DOWNLOADERS:
            for path in (*writes, *download_outputs(program, argv)):
                self.downloaded.add(path)
        elif program == "read" and heredoc is not None:
            names = [a for a in argv[1:] if not a.startswith("-")]
            if names:
                self.remember(names[-1], [heredoc.strip()])
        if program == "alias":
            for definition in argv[1:]:
                name, _, body = definition.partition("=")
                if body and len(self.aliases) < MAX_VARIABLES:
                    self.aliases[name] = body
        script = script_of(program, argv)
        if script is not None and script in self.written:
            self.line(self.written.pop(script), depth + 1)  # judged once
        ran = script if script is not None else argv[0]
        if ran in self.downloaded or normalize_path(ran) in self.downloaded:
            self.opaque(f"runs {ran}, which was downloaded earlier on the line", program)

    # --- variables -----------------------------------------------------------------------

    def assign(self, node: Node, depth: int) -> None:
        """Remember NAME=value (the value with earlier variables put in)."""
        name = node.child_by_field_name("name")
        value = node.child_by_field_name("value")
        if name is None or name.type != "variable_name":
            return
        env = self.environments(1)[0] if self.values else None
        text = word_text(value, env, True)[0] if value is not None else ""
        self.remember(node_text(name), [text])
        self.variable_code(node_text(name), text, depth)

    def variable_code(self, name: str, value: str, depth: int) -> None:
        """Variables whose value is a command some program runs later (PAGER, LESSOPEN,
        PROMPT_COMMAND, GIT_SSH_COMMAND...) are judged as commands; LD_PRELOAD and
        BASH_ENV load code the bastion cannot see."""
        if name in COMMAND_VARIABLES and value.strip():
            self.line(value.strip().lstrip("|").replace("%s", "FILE"), depth + 1)
        elif name in CODE_LOADING_VARIABLES and value.strip():
            self.opaque(f"{name} makes programs load code the bastion cannot see", "=")

    def loop_values(self, node: Node) -> None:
        """`for NAME in WORDS`: each word is a value NAME takes."""
        name = node.child_by_field_name("variable")
        if name is None:
            return
        values: list[str] = []
        for position, child in enumerate(node.children):
            if node.field_name_for_child(position) == "value":
                text, _, brace = word_text(child)
                values.extend(expand_braces(text) if brace else [text])
        self.remember(node_text(name), values)

    def remember(self, name: str, values: list[str]) -> None:
        if name not in self.values and len(self.values) >= MAX_VARIABLES:
            return
        fitting = [v for v in values[-MAX_VALUES:] if len(v) <= MAX_VALUE]
        if not fitting:
            return
        known = self.values.setdefault(name, [])
        known.extend(v for v in fitting if v not in known)
        del known[:-MAX_VALUES]  # the latest values count most

    def environments(self, count: int) -> list[dict[str, str]]:
        """Up to `count` assignments of one value to each known variable."""
        known = {name: values for name, values in self.values.items() if values}
        widest = max((len(v) for v in known.values()), default=1)
        return [
            {name: values[min(k, len(values) - 1)] for name, values in known.items()}
            for k in range(min(count, widest))
        ] or [{}]

    def with_values(self, node: Node, word_nodes: list[Node], words: list[str]) -> list[list[str]]:
        """The command's words again with known variables (and IFS) put in, where that
        changes them: `q='DROP DATABASE x'; psql -c "$q"`, `rm -rf$IFS/etc`."""
        raw = node.text or b""
        if b"$" not in raw or not (self.values or b"IFS" in raw or b"${" in raw or b"$(" in raw):
            return []
        readings: list[list[str]] = []
        for env in self.environments(MAX_VALUES):
            substituted: list[str] = []
            for child in word_nodes:
                text, _, brace = word_text(child, env)
                for part in expand_braces(text) if brace else [text]:
                    substituted.extend(p for p in part.split(SPLIT) if p)
            if substituted and substituted != words and substituted not in readings:
                readings.append(substituted)
        return readings

    def simple(
        self,
        words: list[str],
        depth: int,
        *,
        reads: tuple[str, ...] = (),
        writes: tuple[str, ...] = (),
        heredoc: str | None = None,
        egress: bool = False,
        open_args: bool = False,
    ) -> None:
        """Report `words` as a command, then whatever it wraps or runs."""
        program = posixpath.basename(words[0].rstrip("/")) or words[0]
        argv = (words[0], *(normalize_path(w) for w in words[1:]))
        writes = writes + option_writes(program, argv)
        for code in tool_code(program, argv):
            self.line(code, depth + 1)  # run later by the tool: judged now
        if program == "env":
            for arg in argv[1:]:
                if "=" in arg and not arg.startswith("-"):
                    self.variable_code(*arg.split("=", 1), depth)
        own_cwd = self.resolve_directory(option_directory(program, argv))
        sql, sql_reason = sql_for_client(program, argv, heredoc)
        family = interpreter_name(program)
        why_opaque = opaque_reason(family, argv, heredoc) or sql_reason
        if why_opaque is None and heredoc is None and not reads and not sql:
            why_opaque = reads_commands_from_input(family, argv)
        self.add(
            SimpleCommand(
                program,
                argv,
                why_opaque is not None,
                why_opaque,
                reads,
                writes,
                sql,
                egress,
                open_args,
                own_cwd or self.cwd,
            )
        )
        if program in ("cd", "pushd"):
            self.change_directory(argv)
        if heredoc is not None and (
            program in SHELLS
            or (program in ("source", ".") and (len(argv) < 2 or argv[1] in STDIN_PATHS))
        ):
            self.line(heredoc, depth + 1)  # a heredoc or here-string fed to a shell is its script
        self.follow_files(program, argv, writes, heredoc, depth)
        inner = strip_wrapper(program, list(argv))
        if inner is None:
            return
        if own_cwd is not None:  # env -C DIR CMD, sudo -D DIR CMD: CMD runs in DIR
            outer_cwd, self.cwd = self.cwd, own_cwd
            try:
                self.run_wrapped(program, argv, inner, depth, open_args)
            finally:
                self.cwd = outer_cwd
        else:
            self.run_wrapped(program, argv, inner, depth, open_args)

    def run_wrapped(
        self,
        program: str,
        argv: tuple[str, ...],
        inner: tuple[str, list[Any]],
        depth: int,
        open_args: bool,
    ) -> None:
        """What a wrapper runs, as strip_wrapper read it."""
        kind, payload = inner
        if kind == "input":  # xargs, parallel: more arguments arrive at run time
            reason = input_command_reason(argv, payload)
            if reason is not None:
                self.add(
                    SimpleCommand(payload[0] if payload else program, tuple(payload), True, reason)
                )
            if payload:
                self.simple(list(payload), depth, open_args=True)
        elif kind == "argv" and payload:
            self.simple(list(payload), depth, open_args=open_args)
        elif kind == "argvs":
            for words in payload:
                self.simple(list(words), depth, open_args=open_args)
        elif kind == "line":
            self.line(" ".join(payload), depth + 1)
        elif kind == "opaque":
            self.opaque(payload[0], program)

    # --- words -------------------------------------------------------------------------

    def word(self, node: Node) -> tuple[list[str], bool]:
        """The value(s) a word node stands for, and whether it is computed at run time."""
        text, dynamic, brace = word_text(node)
        if brace:
            values = expand_braces(text)
            if len(values) > MAX_BRACE_RESULTS:
                self.opaque(f"brace expansion of more than {MAX_BRACE_RESULTS} words")
                del values[MAX_BRACE_RESULTS:]
            return values, dynamic
        return [text], dynamic

    def substitutions(self, node: Node, depth: int) -> None:
        """Commands inside $(...), `...` and <(...) anywhere in a word."""
        if node.child_count == 0:
            kind = node.type
            if (
                node.is_named
                and kind not in NO_SUBSTITUTION
                and HIDDEN_SUBSTITUTION.search(node.text or b"")
            ):
                # tree-sitter leaves some of them unparsed, as in ${x#$(cmd)}: read it as a line
                self.line(node_text(node), depth + 1)
            return
        if node.type in ("command_substitution", "process_substitution"):
            for inner in node.children:
                self.node(inner, depth)
            return
        for child in node.children:
            self.substitutions(child, depth)

    def read_redirects(
        self, redirects: tuple[Node, ...], depth: int
    ) -> tuple[tuple[str, ...], tuple[str, ...], str | None, bool]:
        reads: list[str] = []
        writes: list[str] = []
        heredoc: str | None = None
        egress = False
        for redirect in redirects:
            self.substitutions(redirect, depth)
            if redirect.type == "file_redirect":
                destination = redirect.child_by_field_name("destination")
                if destination is not None and destination.type != "number":
                    values = [normalize_path(word_text(destination)[0])]
                    if self.values and b"$" in (destination.text or b""):
                        env = self.environments(1)[0]
                        values.append(normalize_path(word_text(destination, env, True)[0]))
                    operator = next((c.type for c in redirect.children if not c.is_named), ">")
                    for value in values:
                        (reads if operator in ("<", "<>") else writes).append(value)
                        if operator == "<>":
                            writes.append(value)
                        egress = egress or bool(_NETWORK_REDIRECT.match(value))
            elif redirect.type == "heredoc_redirect":
                heredoc = heredoc_text(redirect)
                self.heredoc_tail(redirect, depth)
            elif redirect.type == "herestring_redirect":
                word = next((c for c in redirect.children if c.is_named), None)
                heredoc = word_text(word)[0] if word is not None else ""
        return tuple(reads), tuple(writes), heredoc, egress
