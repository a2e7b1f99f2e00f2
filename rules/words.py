"""Reading tree-sitter-bash nodes as the shell would: the value of a word (quotes,
escapes, ANSI-C strings, known variables), heredoc bodies, and tidy paths.

`word_text` is the one place that decides what a word means; the walker in
rules/shell.py calls it for every argument, redirect target and assignment.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

from tree_sitter import Node

from rules.normalize import unescape_ansi_c, unescape_word


def heredoc_text(redirect: Node) -> str:
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


def node_text(node: Node) -> str:
    return (node.text or b"").decode(errors="replace")


# Leaves whose text is never expanded, and what a substitution hidden in a leaf looks like.
NO_SUBSTITUTION = frozenset(
    {
        "raw_string",
        "ansi_c_string",
        "heredoc_start",
        "heredoc_end",
        "comment",
        "number",
        "variable_name",
        "special_variable_name",
    }
)
HIDDEN_SUBSTITUTION = re.compile(rb"\$\(|`|[<>]\(")

_ASTRAL = re.compile("[\U00010000-\U0010ffff\ud800-\udfff]")


def parser_safe(text: str) -> tuple[str, bool]:
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


def word_text(
    node: Node, env: dict[str, str] | None = None, quoted: bool = False
) -> tuple[str, bool, bool]:
    """(text, computed at run time?, has unquoted braces to expand?)

    With `env` (variable -> value), expansions of known variables are put in;
    unquoted, their value is split on whitespace as the shell does (the
    split points are marked with SPLIT for the caller).
    """
    kind = node.type
    if kind in ("word", "number", "command_name", "concatenation"):
        if kind in ("word", "number"):
            raw = node_text(node)
            return unescape_word(raw), False, "{" in raw and ("," in raw or ".." in raw)
        parts = [word_text(child, env, quoted) for child in node.children]
        brace = any(b for _, _, b in parts) or (
            kind == "concatenation"
            and any(c.type == "word" and c.text in (b"{", b"}") for c in node.children)
        )
        return "".join(p for p, _, _ in parts), any(d for _, d, _ in parts), brace
    if kind == "brace_expression":
        return node_text(node), False, True
    if kind == "raw_string":
        return node_text(node)[1:-1], False, False
    if kind == "ansi_c_string":
        return unescape_ansi_c(node_text(node)[2:-1]), False, False
    if kind == "string":
        parts = [word_text(child, env, True) for child in node.children if child.type != '"']
        return "".join(p for p, _, _ in parts), any(d for _, d, _ in parts), False
    if kind == "string_content":
        return (
            node_text(node).replace('\\"', '"').replace("\\$", "$"),
            False,
            False,
        )
    if kind in ("simple_expansion", "expansion") and env is not None:
        value = known_value(node, env)
        if value is not None:
            return (value if quoted else SPLIT.join(value.split()) or SPLIT), False, False
    if kind == "command_substitution" and env is not None:
        value = echoed_output(node)
        if value is not None:  # /etc/$(printf sha)dow
            return (value if quoted else SPLIT.join(value.split()) or SPLIT), False, False
    if kind in (
        "simple_expansion",
        "expansion",
        "command_substitution",
        "process_substitution",
        "arithmetic_expansion",
    ):
        return node_text(node), True, False
    return node_text(node), kind not in ("file_descriptor",), False


SPLIT = "\x00"  # where an unquoted expansion splits a word (a line never holds NUL)


def echoed_output(node: Node) -> str | None:
    """What `$(echo WORDS)` or `$(printf FORMAT)` prints, when every word is literal."""
    commands = [c for c in node.children if c.is_named]
    if len(commands) != 1 or commands[0].type != "command":
        return None
    words = []
    for child in commands[0].children:
        text, dynamic, brace = word_text(child)
        if dynamic or brace:
            return None
        words.append(text)
    if not words or words[0] not in ("echo", "printf"):
        return None
    if words[0] == "printf" and (len(words) != 2 or "%" in words[1]):
        return None  # a format with conversions: its output is not known exactly
    return printed_text(words[0], words[1:])


def printed_text(program: str, args: Sequence[str]) -> str:
    """What `echo ARGS` or `printf FORMAT ARGS` prints, near enough to judge it: echo's
    flags dropped, printf's escapes read (conversions are left as written)."""
    if program == "echo":
        return " ".join(a for a in args if a not in ("-n", "-e", "-E"))
    if not args:
        return ""
    return " ".join([unescape_ansi_c(args[0]), *args[1:]])


def known_value(node: Node, env: dict[str, str]) -> str | None:
    """$NAME or ${NAME} of a variable set earlier on the line; ${IFS...} is whitespace."""
    names = [c for c in node.children if c.type == "variable_name"]
    if len(names) != 1:
        return None
    name = node_text(names[0])
    plain = node.type == "simple_expansion" or node.child_count == 3  # ${ NAME }
    if name == "IFS" and "IFS" not in env:
        return " "  # the default IFS, or any part of it: whitespace either way
    if plain and name in env:
        return env[name]
    operators = [c.type for c in node.children if not c.is_named and c.type not in ("${", "}")]
    if name not in env and operators[:1] in ([":-"], ["-"], [":="], ["="]):
        rest = [c for c in node.children if c.is_named and c.type != "variable_name"]
        return "".join(word_text(c, env, True)[0] for c in rest)  # ${F:-/etc/shadow}
    return None


def assignment_text(node: Node) -> str:
    name = node.child_by_field_name("name")
    value = node.child_by_field_name("value")
    name_text = node_text(name) if name is not None else ""
    return f"{name_text}={word_text(value)[0] if value is not None else ''}"


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
