"""One simple command: its words expanded, its program found, its arguments read
against the catalog, and the facts rules match on (a `Command`).

The program a word names is, in bash's order: an alias (both readings are
judged: the alias and the word as a program), a function of this session
(its body, run with these arguments), a shell builtin (rules/builtins.py),
or a program: by name from the catalog, or by path (a system directory's
program is the catalog's; a script file elsewhere is judged by its content
when the session wrote or carried it, else it is a local program).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from tree_sitter import Node

from rules import paths as P
from rules.catalog import CATALOG
from rules.catalog import Node as Program
from rules.catalog.model import PATH_KINDS
from rules.context import CarriedFile, ShellState
from rules.grammar import Given, Parsed, parse
from rules.model import Command, Reason
from rules.pure import output, output_class
from rules.shell import AGENT, NOTHING, BudgetExceeded, Feed, Outcome, Walker, lost_text
from rules.values import ANY, SAFE, UNKNOWN, Word, is_known, path_form, text_of
from rules.words import Expander, node_text

SYSTEM_BIN = frozenset(
    "/bin /usr/bin /sbin /usr/sbin /usr/local/bin /usr/local/sbin /usr/libexec /snap/bin".split()
)
TEMP_DIRS = ("/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/", "/run/shm/")
_NETWORK_REDIRECT = re.compile(r"^/dev/(tcp|udp)/([^/]+)/")


def expander(
    walker: Walker,
    state: ShellState,
    via: tuple[str, ...],
    depth: int,
    reasons: list[Reason] | None = None,
) -> Expander:
    sink = reasons if reasons is not None else []

    def run(node: Node, label: str) -> tuple[str | None, int] | tuple[str | None, int, str]:
        outcome, commands = walker.substitution(node, state, via, depth)
        if node.type == "process_substitution":
            for command in commands:
                walker.proc_caps.update(command.caps)
        elif outcome.text is None and _prints_host_data(commands):
            made.local_data = True
        if outcome.text is None and outcome.paths is not None:
            return None, outcome.unknown, outcome.paths
        return outcome.text, outcome.unknown

    def reason(word: str, why: str) -> None:
        sink.append(Reason(word, why))

    def run_text(text: str) -> None:
        walker.line(text, state.copy(), via=(*via, "$((...))"), depth=depth + 1, feed=AGENT)

    made = Expander(state, run, reason)
    made.reparse = reparse_word
    made.run_text = run_text
    return made


# Spaces other than ASCII's, zero-width and direction marks: they hide a word's real shape.
_INVISIBLE = re.compile("[\u00a0\u1680\u2000-\u200f\u2028-\u202f\u205f-\u2064\u3000\ufeff]")

# Programs whose unknown output says nothing about the host: a date, a count, a new temp name.
_NO_HOST_DATA = frozenset({"date", "seq", "mktemp", "true", ":", "uuidgen", "shuf"})


def _prints_host_data(commands: list[Command]) -> bool:
    """A substitution whose output is not known holds the host's data (files read, `env`,
    `id`, `hostname`): a network command given it sends that data off the host."""
    return any(c.reads or c.program not in _NO_HOST_DATA for c in commands)


def reparse_word(text: str) -> Node | None:
    """A word's text, parsed as the argument of a command (for operands tree-sitter-bash
    leaves unparsed); the tree is kept alive by the node."""
    from rules.shell import _PARSER

    if len(text) > 4096:
        return None
    tree = _PARSER.parse((": " + text).encode("utf-8", errors="replace"))
    if tree.root_node.has_error:
        return None
    command = tree.root_node.children[0] if tree.root_node.children else None
    if command is None or command.type != "command":
        return None
    arguments = [c for c in command.children if c.type != "command_name" and c.is_named]
    return arguments[0] if len(arguments) == 1 else None


@dataclass(slots=True)
class Redirects:
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    feed: Feed | None = None
    stdout_null: bool = False
    stdout_files: list[tuple[str, bool]] = field(default_factory=list)  # (path, appended)
    reasons: list[Reason] = field(default_factory=list)


NO_REDIRECTS = Redirects()  # shared: never changed
_CLOSERS = frozenset({"}", "then", "fi", "done", "esac", "do", "elif", "else", ";;"})
_STATEMENTS = frozenset(
    "subshell compound_statement if_statement while_statement for_statement "
    "c_style_for_statement case_statement function_definition pipeline list "
    "redirected_statement negated_command test_command".split()
)


# --- entry points from the walker ---------------------------------------------------


def simple_command(
    walker: Walker,
    node: Node,
    state: ShellState,
    feed: Feed,
    via: tuple[str, ...],
    depth: int,
    redirects: tuple[Node, ...],
) -> Outcome:
    reasons: list[Reason] = []
    expand = expander(walker, state, via, depth, reasons)
    assignments: list[tuple[Node, Node]] = []
    word_nodes: list[Node] = []
    redirect_nodes = list(redirects)
    keyword: str | None = None
    kind = node.type
    if kind == "variable_assignment":
        assignments.append((node, node))
    elif kind in ("declaration_command", "unset_command"):
        keyword = node_text(node.children[0]) if node.children else None
        word_nodes = [c for c in node.children[1:] if c.is_named]
    elif kind.endswith("redirect"):
        redirect_nodes.append(node)
    elif kind == "command":
        lost = lost_text(node)
        if lost is not None:
            reasons.append(Reason(lost, "text the shell parser dropped"))
        for child in node.children:
            ckind = child.type
            if ckind == "variable_assignment":
                assignments.append((child, child))
            elif ckind.endswith("redirect"):
                redirect_nodes.append(child)
            elif ckind in _STATEMENTS:
                # tree-sitter-bash takes `sudo ( rm x )` for a command; bash refuses it
                walker.analysis.unparseable = True
                walker.analysis.reasons.append(
                    Reason(node_text(child)[:40], "a statement where bash wants a word")
                )
                walker.statement(child, state.copy(), feed, via, depth)
            elif ckind == "command_name" or child.is_named:
                word_nodes.append(child)
    elif kind == "variable_assignments":
        assignments.extend((c, c) for c in node.children if c.type == "variable_assignment")
    else:
        word_nodes = [node]
    words: list[str | Word] = []
    computed = False
    if keyword is not None:
        words.append(keyword)
        for child in word_nodes:
            if child.type == "variable_assignment":
                words.append(_assignment_word(expand, child))
            else:
                words.extend(expand.words(child))
    else:
        for child in word_nodes:
            target = child.children[0] if child.type == "command_name" and child.children else child
            if child.type == "command_name" and _has_substitution(target):
                computed = True
            words.extend(expand.words(target))
    if expand.saw_default and words:
        # `cat ${F:-/etc/shadow}`: judged again as if F were unset (only ever stricter)
        expand.defaults = True
        again: list[str | Word] = []
        for child in word_nodes:
            target = child.children[0] if child.type == "command_name" and child.children else child
            again.extend(expand.words(target))
        if again and again != words:
            invoke(
                walker,
                again,
                [],
                NO_REDIRECTS,
                state.copy(),
                feed,
                (*via, "if unset: ${...:-default}"),
                depth + 1,
                [],
            )
        expand.defaults = False
    redirect = read_redirects(walker, redirect_nodes, state, via, depth, reasons)
    if redirect.feed is not None:
        feed = redirect.feed
    env: list[tuple[str, str | Word]] = []
    for assignment, _ in assignments:
        parsed = _assignment(expand, assignment)
        if parsed is not None:
            env.append(parsed)
    if not words:
        for name, value in env:
            _builtins.assign(walker, state, name, value, via, depth, reasons)
        if redirect.reads or redirect.writes or redirect.hosts or reasons:
            return emit(walker, ":", (":",), None, reasons, redirect, via, feed, state)
        return NOTHING
    return invoke(
        walker,
        words,
        env,
        redirect,
        state,
        feed,
        via,
        depth,
        reasons,
        name_computed=computed,
        local_data=expand.local_data,
    )


def plain_command(
    walker: Walker,
    words: list[str],
    redirects: list[tuple[str, str | None, str]],
    state: ShellState,
    feed: Feed,
    via: tuple[str, ...],
    depth: int,
) -> Outcome:
    """A command rules/fastpath.py read: literal words and file redirects."""
    reasons: list[Reason] = []
    redirect = NO_REDIRECTS
    if redirects:
        redirect = Redirects()
        for operator, descriptor, target in redirects:
            file_redirect(redirect, operator, descriptor, target, target, state, reasons)
        if redirect.feed is not None:
            feed = redirect.feed
    return invoke(walker, list(words), [], redirect, state, feed, via, depth, reasons)


def _has_substitution(node: Node) -> bool:
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in ("command_substitution", "process_substitution"):
            return True
        stack.extend(current.children)
    return False


def _assignment(expand: Expander, node: Node) -> tuple[str, str | Word] | None:
    name = node.child_by_field_name("name")
    value = node.child_by_field_name("value")
    if name is None:
        return None
    text = node_text(name)
    append = any(c.type == "+=" for c in node.children)
    if value is not None and value.type == "array":
        items: list[str] = []
        for child in value.children:
            if child.is_named:
                for word in expand.words(child):
                    if not isinstance(word, str):
                        return text + ("+" if append else "") + "=()", Word(UNKNOWN, None, ANY)
                    items.append(word)
        return text + ("+" if append else "") + "=()", "\x00".join(items)
    word = expand.value(value, assignment=True)
    return text + ("+" if append else ""), word


def _assignment_word(expand: Expander, node: Node) -> str | Word:
    """`declare x=VALUE`: the argument as one word NAME=VALUE."""
    parsed = _assignment(expand, node)
    if parsed is None:
        return node_text(node)
    name, value = parsed
    if name.endswith("=()"):
        return (
            Word(name[:-3] + "=" + UNKNOWN, None, ANY)
            if not isinstance(value, str)
            else (name[:-3] + "=(" + value + ")")
        )
    if isinstance(value, str):
        return f"{name}={value}"
    return Word(f"{name}={value.text}", None, value.unknown, False)


def redirect_only(
    walker: Walker,
    redirects: tuple[Node, ...],
    state: ShellState,
    via: tuple[str, ...],
    depth: int,
) -> Feed | None:
    reasons: list[Reason] = []
    info = read_redirects(walker, list(redirects), state, via, depth, reasons)
    if info.reads or info.writes or info.hosts or reasons:
        emit(walker, ":", (":",), None, reasons, info, via, AGENT, state)
    return info.feed


def file_read_substitution(
    walker: Walker, node: Node, state: ShellState, via: tuple[str, ...], depth: int
) -> Outcome:
    """$(< FILE) prints FILE."""
    reasons: list[Reason] = []
    info = read_redirects(walker, [node], state, via, depth, reasons)
    emit(walker, ":", (":",), None, reasons, info, via, AGENT, state)
    if info.reads and info.reads[0] in state.files:
        content = state.files[info.reads[0]].content
        if content is not None:
            return Outcome(content, 0)
    return Outcome(None, ANY)


def read_redirects(
    walker: Walker,
    nodes: list[Node],
    state: ShellState,
    via: tuple[str, ...],
    depth: int,
    reasons: list[Reason],
) -> Redirects:
    if not nodes:
        return NO_REDIRECTS
    info = Redirects()
    expand = expander(walker, state, via, depth, reasons)
    for node in nodes:
        kind = node.type
        if kind == "file_redirect":
            operator = next((c.type for c in node.children if not c.is_named), ">")
            destination = node.child_by_field_name("destination")
            descriptor = node.child_by_field_name("descriptor")
            if destination is None:
                continue
            if (
                destination.type == "number"
                or operator in (">&", "<&", ">&-", "<&-")
                and (node_text(destination).rstrip("-").isdigit() or node_text(destination) == "-")
            ):
                continue
            words = expand.words(destination)
            if len(words) != 1:
                reasons.append(Reason(node_text(destination), "a redirect to several or no files"))
                continue
            file_redirect(
                info,
                operator,
                node_text(descriptor) if descriptor else None,
                words[0],
                node_text(destination),
                state,
                reasons,
            )
        elif kind == "heredoc_redirect":
            text, known = _heredoc(walker, node, state, via, depth, reasons)
            info.feed = Feed("text", text if known else None)
            _heredoc_tail(walker, node, state, via, depth, text if known else None)
        elif kind == "herestring_redirect":
            word = next((c for c in node.children if c.is_named), None)
            if word is None:
                continue
            value = expand.value(word, assignment=False)
            info.feed = Feed("text", (value + "\n") if isinstance(value, str) else None)
    return info


def file_redirect(
    info: Redirects,
    operator: str,
    descriptor: str | None,
    word: str | Word,
    shown: str,
    state: ShellState,
    reasons: list[Reason],
) -> None:
    """One `>FILE`, `>>FILE`, `<FILE`, `2>FILE`...: what it reads, writes or connects to."""
    target = _redirect_path(word, state, reasons, shown)
    if target is None:
        return
    spelled, text = target
    network = _NETWORK_REDIRECT.match(text)
    if network:
        info.hosts.append(network.group(2))
    stdout = descriptor is None or descriptor == "1"
    if text == "/dev/null":
        if operator in (">", ">>", "&>", "&>>", ">|") and stdout:
            info.stdout_null = True
        return
    if text in ("/dev/stdout", "/dev/stderr", "/dev/tty"):
        return
    if operator in ("<", "<>"):
        info.reads.extend(spelled)
        if descriptor is None or descriptor == "0":
            content = state.files.get(spelled[0])
            info.feed = Feed(
                "file",
                content.content if content else None,
                frozenset({"net"}) if network else frozenset(),
                spelled[0],
            )
    if operator != "<":
        info.writes.extend(spelled)
        if operator in (">", ">>", ">|", "&>", "&>>") and stdout:
            info.stdout_files.append((spelled[0], operator.endswith(">>")))


def _redirect_path(
    word: str | Word, state: ShellState, reasons: list[Reason], shown: str
) -> tuple[tuple[str, ...], str] | None:
    form = path_form(word)
    if form is None:
        reasons.append(Reason(shown, "a redirect to a file whose name is not known"))
        return None
    text, _ = form
    spelled = P.resolve(text, state.cwd, state.home)
    if spelled is None:
        reasons.append(Reason(shown, "a redirect to a path that cannot be known here"))
        return None
    return spelled, text


def _heredoc(
    walker: Walker,
    node: Node,
    state: ShellState,
    via: tuple[str, ...],
    depth: int,
    reasons: list[Reason],
) -> tuple[str, bool]:
    """The here-document's text, expanded unless its delimiter is quoted."""
    start = next((c for c in node.children if c.type == "heredoc_start"), None)
    body = next((c for c in node.children if c.type == "heredoc_body"), None)
    raw = _heredoc_raw(node)
    if start is None:
        return "", True
    delimiter = node_text(start)
    if any(q in delimiter for q in "'\"\\") or body is None:
        return raw, True
    if "$" not in raw and "`" not in raw:
        return raw.replace("\\\n", ""), True
    expand = expander(walker, state, via, depth, reasons)
    parts: list[str] = []
    known = True
    for child in body.children:
        if child.type in ("heredoc_content",):
            parts.append(node_text(child))
        elif child.type == "heredoc_end":
            continue
        else:
            value = expand.value(child, assignment=False)
            if isinstance(value, str):
                parts.append(value)
            else:
                known = False
    if not body.children:
        parts.append(node_text(body))
    text = "".join(parts) if parts else raw
    return text, known


def _heredoc_raw(redirect: Node) -> str:
    """The lines between the line holding `<<WORD` and the end marker, read from the source
    (tree-sitter-bash's body is empty when the first line starts with a backslash)."""
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


def _heredoc_tail(
    walker: Walker,
    node: Node,
    state: ShellState,
    via: tuple[str, ...],
    depth: int,
    text: str | None,
) -> None:
    """tree-sitter-bash nests what follows `<<EOF` on its line (`| sh`, `&& rm x`) inside
    the heredoc node: walk it. A pipe out of the heredoc is read as getting its text
    (`cat <<EOF | sh` runs it; any other filter is judged as passing it on: stricter)."""
    for child in node.children:
        if child.type in ("<<", "<<-", "heredoc_start", "heredoc_body", "heredoc_end"):
            continue
        if child.is_named:
            feed = Feed("pipe", text) if child.type == "pipeline" else AGENT
            walker.statement(child, state, feed, via, depth)


# --- the command itself -------------------------------------------------------------


def invoke(
    walker: Walker,
    words: list[str | Word],
    env: list[tuple[str, str | Word]],
    redirect: Redirects,
    state: ShellState,
    feed: Feed,
    via: tuple[str, ...],
    depth: int,
    reasons: list[Reason],
    *,
    as_program: bool = False,
    name_computed: bool = False,
    local_data: bool = False,
) -> Outcome:
    """Judge one command line's words; `as_program` when a wrapper runs it (no builtins,
    functions or aliases: sudo, env, xargs start a program)."""
    BUILTINS = _builtins.BUILTINS
    PROGRAM_BUILTINS = _builtins.PROGRAM_BUILTINS
    walker.check_budget()
    name = words[0]

    env_state = state
    if env:
        env_state = state.copy()
        for variable, value in env:
            _builtins.env_effects(walker, env_state, variable, value, via, depth, reasons)
    if isinstance(name, str) and name_computed:
        reasons.append(Reason(name, "the command name is computed by a substitution"))
    if isinstance(name, str) and name in _CLOSERS and not as_program and depth >= 0:
        # `sudo { rm x; }`: tree-sitter-bash reads a `}` as a command; bash refuses the line
        walker.analysis.unparseable = True
        walker.analysis.reasons.append(Reason(name, "a reserved word where a command should be"))
    if not isinstance(name, str):
        reasons.append(Reason(text_of(name), "the command name is not known before it runs"))
        for program in _glob_programs(name):  # `/bin/r?`: each program it could be
            invoke(
                walker,
                [program, *words[1:]],
                [],
                NO_REDIRECTS,
                state.copy(),
                feed,
                (*via, f"if {text_of(name)} is {program}"),
                depth + 1,
                [],
                as_program=True,
            )
        return emit(walker, text_of(name), _argv(words), None, reasons, redirect, via, feed, state)
    if _INVISIBLE.search(name):
        # `cat<NBSP>/etc/shadow` reads as two words to a person and is one word to bash.
        reasons.append(Reason(name, "the command name holds a Unicode space or invisible character"))
    if not as_program:
        alias = state.aliases.get(name)
        if alias is not None and name not in walker.expanding_aliases:
            walker.expanding_aliases.add(name)
            try:
                rest = " ".join(_quote(w) for w in words[1:])
                walker.line(
                    f"{alias} {rest}",
                    state.copy(),
                    via=(*via, f"alias {name}"),
                    depth=depth + 1,
                    feed=feed,
                )
            finally:
                walker.expanding_aliases.discard(name)
        body = state.functions.get(name)
        if body is not None:
            return call_function(
                walker, name, body, words, state, feed, via, depth, reasons, redirect
            )
        builtin = BUILTINS.get(name)
        if builtin is not None:
            return builtin(walker, words, env, redirect, state, feed, via, depth, reasons)
    elif name in BUILTINS and name not in PROGRAM_BUILTINS:
        # `sudo history -c` fails, but is judged as what it names (only ever stricter)
        reasons.append(Reason(name, "a shell builtin, not a program another program can run"))
        return BUILTINS[name](walker, words, env, redirect, state.copy(), feed, via, depth, reasons)
    program, node, where = resolve_program(name, state)
    if node is None:
        if where is not None:
            return run_file(walker, where, words, redirect, state, feed, via, depth, reasons)
        reasons.append(Reason(name, "not a program the bastion knows"))
        return emit(walker, program, _argv(words), None, reasons, redirect, via, feed, state)
    if env_state.path_changed and "/" not in name:  # `PATH=/tmp ls` looks there too
        reasons.append(Reason(name, "PATH was changed to look elsewhere first"))
    parsed = parse(node, words[1:])

    return _effects.facts(
        walker,
        program,
        node,
        parsed,
        words,
        redirect,
        env_state,
        feed,
        via,
        depth,
        reasons,
        local_data,
    )


def _glob_programs(word: Word) -> list[str]:
    """Catalog programs a command name that globs could run (`/bin/r?` -> rm), at most 16."""
    if word.pattern is None or word.unknown:
        return []
    directory, _, base = word.pattern.rpartition("/")
    if directory and directory not in SYSTEM_BIN and directory != "/usr/local/bin":
        return []
    from fnmatch import fnmatchcase

    found = [name for name in CATALOG.names() if fnmatchcase(name, base)]
    return found[:16]


def resolve_program(name: str, state: ShellState) -> tuple[str, Program | None, str | None]:
    """(program name, catalog node, path of a file to run when it is one)."""
    if "/" not in name:
        shadow = _shadowing_file(name, state)
        if shadow is not None:
            return name, None, shadow
        return name, CATALOG.program(name), None
    directory, _, base = name.rstrip("/").rpartition("/")
    if not base:
        return name, None, None
    if directory.startswith("~") or directory.startswith(P.HOME):
        directory = directory.replace(P.HOME, "~", 1)
    canonical = P.resolve(name, state.cwd, state.home)
    if directory in SYSTEM_BIN or (canonical and canonical[0].rpartition("/")[0] in SYSTEM_BIN):
        return base, CATALOG.program(base), None
    return base, None, canonical[0] if canonical else name


def _path_directories(state: ShellState) -> list[str]:
    """Directories a login's PATH looks in: the system's, and its own ~/.local/bin and ~/bin
    (in both spellings a path can have here)."""
    homes = ("~", state.home) if state.home else ("~",)
    return [*SYSTEM_BIN, *(f"{h}/{d}" for h in homes for d in (".local/bin", "bin"))]


def _shadows_a_program(path: str, state: ShellState) -> bool:
    """A file written under a known program's name in a directory on the PATH
    (`cp /usr/bin/bash /usr/local/bin/grep`): every later `grep` runs it."""
    directory, _, name = path.rpartition("/")
    if not name or (CATALOG.program(name) is None and name not in _builtins.BUILTINS):
        return False
    return directory in _path_directories(state)


def _shadowing_file(name: str, state: ShellState) -> str | None:
    """A file this session wrote or linked into a PATH directory under a program's name
    (`cp /usr/bin/bash /usr/local/bin/grep; grep ...`): the name now runs that file."""
    if not (state.written or state.files or state.links):
        return None
    for directory in _path_directories(state):
        path = f"{directory}/{name}"
        if path in state.written or path in state.files or path in state.links:
            return path
    return None


def call_function(
    walker: Walker,
    name: str,
    body: str,
    words: list[str | Word],
    state: ShellState,
    feed: Feed,
    via: tuple[str, ...],
    depth: int,
    reasons: list[Reason],
    redirect: Redirects,
) -> Outcome:
    if walker.calling.count(name) >= 2:
        reasons.append(Reason(name, "a function that calls itself"))
        return emit(walker, name, _argv(words), None, reasons, redirect, via, feed, state)
    saved = state.positional
    state.positional = list(words[1:])
    walker.calling.append(name)
    try:
        if redirect.reads or redirect.writes or redirect.hosts or reasons:
            emit(walker, ":", (":",), None, reasons, redirect, via, feed, state)
        return walker.line(body, state, via=(*via, f"function {name}"), depth=depth + 1, feed=feed)
    finally:
        walker.calling.pop()
        state.positional = saved


def run_file(
    walker: Walker,
    path: str,
    words: list[str | Word],
    redirect: Redirects,
    state: ShellState,
    feed: Feed,
    via: tuple[str, ...],
    depth: int,
    reasons: list[Reason],
) -> Outcome:
    """`./x`, `/opt/app/bin/x`: a file run as a program."""

    spelled = P.resolve(path, state.cwd, state.home) if not path.startswith(("/", "~")) else (path,)
    target = spelled[0] if spelled else path
    caps = {"exec", "build"}
    extra: dict[str, object] = {"runs": (target,)}
    if target in state.downloaded:
        extra["runs_downloaded"] = True
        reasons.append(Reason(text_of(words[0]), "runs a file this session downloaded"))
    elif target.startswith(TEMP_DIRS):
        reasons.append(Reason(text_of(words[0]), "runs a program from a temporary directory"))
    else:
        _effects.judge_script(walker, target, None, words[1:], state, feed, via, depth, reasons)
    return emit(
        walker,
        target.rsplit("/", 1)[-1],
        _argv(words),
        None,
        reasons,
        redirect,
        via,
        feed,
        state,
        caps=frozenset(caps),
        **extra,
    )  # type: ignore[arg-type]


def emit(
    walker: Walker,
    program: str,
    argv: tuple[str, ...],
    parsed: Parsed | None,
    reasons: list[Reason],
    redirect: Redirects,
    via: tuple[str, ...],
    feed: Feed,
    state: ShellState,
    *,
    caps: frozenset[str] = frozenset(),
    output_text: str | None = None,
    out_class: int = ANY,
    reads: tuple[str, ...] = (),
    writes: tuple[str, ...] = (),
    hosts: tuple[str, ...] = (),
    deletes: tuple[str, ...] = (),
    runs: tuple[str, ...] = (),
    uses: tuple[str, ...] = (),
    sends: tuple[str, ...] = (),
    sql: tuple[str, ...] = (),
    units: tuple[str, ...] = (),
    targets: tuple[str, ...] = (),
    runs_input: bool = False,
    runs_downloaded: bool = False,
    open_args: bool = False,
    at: int | None = None,
) -> Outcome:
    """Record one Command (the hot path: one call per simple command); `at` puts it before
    the commands it runs, which were found first (a wrapper before what it wraps)."""
    if redirect is not NO_REDIRECTS:
        if redirect.reads:
            reads = (*reads, *redirect.reads)
        if redirect.writes:
            writes = (*writes, *redirect.writes)
        if redirect.hosts:
            hosts = (*hosts, *redirect.hosts)
        if redirect.reasons:
            reasons = [*redirect.reasons, *reasons]
    if writes:
        _remember_writes(state, writes, redirect, output_text)
        if any(_shadows_a_program(path, state) for path in writes):
            targets = (*targets, "shadows-program")
    extra = []
    if writes and "write" not in caps:
        extra.append("write")
    if deletes and "delete" not in caps:
        extra.append("delete")
    if hosts and "net" not in caps:
        extra.append("net")
    if sends and "send" not in caps:
        extra.append("send")
    if extra:
        caps = caps | frozenset(extra)
    feeds = feed.caps if feed.kind in ("pipe", "file") else _NO_CAPS
    if runs:
        if any(p.startswith("/proc/self/fd/") for p in runs):
            runs_input = True  # a script read from a pipe or process substitution
            feeds = feeds | frozenset(walker.proc_caps)
        if any(p in state.downloaded for p in runs):
            runs_downloaded = True
    if parsed is not None:
        subcommand = parsed.node.path()
        flags = parsed.flags
        options = (
            tuple(
                (g.spelling, text_of(g.value) if g.value is not None else "")
                for g in parsed.options
            )
            if parsed.options
            else ()
        )
    else:
        subcommand, flags, options = (), _NO_CAPS, ()
    unique = _unique
    command = Command(
        program,
        argv,
        subcommand,
        flags,
        options,
        caps,
        unique(reads),
        unique(writes),
        unique(deletes),
        unique(runs),
        unique(uses),
        unique(hosts),
        unique(sends),
        unique(sql),
        units,
        targets,
        not reasons,
        unique(tuple(reasons)) if reasons else (),
        via,
        feeds,
        runs_input,
        runs_downloaded,
        open_args,
    )
    walker.emit(command, at)
    if redirect.stdout_null:
        return Outcome("", 0, caps)
    return Outcome(output_text, out_class, caps)


_NO_CAPS: frozenset[str] = frozenset()


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    if len(items) < 2:
        return items
    return tuple(dict.fromkeys(items))


def _remember_writes(
    state: ShellState, writes: tuple[str, ...], redirect: Redirects, output_text: str | None
) -> None:
    """Files written: their text is known when a redirect took known output (`cat > x.sh
    <<EOF`, `echo CODE > x`); otherwise it is not known any more."""
    known_paths = set()
    if output_text is not None:
        for path, appended in redirect.stdout_files:
            old = state.files.get(path)
            if appended and old is not None and old.content is not None:
                state.files[path] = CarriedFile(old.content + output_text)
            elif appended and path in state.written:
                continue
            else:
                state.files[path] = CarriedFile(output_text)
            state.written.discard(path)
            known_paths.add(path)
    for path in writes:
        if path not in known_paths:
            state.written.add(path)
            state.files.pop(path, None)


def _argv(words: list[str | Word]) -> tuple[str, ...]:
    return tuple(text_of(w) for w in words)


def _quote(word: str | Word) -> str:
    if isinstance(word, str):
        return "'" + word.replace("'", "'\\''") + "'"
    return '"$__bastion_unknown__"'


# --- loops, tests, arithmetic ---------------------------------------------------------


def loop_values(
    walker: Walker, node: Node, state: ShellState, via: tuple[str, ...]
) -> list[str | Word] | None:
    values: list[str | Word] = []
    seen_in = False
    reasons: list[Reason] = []
    expand = expander(walker, state, via, 0, reasons)
    for position, child in enumerate(node.children):
        if node.field_name_for_child(position) == "value":
            seen_in = True
            values.extend(expand.words(child))
    if reasons:
        emit(walker, "for", ("for",), None, reasons, Redirects(), via, AGENT, state)
    if not seen_in:
        return None  # `for x; do`: the positional parameters
    return values


def test_command(
    walker: Walker, node: Node, state: ShellState, feed: Feed, via: tuple[str, ...], depth: int
) -> Outcome:
    """`[[ ... ]]`: its words are expanded; `-v` with a subscript and arithmetic
    comparisons evaluate text as arithmetic (which can run code)."""
    reasons: list[Reason] = []
    expand = expander(walker, state, via, depth, reasons)
    words: list[str] = ["[["]
    stack = [node]
    while stack:
        current = stack.pop()
        kind = current.type
        if kind in (
            "binary_expression",
            "unary_expression",
            "parenthesized_expression",
            "test_command",
            "negated_expression",
            "postfix_expression",
        ):
            operator = current.child_by_field_name("operator")
            op = node_text(operator) if operator is not None else ""
            if op in ("-eq", "-ne", "-lt", "-le", "-gt", "-ge"):
                for side in ("left", "right"):
                    operand = current.child_by_field_name(side)
                    if operand is not None:
                        for word in expand.words(operand):
                            _arith_operand(expand, word, reasons)
            if op == "-v":
                for child in current.children:
                    if child.is_named and child.type != "test_operator":
                        for word in expand.words(child):
                            if "[" in text_of(word):
                                reasons.append(
                                    Reason(
                                        text_of(word),
                                        "-v with a subscript evaluates it as arithmetic",
                                    )
                                )
            stack.extend(reversed(current.children))
            continue
        if current.is_named and kind not in ("test_operator", "regex"):
            for word in expand.words(current):
                words.append(text_of(word))
        elif kind == "regex":
            words.append(node_text(current))
    return emit(
        walker,
        "[[",
        tuple(words),
        None,
        reasons,
        Redirects(),
        via,
        feed,
        state,
        caps=frozenset({"info"}),
        output_text="",
        out_class=0,
    )


def _arith_operand(expand: Expander, word: str | Word, reasons: list[Reason]) -> None:
    from rules.arith import ArithError, evaluate_arith

    if not isinstance(word, str):
        if word.unknown == ANY:
            reasons.append(
                Reason(text_of(word), "an arithmetic comparison of unknown text can run code")
            )
        return
    try:
        evaluate_arith(word, expand._arith_lookup)
    except ArithError as exc:
        if exc.runs_code:
            reasons.append(Reason(word, str(exc)))


def arithmetic_statement(
    walker: Walker, node: Node, state: ShellState, via: tuple[str, ...]
) -> Outcome:
    """`(( ... ))` and `$(( ))` as a statement: evaluated for its risks; names it assigns
    become unknown numbers."""
    reasons: list[Reason] = []
    expand = expander(walker, state, via, 0, reasons)
    text = node_text(node)
    inner = text[2:-2] if text.startswith("((") else text[3:-2] if text.startswith("$((") else text
    for child in _substitutions(node):
        walker.substitution(child, state, via, 0)
    from rules.arith import ArithError, evaluate_arith

    expression = re.sub(r"\$\(.*?\)|`[^`]*`", "0", inner, flags=re.S)
    try:
        evaluate_arith(
            re.sub(r"(\+\+|--|[-+*/%&|^]?=(?!=)|<<=|>>=)", "+", expression), expand._arith_lookup
        )
    except ArithError as exc:
        if exc.runs_code or "[" in expression or "$" in inner:
            reasons.append(Reason(text[:60], str(exc)))
    for name in re.findall(
        r"([A-Za-z_][A-Za-z0-9_]*)\s*(?:\+\+|--|[-+*/%&|^]?=(?!=)|<<=|>>=)", inner
    ):
        state.set_var(name, None, SAFE)
    for name in re.findall(r"(?:\+\+|--)\s*([A-Za-z_][A-Za-z0-9_]*)", inner):
        state.set_var(name, None, SAFE)
    if reasons:
        return emit(walker, "((", ("((", inner), None, reasons, Redirects(), via, AGENT, state)
    return Outcome(None, SAFE)


def _substitutions(node: Node) -> list[Node]:
    found = []
    stack = [node]
    while stack:
        current = stack.pop()
        if current.type in ("command_substitution", "process_substitution"):
            found.append(current)
            continue
        stack.extend(current.children)
    return found


__all__ = [
    "BudgetExceeded",
    "emit",
    "expander",
    "invoke",
    "output",
    "output_class",
    "is_known",
    "PATH_KINDS",
    "Given",
    "SAFE",
]


from rules import builtins as _builtins  # noqa: E402  (imports this module)
from rules import effects as _effects  # noqa: E402
