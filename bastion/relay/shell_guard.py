"""Shell lines that would undo the bastion's ownership of the line: refused before any rule.

The target's bash is started with no line editing, no history, no history
expansion, and a prompt of the bastion's (bastion/relay/shell_start.py).
These lines would turn those back on, change the prompt machinery, show
the code that prints the prompt marks, or change how the terminal reads
lines. Each is denied (not held): there is nothing for a reviewer to weigh,
they only defeat the bastion's view of the shell.

    >>> refusal(["bind", "-x", '"\\\\C-t": true'])
    Refusal(rule='shell-line-editing', reason="bind: the target's bash does no line editing; the bastion edits lines")

Much of this is also enforced by the shell itself: the prompt variables
and the bastion's prompt function are read-only there. The refusal gives a
clear reason instead of bash's error, and covers what read-only cannot
(`set -o vi`, `set -x`, `trap ... DEBUG`, `stty`, `exec`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import tree_sitter_bash
from tree_sitter import Language, Node, Parser

from bastion.relay.terminal_programs import EngineCommand

_PARSER = Parser(Language(tree_sitter_bash.language()))

# The bastion's shell sets these (read-only there): the prompt, history, pagers, readline.
RESERVED_VARIABLES = frozenset(
    {
        "PS0",
        "PS1",
        "PS2",
        "PS3",
        "PS4",
        "PROMPT_COMMAND",
        "HISTFILE",
        "histchars",
        "INPUTRC",
        "EDITRC",
        "LESSSECURE",
        "LESSOPEN",
        "LESSCLOSE",
        "PAGER",
        "MANPAGER",
        "BASH_XTRACEFD",
    }
)
FUNCTION_PREFIX = "__bastion"
_EDITING_MODES = frozenset({"vi", "emacs"})
_HISTORY_OPTIONS = frozenset({"history", "histexpand"})
_TRACE_OPTIONS = frozenset({"xtrace", "verbose"})
_DECLARERS = frozenset({"declare", "typeset", "local", "readonly", "export"})
_STTY_READS = frozenset({"-a", "--all", "-g", "--save", "size", "speed"})


@dataclass(frozen=True)
class Refusal:
    rule: str
    reason: str


def refusal(argv: Sequence[str]) -> Refusal | None:
    """Why one simple command (its words) is refused, if it is."""
    if not argv:
        return None
    program, args = argv[0], list(argv[1:])
    if program in ("command", "builtin") and args:
        while args and args[0].startswith("-") and program == "command":
            if args[0] in ("-v", "-V"):
                return _shows_code(program, args[1:])
            args = args[1:]
        return refusal(args) if args else None
    if program == "bind":
        return Refusal("shell-line-editing", _why("bind", "editing"))
    if program in ("fc", "history"):
        return Refusal("shell-history", _why(program, "history"))
    if program in ("exec", "enable"):
        return Refusal(
            "shell-replace", f"{program}: would replace the shell or its builtins under the bastion"
        )
    if program == "trap":
        if not args or all(a in ("-p", "-l") for a in args):
            return None
        return Refusal(
            "shell-prompt", "trap: would run code around the bastion's prompt, unseen by it"
        )
    if program == "set":
        return _set(args)
    if program == "shopt":
        return _shopt(args)
    if program in _DECLARERS:
        if any(a.startswith(("-", "+")) and "f" in a[1:] for a in args):
            return Refusal("shell-prompt", f"{program} -f: would show or change shell functions")
        return _reserved(a.split("=", 1)[0].rstrip("+") for a in args if not a.startswith("-"))
    if program == "unset":
        return _reserved(a for a in args if not a.startswith("-"))
    if program == "type":
        return _shows_code(program, [a for a in args if not a.startswith("-")])
    if program == "compgen":
        return Refusal("shell-prompt", "compgen: would list the shell's functions and variables")
    if program == "stty":
        return _stty(args)
    return None


def refusal_of_line(line: str, commands: Sequence[EngineCommand]) -> Refusal | None:
    """The first refusal among the line's commands (as the engine read them) and assignments."""
    for command in commands:
        found = refusal(tuple(command.argv))
        if found is not None:
            return found
    return _reserved(assigned_names(line))


# --- inside -------------------------------------------------------------------------------


def _why(program: str, what: str) -> str:
    if what == "editing":
        return f"{program}: the target's bash does no line editing; the bastion edits lines"
    return (
        f"{program}: the target's bash keeps no history; history commands and expansion "
        "would run text the bastion did not decide"
    )


def _set(args: list[str]) -> Refusal | None:
    if not args:
        return Refusal("shell-prompt", "set: would list the shell's functions, the bastion's too")
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            break
        if arg == "-o" and i + 1 < len(args):
            found = _option(args[i + 1], "set -o")
            if found:
                return found
            i += 2
            continue
        if arg.startswith("-") and not arg.startswith("--"):
            if "H" in arg:
                return Refusal("shell-history", _why("set -H", "history"))
            if "x" in arg or "v" in arg:
                return Refusal("shell-prompt", "set -x/-v: would print the bastion's prompt code")
        i += 1
    return None


def _shopt(args: list[str]) -> Refusal | None:
    flags = "".join(a[1:] for a in args if a.startswith("-"))
    if "o" in flags and "s" in flags:
        for name in (a for a in args if not a.startswith("-")):
            found = _option(name, "shopt -os")
            if found:
                return found
    return None


def _option(name: str, how: str) -> Refusal | None:
    if name in _EDITING_MODES:
        return Refusal("shell-line-editing", _why(f"{how} {name}", "editing"))
    if name in _HISTORY_OPTIONS:
        return Refusal("shell-history", _why(f"{how} {name}", "history"))
    if name in _TRACE_OPTIONS:
        return Refusal("shell-prompt", f"{how} {name}: would print the bastion's prompt code")
    return None


def _shows_code(program: str, names: Sequence[str]) -> Refusal | None:
    """`type NAME` prints a function's code: refused for the bastion's, or a name not spelled out."""
    for name in names:
        if name.startswith(FUNCTION_PREFIX) or not _literal(name):
            return Refusal("shell-prompt", f"{program}: would show the bastion's prompt code")
    return None


def _literal(word: str) -> bool:
    return bool(word) and not any(ch in word for ch in "$`*?[‹\\")


def _stty(args: list[str]) -> Refusal | None:
    if all(a in _STTY_READS for a in args):
        return None
    return Refusal(
        "terminal-settings",
        "stty: would change how the target's terminal reads lines; only reading it is allowed",
    )


def _reserved(names: Iterator[str] | Sequence[str]) -> Refusal | None:
    for name in names:
        if name in RESERVED_VARIABLES:
            return Refusal(
                "shell-prompt",
                f"{name}: set by the bastion for this shell (prompt, history, pagers), read-only",
            )
    return None


def assigned_names(line: str) -> list[str]:
    """Every variable a line assigns (`NAME=`, `NAME+=`, prefix assignments, `for NAME in`)."""
    names = []
    for node in _nodes(line):
        if node.type in ("variable_assignment", "for_statement"):
            name = node.child_by_field_name("name") or node.child_by_field_name("variable")
            if name is not None and name.text is not None:
                names.append(name.text.decode("utf-8", "replace").split("[", 1)[0])
    return names


def defines_function(line: str) -> bool:
    return any(node.type == "function_definition" for node in _nodes(line))


def _nodes(line: str) -> Iterator[Node]:
    tree = _PARSER.parse(line.encode("utf-8", "surrogatepass"))
    stack: list[Node] = [tree.root_node]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(node.children)
