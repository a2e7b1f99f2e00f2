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
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import replace
from functools import lru_cache

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from rules.model import SimpleCommand
from rules.normalize import (
    CODE_LOADING_VARIABLES,
    COMMAND_VARIABLES,
    INTERPRETER_CODE_FLAGS,
    MAX_BRACE_RESULTS,
    SHELLS,
    expand_braces,
    find_stand_ins,
    interpreter_name,
    option_writes,
    strip_wrapper,
    tool_code,
    unescape_ansi_c,
    unescape_word,
)
from rules.sql import sql_for_client, sql_options_given

MAX_LINE = 64 * 1024
MAX_VARIABLES = 64  # variables remembered per line
MAX_VALUES = 8  # values remembered per variable (readings per command)
MAX_VALUE = 4096
MAX_DEPTH = 6
MAX_COMMANDS = 512

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

    def change_directory(self, argv: tuple[str, ...]) -> None:
        """`cd DIR` / `pushd DIR`: later relative paths are judged under DIR too."""
        target = next((a for a in argv[1:] if not a.startswith("-") or a == "-"), "~")
        if target == "-" or has_computed_part(target):
            self.cwd = None
        elif target.startswith(("/", "~")) or self.cwd is None:
            self.cwd = normalize_path(target)
        else:
            self.cwd = normalize_path(posixpath.join(self.cwd, target))

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
        if len(text) > MAX_LINE:
            self.opaque("command line too long to analyse")
            return
        if "\x00" in text:
            self.opaque("command line contains a NUL byte")
            return
        text, unusual = _parser_safe(text)
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
            self.add(SimpleCommand("=", ("=", _assignment_text(node))))
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
                    self.commands[position] = _reads_pipe(self.commands[position], None, 1)

    def declaration(self, node: Node, depth: int) -> None:
        """export/declare/local/readonly/unset: the keyword and its names or assignments."""
        words = [_text(node.children[0])] if node.children else []
        for child in node.children[1:]:
            self.substitutions(child, depth)
            if child.type == "variable_assignment":
                self.assign(child, depth)
                words.append(_assignment_text(child))
            elif child.is_named:
                words.append(_word_text(child)[0])
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
                feeding_text = _echoed_text(self.commands[before:first_stage_end])
                continue
            for position in range(start, len(self.commands)):
                command = self.commands[position]
                self.commands[position] = _reads_pipe(command, feeding_text, index)
            stage_commands = self.commands[start:]
            if index == 1 and stage_commands and stage_commands[0].program == "xargs":
                fed = feeding_text
                if fed is None:
                    fed = _found_paths(self.commands[before:first_stage_end])
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
        assignments: list[str] = []
        dynamic_name = False
        reason = None
        for position, child in enumerate(node.children):
            kind = child.type
            if kind == "variable_assignment":
                self.substitutions(child, depth)
                assignments.append(_assignment_text(child))
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
                    reason = f"the command name {_text(child)!r} is computed"
                words.extend(value)
                continue
            # Unnamed arguments are operators such as `==` and `=~` inside `[ ]`.
            if child.is_named or node.field_name_for_child(position) == "argument":
                self.substitutions(child, depth)
                value, _ = self.word(child)
                words.extend(value)
        reads, writes, heredoc, egress = self.read_redirects(redirects, depth)
        if not words:
            if assignments:
                self.add(SimpleCommand("=", ("=", *assignments), writes=writes, reads=reads))
            return
        if words[0] in self.aliases:
            self.line(" ".join([self.aliases[words[0]], *map(shlex.quote, words[1:])]), depth + 1)
        if dynamic_name:
            self.add(SimpleCommand(words[0], tuple(words), True, reason, reads, writes, (), egress))
        else:
            self.simple(words, depth, reads=reads, writes=writes, heredoc=heredoc, egress=egress)
        for substituted in self.with_values(node, words):
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
            text = _echoed_text([SimpleCommand(program, argv)]) or ""
            for path in writes:
                self.written[path] = text
        elif program in _DOWNLOADERS:
            for path in (*writes, *_download_outputs(program, argv)):
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
        script = _script_of(program, argv)
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
        text = _word_text(value, env, True)[0] if value is not None else ""
        self.remember(_text(name), [text])
        self.variable_code(_text(name), text, depth)

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
                text, _, brace = _word_text(child)
                values.extend(expand_braces(text) if brace else [text])
        self.remember(_text(name), values)

    def remember(self, name: str, values: list[str]) -> None:
        if name not in self.values and len(self.values) >= MAX_VARIABLES:
            return
        known = self.values.setdefault(name, [])
        known.extend(v for v in values if len(v) <= MAX_VALUE and v not in known)
        del known[:-MAX_VALUES]  # the latest values count most

    def environments(self, count: int) -> list[dict[str, str]]:
        """Up to `count` assignments of one value to each known variable."""
        widest = max((len(v) for v in self.values.values()), default=1)
        return [
            {name: values[min(k, len(values) - 1)] for name, values in self.values.items()}
            for k in range(min(count, widest))
        ] or [{}]

    def with_values(self, node: Node, words: list[str]) -> list[list[str]]:
        """The command's words again with known variables (and IFS) put in, where that
        changes them: `q='DROP DATABASE x'; psql -c "$q"`, `rm -rf$IFS/etc`."""
        raw = node.text or b""
        if b"$" not in raw or not (self.values or b"IFS" in raw or b"${" in raw):
            return []
        readings: list[list[str]] = []
        for env in self.environments(MAX_VALUES):
            substituted: list[str] = []
            for child in node.children:
                if child.type == "variable_assignment" or child.type.endswith("redirect"):
                    continue
                if not (child.is_named or child.type in ("==", "=~", "=")):
                    continue
                text, _, brace = _word_text(child, env)
                for part in expand_braces(text) if brace else [text]:
                    substituted.extend(p for p in part.split(_SPLIT) if p)
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
        sql, sql_reason = sql_for_client(program, argv, heredoc)
        family = interpreter_name(program)
        opaque_reason = _opaque_reason(family, argv, heredoc) or sql_reason
        if opaque_reason is None and heredoc is None and not reads and not sql:
            opaque_reason = reads_commands_from_input(family, argv)
        self.add(
            SimpleCommand(
                program,
                argv,
                opaque_reason is not None,
                opaque_reason,
                reads,
                writes,
                sql,
                egress,
                open_args,
                self.cwd,
            )
        )
        if program in ("cd", "pushd"):
            self.change_directory(argv)
        if heredoc is not None and (
            program in SHELLS or (program in ("source", ".") and list(argv[1:2]) in _STDIN_ARGS)
        ):
            self.line(heredoc, depth + 1)  # a heredoc or here-string fed to a shell is its script
        self.follow_files(program, argv, writes, heredoc, depth)
        inner = strip_wrapper(program, list(argv))
        if inner is None:
            return
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
        text, dynamic, brace = _word_text(node)
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
                and kind not in _NO_SUBSTITUTION
                and _HIDDEN_SUBSTITUTION.search(node.text or b"")
            ):
                # tree-sitter leaves some of them unparsed, as in ${x#$(cmd)}: read it as a line
                self.line(_text(node), depth + 1)
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
                    values = [normalize_path(_word_text(destination)[0])]
                    if self.values and b"$" in (destination.text or b""):
                        env = self.environments(1)[0]
                        values.append(normalize_path(_word_text(destination, env, True)[0]))
                    operator = next((c.type for c in redirect.children if not c.is_named), ">")
                    for value in values:
                        (reads if operator in ("<", "<>") else writes).append(value)
                        if operator == "<>":
                            writes.append(value)
                        egress = egress or bool(_NETWORK_REDIRECT.match(value))
            elif redirect.type == "heredoc_redirect":
                heredoc = _heredoc_text(redirect)
                self.heredoc_tail(redirect, depth)
            elif redirect.type == "herestring_redirect":
                word = next((c for c in redirect.children if c.is_named), None)
                heredoc = _word_text(word)[0] if word is not None else ""
        return tuple(reads), tuple(writes), heredoc, egress


def _heredoc_text(redirect: Node) -> str:
    """The heredoc's lines, read from the source between the line holding `<<WORD` and
    the end marker: tree-sitter-bash's heredoc_body node is empty when the first line
    starts with a backslash (`\\rm -rf /`), and that text is what the shell reads."""
    start = next((c for c in redirect.children if c.type == "heredoc_start"), None)
    end = next((c for c in redirect.children if c.type == "heredoc_end"), None)
    raw = redirect.text or b""
    if start is None:
        return ""
    newline = raw.find(b"\n", start.end_byte - redirect.start_byte)
    if newline < 0:
        return ""
    stop = end.start_byte - redirect.start_byte if end is not None else len(raw)
    return raw[newline + 1 : stop].decode(errors="replace")


def _text(node: Node) -> str:
    return (node.text or b"").decode(errors="replace")


# Leaves whose text is never expanded, and what a substitution hidden in a leaf looks like.
_NO_SUBSTITUTION = frozenset(
    {"raw_string", "ansi_c_string", "heredoc_start", "heredoc_end", "comment"}
)
_HIDDEN_SUBSTITUTION = re.compile(rb"\$\(|`|[<>]\(")

_ASTRAL = re.compile("[\U00010000-\U0010ffff\ud800-\udfff]")


def _parser_safe(text: str) -> tuple[str, bool]:
    """Replace characters outside the Basic Multilingual Plane before parsing.

    tree-sitter-bash (0.23 and 0.25) crashes the whole process on some of them
    after a `{` (found by the property tests: `a{` + U+F3269). They carry no
    meaning for command matching, so they become U+FFFD; the rarest planes
    (unassigned, private use) make the line opaque.
    """
    if text.isascii():
        return text, False
    unusual = False

    def swap(match: re.Match[str]) -> str:
        nonlocal unusual
        unusual = unusual or ord(match.group()) >= 0x30000 or 0xD800 <= ord(match.group()) < 0xE000
        return "\ufffd"

    return _ASTRAL.sub(swap, text), unusual


def _word_text(
    node: Node, env: dict[str, str] | None = None, quoted: bool = False
) -> tuple[str, bool, bool]:
    """(text, computed at run time?, has unquoted braces to expand?)

    With `env` (variable -> value), expansions of known variables are put in;
    unquoted, their value is split on whitespace as the shell does (the
    split points are marked with _SPLIT for the caller).
    """
    kind = node.type
    if kind in ("word", "number", "command_name", "concatenation"):
        if kind in ("word", "number"):
            raw = _text(node)
            return unescape_word(raw), False, "{" in raw and ("," in raw or ".." in raw)
        parts = [_word_text(child, env, quoted) for child in node.children]
        brace = any(b for _, _, b in parts) or (
            kind == "concatenation"
            and any(c.type == "word" and c.text in (b"{", b"}") for c in node.children)
        )
        return "".join(p for p, _, _ in parts), any(d for _, d, _ in parts), brace
    if kind == "brace_expression":
        return _text(node), False, True
    if kind == "raw_string":
        return _text(node)[1:-1], False, False
    if kind == "ansi_c_string":
        return unescape_ansi_c(_text(node)[2:-1]), False, False
    if kind == "string":
        parts = [_word_text(child, env, True) for child in node.children if child.type != '"']
        return "".join(p for p, _, _ in parts), any(d for _, d, _ in parts), False
    if kind == "string_content":
        return (
            _text(node).replace('\\"', '"').replace("\\$", "$"),
            False,
            False,
        )
    if kind in ("simple_expansion", "expansion") and env is not None:
        value = _known_value(node, env)
        if value is not None:
            return (value if quoted else _SPLIT.join(value.split()) or _SPLIT), False, False
    if kind in (
        "simple_expansion",
        "expansion",
        "command_substitution",
        "process_substitution",
        "arithmetic_expansion",
    ):
        return _text(node), True, False
    return _text(node), kind not in ("file_descriptor",), False


_SPLIT = "\x00"  # where an unquoted expansion splits a word (a line never holds NUL)


def _known_value(node: Node, env: dict[str, str]) -> str | None:
    """$NAME or ${NAME} of a variable set earlier on the line; ${IFS...} is whitespace."""
    names = [c for c in node.children if c.type == "variable_name"]
    if len(names) != 1:
        return None
    name = _text(names[0])
    plain = node.type == "simple_expansion" or node.child_count == 3  # ${ NAME }
    if name == "IFS" and "IFS" not in env:
        return " "  # the default IFS, or any part of it: whitespace either way
    if plain and name in env:
        return env[name]
    operators = [c.type for c in node.children if not c.is_named and c.type not in ("${", "}")]
    if name not in env and operators[:1] in ([":-"], ["-"], [":="], ["="]):
        rest = [c for c in node.children if c.is_named and c.type != "variable_name"]
        return "".join(_word_text(c, env, True)[0] for c in rest)  # ${F:-/etc/shadow}
    return None


def _assignment_text(node: Node) -> str:
    name = node.child_by_field_name("name")
    value = node.child_by_field_name("value")
    name_text = _text(name) if name is not None else ""
    return f"{name_text}={_word_text(value)[0] if value is not None else ''}"


_PROC_ROOT = re.compile(r"^/proc/(self|thread-self|\d+)/root(?=/)")


def has_computed_part(word: str) -> bool:
    return "$" in word or "`" in word


def normalize_path(word: str) -> str:
    """Lexically tidy anything that looks like a path: `/usr/bin/../../etc//shadow` -> /etc/shadow."""
    if word.startswith("$HOME"):
        word = "~" + word[5:]
    elif word.startswith("${HOME}"):
        word = "~" + word[7:]
    if "/" not in word or "://" in word or word.startswith("-"):
        return word
    word = _PROC_ROOT.sub("", word)  # /proc/self/root/etc/shadow is /etc/shadow
    prefix = ""
    if "=" in word.split("/", 1)[0]:  # of=/dev/sda, --output=/x
        prefix, word = word.split("=", 1)
        prefix += "="
    trailing = "/" if word.endswith("/") and len(word) > 1 else ""
    tidy = posixpath.normpath(word)
    if tidy.startswith("//"):
        tidy = "/" + tidy.lstrip("/")
    if tidy == ".":
        return prefix + word
    return prefix + tidy + (trailing if tidy != "/" else "")


# Editors whose command mode runs shell commands (`:!cmd`, `M-!`): what is typed inside
# them never reaches the bastion as a line, so starting one is opaque.
EDITORS_WITH_SHELL = frozenset(
    {"vi", "vim", "nvim", "view", "vimdiff", "ex", "ed", "emacs", "gvim"}
)


def _opaque_reason(program: str, argv: tuple[str, ...], heredoc: str | None) -> str | None:
    if program in ("eval",):
        return "eval runs text built at run time"
    if program in EDITORS_WITH_SHELL:
        return f"{program} can run shell commands the bastion does not see"
    if program in ("source", ".") and (
        len(argv) < 2 or argv[1].startswith(("/dev/fd", "/proc/self"))
    ):
        return "source of something that is not a file"
    flags = INTERPRETER_CODE_FLAGS.get(program)
    if flags and _gives_code(argv, flags):
        return f"{program} runs inline code"
    if program in INTERPRETER_CODE_FLAGS and heredoc is not None and not _script_named(argv):
        return f"{program} runs code from a here-document"
    if program in ("awk", "gawk", "mawk", "nawk", "busybox-awk") and any(
        _AWK_RUNS.search(a) for a in argv[1:]
    ):
        return "awk runs commands"
    if program in SHELLS and heredoc is None and len(argv) > 1 and argv[1] in ("-s",):
        return f"{program} reads commands from stdin"
    if (
        program in SHELLS or program in INTERPRETER_CODE_FLAGS or program in ("source", ".")
    ) and any(a.startswith(("<(", "/dev/fd/", "/proc/self/fd/")) for a in argv[1:]):
        return f"{program} runs code from a process substitution"
    return None


MAX_XARGS_ITEMS = 64
# awk code that starts commands: system(...), "cmd" | getline, print | "cmd", |&.
_AWK_RUNS = re.compile(r"\bsystem\s*\(|\|\s*getline|\|&|(print|printf)\b[^;{}]*\|\s*\S")
# Paths that name the standard input: a script read from them comes from the pipe.
_STDIN_PATHS = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})


def _gives_code(argv: tuple[str, ...], flags: frozenset[str]) -> bool:
    """A code flag among the interpreter's own options (before its script, if any):
    `python3 manage.py shell -c X` hands -c to the script, not to python."""
    for arg in argv[1:]:
        if not arg.startswith("-"):
            return False
        if _is_code_flag(arg, flags):
            return True
    return False


def _is_code_flag(arg: str, flags: frozenset[str]) -> bool:
    """-c, -e, --eval=..., and short clusters holding one: -Ic, -ne, -lne, -ccode."""
    if arg in flags or arg.split("=", 1)[0] in flags:
        return True
    if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
        letters = {f[1] for f in flags if len(f) == 2}
        return any(letter in letters for letter in arg[1:])
    return False


def _script_named(argv: tuple[str, ...]) -> bool:
    """An interpreter given a script file (not one of the standard-input names)."""
    positional = [a for a in argv[1:] if not a.startswith("-")]
    return bool(positional) and positional[0] not in _STDIN_PATHS


def xargs_replace_string(argv: tuple[str, ...]) -> str | None:
    """The -I/-i/--replace string xargs substitutes input items for, if any."""
    args = list(argv[1:])
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "-I" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("-I") and len(arg) > 2:
            return arg[2:]
        if arg in ("-i", "--replace"):
            return "{}"
        if arg.startswith(("-i", "--replace=")):
            return arg.split("=", 1)[1] if "=" in arg else arg[2:]
    return None


def input_command_reason(argv: tuple[str, ...], inner: list[str]) -> str | None:
    """Why the command xargs or parallel builds from its input cannot be known, if it cannot.

    Input items become the command name, or code for a shell or interpreter:
    `... | xargs -I{} sh -c '{}'`, `... | xargs -I% %`, `parallel` with no
    command. Plain data arguments (`find ... | xargs grep x`) are not opaque:
    the command is reported with `open_args` (its arguments come at run time),
    and with `echo ... |` they are judged as given (_Walker.xargs_input).
    """
    runner = posixpath.basename(argv[0]) if argv else "xargs"
    if not inner:
        return f"{runner} runs command lines read from its input" if runner == "parallel" else None
    replace_with = xargs_replace_string(argv) if runner == "xargs" else "{}"
    program = posixpath.basename(inner[0])
    if replace_with is not None and replace_with in inner[0]:
        return f"{runner} runs a command named by its input"
    runs_code = program in SHELLS or program in INTERPRETER_CODE_FLAGS or program == "eval"
    if runs_code and replace_with is not None and any(replace_with in w for w in inner[1:]):
        return f"{runner} hands its input to {program} as code"
    if (
        runs_code
        and replace_with is None
        and (program == "eval" or (len(inner) >= 2 and inner[-1] in ("-c", "-e", "--eval")))
    ):
        return f"{runner} hands its input to {program} as code"
    return None


def _found_paths(commands: list[SimpleCommand]) -> str | None:
    """`find START... | xargs CMD`: CMD gets paths under START, judged as START itself
    (as `find START -exec CMD {}` is)."""
    if len(commands) != 1 or commands[0].program != "find" or commands[0].opaque:
        return None
    return " ".join(find_stand_ins(list(commands[0].argv[1:])))


def _echoed_text(commands: list[SimpleCommand]) -> str | None:
    """Text an `echo`/`printf` first stage feeds down a pipe, for SQL clients and shells."""
    if len(commands) == 1 and commands[0].program in ("echo", "printf"):
        args = [
            a
            for a in commands[0].argv[1:]
            if not (commands[0].program == "echo" and a in ("-e", "-n", "-E"))
        ]
        if commands[0].program == "printf" and args:
            args[0] = unescape_ansi_c(args[0])  # the format's \n and \x.. are read by printf
        return " ".join(args)
    return None


STDIN_REASON = "reads commands from its input"
_STDIN_ARGS = ([], ["-"], ["/dev/stdin"], ["/dev/fd/0"], ["/proc/self/fd/0"])
_DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "http", "lwp-download"})


def _download_outputs(program: str, argv: tuple[str, ...]) -> list[str]:
    """Files a downloader writes: -o/-O FILE (option_writes), or the URL's last part for
    curl -O and for wget without -O."""
    args = argv[1:]
    found = list(option_writes(program, argv))
    urls = [a for a in args if "://" in a]
    names_from_url = (program == "curl" and any(_short_cluster_has(a, "O") for a in args)) or (
        program == "wget" and not any(a.startswith("-O") for a in args)
    )
    if names_from_url:
        found += [u.rstrip("/").rsplit("/", 1)[-1] for u in urls]
    return [normalize_path(f) for f in found if f and f != "-"]


def _short_cluster_has(arg: str, letter: str) -> bool:
    return arg.startswith("-") and not arg.startswith("--") and letter in arg[1:]


def _script_of(program: str, argv: tuple[str, ...]) -> str | None:
    """The script file a shell or interpreter is told to run, if any."""
    if program not in SHELLS and interpreter_name(program) not in INTERPRETER_CODE_FLAGS:
        if program not in ("source", "."):
            return None
    positional = [a for a in argv[1:] if not a.startswith("-")]
    return normalize_path(positional[0]) if positional else None


_V_IS_VERSION = frozenset({"node", "nodejs", "deno", "bun", "ruby", "php", "lua", "perl"})
_ONLY_INFORMATION = frozenset({"--version", "-V", "--help", "-h", "-version"})
_SQL_CLIENTS = frozenset(
    {
        "psql",
        "mysql",
        "mariadb",
        "sqlite3",
        "mongosh",
        "mongo",
        "redis-cli",
        "clickhouse-client",
        "duckdb",
        "cockroach",
        "cqlsh",
    }
)


def reads_commands_from_input(program: str, argv: tuple[str, ...]) -> str | None:
    """Shells, interpreters and database clients given nothing to run read it from stdin or
    the terminal: commands the bastion never sees. (A script file is judged by its name.)"""
    if (
        program not in SHELLS
        and program not in INTERPRETER_CODE_FLAGS
        and program not in _SQL_CLIENTS
    ):
        return None
    args = argv[1:]
    if any(a in _ONLY_INFORMATION for a in args) or (program in _V_IS_VERSION and "-v" in args):
        return None
    positional = [a for a in args if not a.startswith("-")]
    if positional and positional[0] in _STDIN_PATHS:
        return f"{program} {STDIN_REASON}"  # `sh /dev/stdin`: the script is the input
    if program in SHELLS:
        if any(a in ("-s", "-i", "--login", "-l") for a in args) or not positional:
            return f"{program} {STDIN_REASON}"
        return None
    if program in INTERPRETER_CODE_FLAGS:
        if "-m" in args and args[args.index("-m") + 1 : args.index("-m") + 2] in (
            ["pty"],
            ["code"],
        ):
            return f"{program} starts an interactive shell or console"  # python3 -m pty
        if "-m" in args or positional:
            return None
        return f"{program} {STDIN_REASON}"
    if program in _SQL_CLIENTS:
        if any(a in ("-f", "--file") or a.startswith("--file=") for a in args):
            return None
        if sql_options_given(program, argv):
            return None  # psql -c '\\dt': a meta-command, not SQL, but given on the line
        if program == "sqlite3" and len(positional) >= 2:
            return None
        if program == "redis-cli" and positional:
            return None
        return f"{program} {STDIN_REASON}"
    return None


def _reads_pipe(command: SimpleCommand, fed: str | None, stage: int) -> SimpleCommand:
    """A later pipeline stage: shells and interpreters reading the pipe run code we cannot see."""
    program, argv = interpreter_name(command.program), command.argv
    stdin_only = command.reason is not None and command.reason.endswith(STDIN_REASON)
    if stdin_only and fed is not None and program in _SQL_CLIENTS:
        sql, reason = sql_for_client(program, argv, fed)
        return replace(command, sql=sql, opaque=reason is not None, reason=reason)
    if stdin_only and (program in SHELLS or program in INTERPRETER_CODE_FLAGS):
        return replace(command, reason=f"{program} runs code from a pipe")
    if command.opaque:
        return command
    if program in SHELLS and (len(argv) == 1 or argv[1] in ("-s", "-i", "-")):
        return replace(command, opaque=True, reason=f"{program} runs code from a pipe")
    if program in INTERPRETER_CODE_FLAGS and (len(argv) == 1 or argv[1] == "-"):
        return replace(command, opaque=True, reason=f"{program} runs code from a pipe")
    if fed is not None and not command.sql:
        sql, reason = sql_for_client(program, argv, fed)
        if sql or reason:
            return replace(command, sql=sql, opaque=reason is not None, reason=reason)
    return command
