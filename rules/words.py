"""Reading one shell word as bash expands it: braces, tilde, parameters, command and
arithmetic substitution, word splitting, globs and quote removal, in bash's order.

    >>> from rules.shell import read_words
    >>> read_words('x=/etc/shaXow; echo "${x/X/d}" ~root/{a,b}')
    [['echo', '/etc/shadow', '/root/a', '/root/b']]

`Expander.words(node)` returns the words a node stands for: `str` when
fully known, `rules.values.Word` when part of it is unknown or it globs.
What cannot be evaluated exactly becomes unknown, never a guess; features
that make bash run code while expanding (`${x@P}`, arithmetic on text that
is not a number) are reported through `Expander.reason` and make the
command not understood.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from tree_sitter import Node

from rules.arith import ArithError, evaluate_arith
from rules.context import Var
from rules.paths import HOME
from rules.patterns import bash_pattern_regex
from rules.values import ANY, GLOB_CHARS, SAFE, UNKNOWN, Piece, Word

if TYPE_CHECKING:
    from rules.context import ShellState

MAX_BRACE_RESULTS = 256
MAX_WORDS = 4096

# A segment of a word being read: (kind, value, quoted)
#   ("L", text, quoted): literal text; ("U", class, quoted): unknown; ("F", None, False): a
#   field break from word splitting; ("B", text, False): unquoted source text (brace syntax).
Segment = tuple[str, object, bool]
_PLAIN = re.compile(r"[A-Za-z0-9_./:=@%+,-]+")
_SPECIAL_SAFE = frozenset("$!?#-0")
_ANSI_C = re.compile(
    r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|c.|.)", re.S
)
_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}


def unescape_ansi_c(body: str) -> str:
    """The value of $'...' (without the $' and '); bash ends the word at a NUL."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "xuU" and len(code) > 1:
            try:
                return chr(int(code[1:], 16))
            except (ValueError, OverflowError):
                return ""
        if code[0] in "01234567":
            return chr(int(code, 8) & 0xFF)
        if code[0] == "c" and len(code) == 2:
            return chr(ord(code[1]) & 0x1F)
        return _SIMPLE_ESCAPES.get(code, "\\" + code)

    return _ANSI_C.sub(one, body).split("\x00", 1)[0]


def node_text(node: Node) -> str:
    return (node.text or b"").decode(errors="replace")


class Expander:
    """Expands word nodes against a shell state; `run` walks a substitution's commands
    and returns what it prints when that is known (else None) and its output class."""

    def __init__(
        self,
        state: ShellState,
        run: Callable[[Node, str], tuple],  # type: ignore[type-arg]
        reason: Callable[[str, str], None],
    ) -> None:
        self.state = state
        self.run = run
        self.reason = reason
        self.ifs: str | None = " \t\n"
        self.done: dict[tuple[int, int, str], tuple] = {}  # type: ignore[type-arg]
        self.local_data = False  # a substitution's output holds data read from local files
        self.defaults = False  # read `${X:-D}` of an unknown X as D (the stricter second reading)
        self.saw_default = False
        self.reparse: Callable[[str], Node | None] | None = None
        self.reparsed: dict[str, Node] = {}
        # Walks text as a subshell's commands: `$(( cmd ))` that is not arithmetic is
        # run by bash as `$( (cmd) )`.
        self.run_text: Callable[[str], None] | None = None
        ifs = state.variables.get("IFS")
        if ifs is not None:
            self.ifs = ifs.value if isinstance(ifs.value, str) else None

    # --- entry points ----------------------------------------------------------------

    def words(self, node: Node, *, assignment: bool = False) -> list[str | Word]:
        """Every word the node expands to (brace expansion may give several)."""
        kind = node.type
        if kind == "word" or kind == "number":
            raw = node_text(node)
            if _PLAIN.fullmatch(raw) and not (assignment and "~" in raw):
                return [raw]
        tokens: list[object] = []
        self._tokens(node, tokens)
        results: list[str | Word] = []
        for variant in expand_braces(tokens):
            segments = self._segments(variant, assignment)
            results.extend(_fields(segments))
            if len(results) > MAX_WORDS:
                self.reason(node_text(node)[:60], "expands to too many words to analyse")
                break
        if self.state.options and "noglob" in self.state.options:
            results = [_unglob(w) for w in results]
        return results

    def value(self, node: Node | None, *, assignment: bool = True) -> str | Word:
        """One word's value as in an assignment: no splitting, no globbing."""
        if node is None:
            return ""
        tokens: list[object] = []
        self._tokens(node, tokens)
        segments = self._segments(tokens, assignment, whole=True)
        pieces = []
        for kind, value, _ in segments:
            if kind == "U":
                pieces.append(Piece(None, value, True))  # type: ignore[arg-type]
            elif kind in ("L", "B"):
                pieces.append(Piece(str(value), 0, True))
        return Word.join(pieces)

    # --- tokens: the word's parts before brace expansion --------------------------------

    def _tokens(self, node: Node, out: list[object]) -> None:
        kind = node.type
        if kind in ("word", "number"):
            _literal_tokens(node_text(node), out)
        elif kind == "concatenation":
            for child in node.children:
                self._tokens(child, out)
        elif kind == "brace_expression":
            out.extend(node_text(node))
        elif kind in ("raw_string",):
            out.append(("L", node_text(node)[1:-1], True))
        elif kind == "ansi_c_string":
            out.append(("L", unescape_ansi_c(node_text(node)[2:-1]), True))
        else:
            out.append(node)  # strings and expansions: evaluated after brace expansion

    # --- segments: tokens with expansions done --------------------------------------

    def _segments(
        self, tokens: list[object], assignment: bool, whole: bool = False
    ) -> list[Segment]:
        segments: list[Segment] = []
        start = _tilde(tokens, self.state, assignment)
        if start is not None:
            head, used = start
            segments.extend(head)
            tokens = tokens[used:]
        for position, token in enumerate(tokens):
            if isinstance(token, str):
                segments.append(("B", token, False))
                if assignment and token == ":" and position + 1 < len(tokens):
                    pass  # tilde after `:` in assignments is rare; left literal (stricter)
            elif isinstance(token, tuple):
                segments.append(token)  # type: ignore[arg-type]
            else:
                self._expand(token, segments, quoted=whole)  # type: ignore[arg-type]
        return segments

    def _expand(self, node: Node, out: list[Segment], quoted: bool) -> None:
        kind = node.type
        if kind == "string" or kind == "translated_string":
            had = len(out)
            for child in node.children:
                if child.type in ('"', "$"):
                    continue
                if child.type == "string_content":
                    out.append(("L", _dquote_unescape(node_text(child)), True))
                else:
                    self._expand(child, out, quoted=True)
            if len(out) == had:
                out.append(("L", "", True))  # "" is a word
        elif kind in ("raw_string",):
            out.append(("L", node_text(node)[1:-1], True))
        elif kind == "ansi_c_string":
            out.append(("L", unescape_ansi_c(node_text(node)[2:-1]), True))
        elif kind in ("word", "number"):
            text = node_text(node)
            out.append(("L", text if quoted else re.sub(r"\\(.)", r"\1", text), True))
        elif kind == "concatenation":
            for child in node.children:
                self._expand(child, out, quoted)
        elif kind == "simple_expansion" or kind == "expansion":
            self._parameter(node, out, quoted)
        elif kind == "command_substitution":
            found = self._substituted(node)
            if len(found) == 3 and not quoted:
                # $(git ls-files), $(find ...): words that are each one of those paths
                glob = found[2]  # type: ignore[misc]
                out.append(("L", (HOME + glob[1:]) if glob.startswith("~") else glob, False))
                return
            text = found[0]
            # bash drops the output's trailing newlines: "$(dirname /etc/x)/shadow" is one path
            self._put(out, text.rstrip("\n") if text is not None else None, found[1], quoted)
        elif kind == "process_substitution":
            self._substituted(node)
            out.append(("L", "/dev/fd/63", True))
        elif kind == "arithmetic_expansion":
            text = node_text(node)
            inside = text[2:-1] if text.startswith("$[") else text[3:-2]  # $[x]: old spelling
            value = self._arith(inside, text)
            self._put(out, value, SAFE, quoted)
        else:
            text = node_text(node)
            if "$" in text or "`" in text:
                self.reason(text[:60], f"the shell syntax {kind!r} is not analysed")
                out.append(("U", ANY, quoted))
            else:
                out.append(("L", text, True))

    def _run_inside(self, node: Node) -> None:
        """Commands substituted in an operand run whether or not the operand is used
        (`${x%$(rm -rf /etc)}`): walk them once, now. tree-sitter-bash leaves some
        operands as raw text (a `regex` leaf): those are read again as a word."""
        stack = [node]
        while stack:
            current = stack.pop()
            if current.type in ("command_substitution", "process_substitution"):
                self._substituted(current)
                continue
            if current.child_count == 0 and _HIDDEN.search(current.text or b""):
                word = self._reparsed(node_text(current))
                if word is not None:
                    stack.append(word)
                else:
                    self.reason(node_text(current)[:60], "a substitution the bastion cannot read")
                continue
            stack.extend(current.children)

    def _reparsed(self, text: str) -> Node | None:
        key = (-1, len(self.reparsed), text)
        found = self.reparsed.get(text)
        if found is None and self.reparse is not None:
            found = self.reparse(text)
            if found is not None:
                self.reparsed[text] = found
        del key
        return found

    def _substituted(self, node: Node) -> tuple:  # type: ignore[type-arg]
        key = (node.start_byte, node.end_byte, node.type)
        found = self.done.get(key)
        if found is None:
            found = self.done[key] = self.run(node, "$(...)")
        return found

    def _put(self, out: list[Segment], text: str | None, cls: int, quoted: bool) -> None:
        if text is None:
            out.append(("U", cls, quoted))
            return
        if quoted:
            out.append(("L", text, True))
            return
        _split_into(out, text, self.ifs)

    def _arith(self, expression: str, shown: str) -> str | None:
        written = expression
        expression = _ARITH_PARAMETER.sub(self._arith_parameter, expression)
        try:
            value = evaluate_arith(expression, self._arith_lookup)
        except ArithError as exc:
            if exc.runs_code:
                self.reason(shown[:60], str(exc))
            if shown.startswith("$((") and self.run_text is not None:
                # Text bash cannot read as arithmetic it runs as `$( (text) )`: its commands
                # are judged too (the line is not understood already; this only adds).
                self.run_text(f"({written})")
            return None
        return None if value is None else str(value)

    def _arith_parameter(self, match: re.Match[str]) -> str:
        """`$x` inside arithmetic is replaced by its text before bash evaluates it."""
        name = match.group(1) or match.group(2)
        value, unknown = self._arith_lookup(name)
        if value is None:
            return " __safe__ " if unknown == SAFE else "$unknown"
        return value

    def _arith_lookup(self, name: str) -> tuple[str | None, int]:
        if name in _NUMERIC_SPECIALS or name == "__safe__":
            return None, SAFE
        var = self.lookup(name)
        if var is None:
            return None, ANY
        if isinstance(var.value, str):
            return var.value, 0
        if isinstance(var.value, tuple):
            return (var.value[0] if var.value else ""), 0
        return None, var.unknown

    # --- parameters ------------------------------------------------------------------------

    def lookup(self, name: str) -> Var | None:
        """A variable's state, following namerefs; None when unknown (environment)."""
        state = self.state
        for _ in range(8):
            var = state.variables.get(name)
            if var is None:
                return _environment(name, state)
            if "n" in var.attrs and isinstance(var.value, str):
                name = var.value
                continue
            return var
        return None

    def _parameter(self, node: Node, out: list[Segment], quoted: bool) -> None:
        parts = _expansion_parts(node)
        if parts is None:
            self.reason(node_text(node)[:60], "this parameter expansion is not analysed")
            out.append(("U", ANY, quoted))
            return
        prefix, name, index, operator, operands = parts
        for operand in operands:
            self._run_inside(operand)
        if name in ("@", "*") or index in ("@", "*"):
            self._list_expansion(prefix, name, index, operator, operands, out, quoted, node)
            return
        if prefix == "!":
            if operator in ("*", "@"):
                out.append(("U", SAFE, quoted))  # ${!prefix*}: names
                return
            target = self._scalar(name, index, node)
            if target is None or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?", target):
                if target is not None and "[" in target:
                    self.reason(
                        node_text(node)[:60], "an indirect name with a subscript can run code"
                    )
                out.append(("U", ANY, quoted))
                return
            name, _, sub = target.partition("[")
            index = sub.rstrip("]") or None
        var = self.lookup(name) if not name.isdigit() else None
        if var is not None and "g" in var.attrs and isinstance(var.value, str) and not operator:
            out.append(("L", var.value, False))  # a loop over a glob: the value is one match
            return
        value = self._scalar(name, index, node)
        cls = (
            SAFE
            if value is None
            and (
                _safe_name(name) or (var is not None and var.value is None and var.unknown == SAFE)
            )
            else ANY
        )
        if prefix == "#":
            self._put(out, None if value is None else str(len(value)), SAFE, quoted)
            return
        result = self._operate(value, name, operator, operands, node)
        if result is _UNKNOWN:
            out.append(("U", cls if not operator else ANY, quoted))
            return
        self._put(out, result, ANY, quoted)  # type: ignore[arg-type]

    def _scalar(self, name: str, index: str | None, node: Node) -> str | None:
        if name.isdigit():
            if name == "0":
                arg0 = self.state.arg0
                if arg0 is None:
                    return "bash"
                return arg0 if isinstance(arg0, str) else None
            positional = self.state.positional
            if positional is None:
                return ""  # `bash -c LINE` has no arguments
            position = int(name)
            if position <= len(positional):
                item = positional[position - 1]
                return item if isinstance(item, str) else None
            return ""
        if len(name) == 1 and name in _SPECIAL_SAFE:
            return None
        var = self.lookup(name)
        position = None
        if index is not None and (var is None or "A" not in var.attrs):
            position = self._index(index, node)  # an indexed array's subscript is arithmetic,
            # evaluated whether the array is set or not (`${a[x]}`, x='a[$(cmd)]', runs cmd)
        if var is None:
            return None
        if index is not None:
            if not isinstance(var.value, tuple):
                if index in ("0",) and isinstance(var.value, str):
                    return var.value
                return None
            if position is None and "A" in var.attrs:
                position = self._index(index, node)
            if position is None:
                return None
            return var.value[position] if -len(var.value) <= position < len(var.value) else ""
        if isinstance(var.value, tuple):
            return var.value[0] if var.value else ""
        return var.value

    def _index(self, index: str, node: Node) -> int | None:
        if index.lstrip("-").isdigit():
            return int(index)
        value = self._arith(index, node_text(node))
        return int(value) if value is not None and value.lstrip("-").isdigit() else None

    def _operate(
        self, value: str | None, name: str, operator: str, operands: list[Node], node: Node
    ) -> str | None | object:
        if not operator:
            return value if value is not None else _UNKNOWN
        if operator in (":-", "-", ":=", "=", ":+", "+", ":?", "?"):
            var_set = value is not None or name in self.state.variables
            empty = value == ""
            use_default = (not var_set) or (operator.startswith(":") and empty)
            if value is None and name not in self.state.variables:
                if operator in (":+", "+") or not self.defaults:
                    self.saw_default = self.saw_default or operator not in (":+", "+")
                    return _UNKNOWN  # an environment variable: set or not is unknown
                return self._operand(operands)  # the reading where it is unset
            if operator in (":+", "+"):
                return self._operand(operands) if not use_default else ""
            if not use_default:
                return value
            word = self._operand(operands)
            if operator in (":=", "=") and word is not _UNKNOWN:
                self.state.set_var(name, word)  # type: ignore[arg-type]
            return word
        if value is None:
            if operator == "@P":
                self.reason(
                    node_text(node)[:60], "prompt expansion (@P) of text not known can run commands"
                )
            return _UNKNOWN
        if operator in ("#", "##", "%", "%%"):
            pattern = self._operand(operands, pattern=True)
            if pattern is _UNKNOWN:
                return _UNKNOWN
            return _trim(value, pattern, operator)  # type: ignore[arg-type]
        if operator in ("/", "//", "/#", "/%"):
            pattern = self._operand(operands[:1], pattern=True)
            replacement = self._operand(operands[1:]) if len(operands) > 1 else ""
            if pattern is _UNKNOWN or replacement is _UNKNOWN:
                return _UNKNOWN
            return _substitute(value, pattern, replacement, operator)  # type: ignore[arg-type]
        if operator in ("^", "^^", ",", ",,", "~", "~~"):
            if operands:
                return _UNKNOWN
            if operator == "^":
                return value[:1].upper() + value[1:]
            if operator == "^^":
                return value.upper()
            if operator == ",":
                return value[:1].lower() + value[1:]
            if operator == ",,":
                return value.lower()
            return value.swapcase() if operator == "~~" else value[:1].swapcase() + value[1:]
        if operator.startswith("@"):
            return self._transform(value, operator[1:], node)
        if operator == ":":
            return self._slice(value, operands, node)
        return _UNKNOWN

    def _transform(self, value: str, letter: str, node: Node) -> str | object:
        if letter == "Q":
            return "'" + value.replace("'", "'\\''") + "'"
        if letter == "E":
            return unescape_ansi_c(value)
        if letter == "U":
            return value.upper()
        if letter == "L":
            return value.lower()
        if letter == "u":
            return value[:1].upper() + value[1:]
        if letter == "P":
            if any(ch in value for ch in "$`\\"):
                self.reason(node_text(node)[:60], "prompt expansion (@P) can run commands")
                return _UNKNOWN
            return value
        if letter in ("A", "K", "a", "k"):
            return _UNKNOWN
        return _UNKNOWN

    def _slice(self, value: str, operands: list[Node], node: Node) -> str | object:
        numbers = []
        for operand in operands[:2]:
            text = node_text(operand)
            result = self._arith(text, node_text(node))
            if result is None:
                return _UNKNOWN
            numbers.append(int(result))
        if not numbers:
            return _UNKNOWN
        start = numbers[0]
        if start < 0:
            start = max(0, len(value) + start)
        if len(numbers) == 1:
            return value[start:]
        length = numbers[1]
        end = start + length if length >= 0 else len(value) + length
        return value[start:end]

    def _operand(self, operands: list[Node], pattern: bool = False) -> str | object:
        """The operand's text (a pattern keeps its glob characters, quoted ones escaped)."""
        if not operands:
            return ""
        segments: list[Segment] = []
        for operand in operands:
            if operand.type == "regex":
                text = node_text(operand)
                if "$" in text or "`" in text:
                    reread = self._reparsed(text)
                    if reread is None:
                        return _UNKNOWN
                    operand = reread
                else:
                    segments.append(("B" if pattern else "L", text, False))
                    continue
            tokens: list[object] = []
            self._tokens(operand, tokens)
            segments.extend(self._segments(tokens, False))
        parts = []
        for kind, value, quoted in segments:
            if kind == "U":
                return _UNKNOWN
            if kind == "F":
                parts.append(" ")
                continue
            text = str(value)
            if pattern and quoted:
                text = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)
            parts.append(text)
        return "".join(parts)

    def _list_expansion(
        self,
        prefix: str,
        name: str,
        index: str | None,
        operator: str,
        operands: list[Node],
        out: list[Segment],
        quoted: bool,
        node: Node,
    ) -> None:
        """$@, $*, ${a[@]}, ${!a[@]}, ${#a[@]}: several words (quoted "$@": one each)."""
        if name in ("@", "*"):
            positional = self.state.positional
            items: list[str] | None = (
                [] if positional is None else [p for p in positional if isinstance(p, str)]
            )
            if positional is not None and items is not None and len(items) != len(positional):
                items = None
        else:
            var = self.lookup(name)
            if var is None or var.value is None:
                items = None
            elif isinstance(var.value, tuple):
                items = list(var.value)
            else:
                items = [var.value]
        if items is not None and prefix == "#":
            self._put(out, str(len(items)), SAFE, quoted)
            return
        if items is not None and prefix == "!":
            items = [str(i) for i in range(len(items))]
        if items is None or operator:
            out.append(("U", ANY, quoted))
            return
        star = (index or name) == "*"
        if quoted and star:
            out.append(("L", (self.ifs or " ")[:1].join(items), True))
            return
        for position, item in enumerate(items):
            if position:
                out.append(("F", None, False))
            if quoted:
                out.append(("L", item, True))
            else:
                _split_into(out, item, self.ifs)
        if not items and quoted:
            out.append(("E", None, False))  # "$@" with nothing: no word at all


_UNKNOWN = object()
_HIDDEN = re.compile(rb"\$\(|`|[<>]\(|\$\{")
_ARITH_PARAMETER = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?|\$(\d+|[#?$!])")
_NUMERIC_SPECIALS = frozenset(
    "RANDOM SRANDOM SECONDS LINENO BASHPID PPID UID EUID EPOCHSECONDS # ? $ !".split()
)


def _safe_name(name: str) -> bool:
    return name in (
        "RANDOM",
        "SECONDS",
        "LINENO",
        "BASHPID",
        "PPID",
        "UID",
        "EUID",
        "EPOCHSECONDS",
        "EPOCHREALTIME",
        "SRANDOM",
        "HOSTNAME",
        "HOSTTYPE",
    )


def _environment(name: str, state: ShellState) -> Var | None:
    """What the login environment gives a variable nobody set on this session."""
    if state.poisoned:
        return None
    if name == "HOME":
        return Var(HOME)
    if name == "PWD":
        return Var(state.cwd.replace("~", HOME, 1)) if state.cwd else None
    if name in ("USER", "LOGNAME") and state.login:
        return Var(state.login)
    if name == "IFS":
        return Var(" \t\n")
    if name == "OLDPWD" and state.oldpwd:
        return Var(state.oldpwd.replace("~", HOME, 1))
    return None


def _expansion_parts(
    node: Node,
) -> tuple[str, str, str | None, str, list[Node]] | None:
    """(prefix ! or #, name, subscript, operator, operand nodes) of a parameter expansion."""
    if node.type == "simple_expansion":
        for child in node.children:
            if child.type in ("variable_name", "special_variable_name"):
                return "", node_text(child), None, "", []
        return None
    prefix = ""
    name: str | None = None
    index: str | None = None
    operator = ""
    operands: list[Node] = []
    for child in node.children:
        kind = child.type
        if kind in ("${", "}"):
            continue
        if name is None:
            if kind in ("!", "#") and not prefix:
                prefix = kind
                continue
            if kind in ("variable_name", "special_variable_name"):
                name = node_text(child)
                continue
            if kind == "subscript":
                base = child.child_by_field_name("name")
                sub = child.child_by_field_name("index")
                if base is None or sub is None:
                    return None
                name = node_text(base)
                index = node_text(sub)
                if sub.type not in ("word", "number") or not re.fullmatch(r"-?\d+|[@*]", index):
                    index = node_text(sub)
                continue
            if kind == "number":
                name = node_text(child)
                continue
            return None
        if not child.is_named:
            operator += kind
            continue
        operands.append(child)
    if name is None:
        if prefix == "#":  # ${#}: the number of positional parameters
            return "", "#", None, "", []
        return None
    return prefix, name, index, operator, operands


def _trim(value: str, pattern: str, operator: str) -> str:
    regex = bash_pattern_regex(pattern)
    if operator in ("#", "##"):
        ends = range(len(value) + 1) if operator == "#" else range(len(value), -1, -1)
        for end in ends:
            if regex.fullmatch(value[:end]):
                return value[end:]
        return value
    starts = range(len(value), -1, -1) if operator == "%" else range(len(value) + 1)
    for start in starts:
        if regex.fullmatch(value[start:]):
            return value[:start]
    return value


def _substitute(value: str, pattern: str, replacement: str, operator: str) -> str:
    if pattern == "":
        return value
    regex = bash_pattern_regex(pattern)
    if operator == "/#":
        for end in range(len(value), -1, -1):
            if regex.fullmatch(value[:end]):
                return replacement + value[end:]
        return value
    if operator == "/%":
        for start in range(len(value) + 1):
            if regex.fullmatch(value[start:]):
                return value[:start] + replacement
        return value
    result: list[str] = []
    position = 0
    done = False
    while position <= len(value):
        if not done:
            for end in range(len(value), position - 1, -1):
                if end > position and regex.fullmatch(value[position:end]):
                    result.append(replacement)
                    position = end
                    done = operator == "/"
                    break
            else:
                if position < len(value):
                    result.append(value[position])
                position += 1
            continue
        result.append(value[position:])
        break
    return "".join(result)


def _dquote_unescape(text: str) -> str:
    """Backslash in double quotes quotes only $ ` " \\ and newline."""
    if "\\" not in text:
        return text
    return re.sub(r'\\([$`"\\\n])', lambda m: "" if m.group(1) == "\n" else m.group(1), text)


def _literal_tokens(raw: str, out: list[object]) -> None:
    """An unquoted word's characters: brace syntax stays a 1-character str token,
    escaped characters become quoted literals."""
    i = 0
    n = len(raw)
    while i < n:
        ch = raw[i]
        if ch == "\\" and i + 1 < n:
            if raw[i + 1] == "\n":
                i += 2
                continue
            out.append(("L", raw[i + 1], True))
            i += 2
            continue
        out.append(ch)
        i += 1


def _tilde(
    tokens: list[object], state: ShellState, assignment: bool
) -> tuple[list[Segment], int] | None:
    """`~`, `~user`, `~+`, `~-` at the start of a word: (segments, tokens used)."""
    if not tokens or tokens[0] != "~":
        if assignment:
            return None
        return None
    name = []
    used = 1
    while used < len(tokens) and isinstance(tokens[used], str) and tokens[used] != "/":
        name.append(tokens[used])
        used += 1
    if used < len(tokens) and not isinstance(tokens[used], str):
        return None  # `~$x`: no tilde expansion
    user = "".join(name)
    if user == "":
        home = home_value(state)
        return ([("L", home, True)] if home is not None else [("U", ANY, True)]), used
    if user == "+":
        return (
            [("L", state.cwd.replace("~", HOME, 1), True)] if state.cwd else [("U", ANY, True)]
        ), used
    if user == "-":
        return (
            [("L", state.oldpwd.replace("~", HOME, 1), True)]
            if state.oldpwd
            else [("U", ANY, True)]
        ), used
    if re.fullmatch(r"[+-]?\d+", user):
        return [("U", ANY, True)], used
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", user):
        return None
    if user == state.login:
        return [("L", HOME, True)], used
    home = "/root" if user == "root" else f"/home/{user}"
    return [("L", home, True)], used


def home_value(state: ShellState) -> str | None:
    """What `~` (and `cd` alone) stand for: $HOME, which a line may have set
    (`HOME=/etc; cat ~/shadow`); the login's home while nobody did; None when unknown."""
    var = state.variables.get("HOME")
    if var is None:
        return HOME
    return var.value if isinstance(var.value, str) else None


def _split_into(out: list[Segment], text: str, ifs: str | None) -> None:
    """Unquoted expansion result: split on IFS; its glob characters stay active."""
    if ifs is None:
        out.append(("U", ANY, False))
        return
    if not ifs:
        out.append(("B", text, False))
        return
    pieces = re.split("[" + re.escape(ifs) + "]+", text) if text else [""]
    for position, piece in enumerate(pieces):
        if position:
            out.append(("F", None, False))
        if piece:
            out.append(("B", piece, False))


def _fields(segments: list[Segment]) -> list[str | Word]:
    """Join segments into words at field breaks; unquoted text may glob."""
    words: list[str | Word] = []
    pieces: list[Piece] = []
    had_quoted = False
    for kind, value, quoted in segments:
        if kind == "F":
            if pieces or had_quoted:
                words.append(Word.join(pieces))
            pieces, had_quoted = [], False
            continue
        if kind == "E":
            continue
        if kind == "U":
            pieces.append(Piece(None, value, quoted))  # type: ignore[arg-type]
            had_quoted = had_quoted or quoted
            continue
        text = str(value)
        if quoted:
            had_quoted = True
            pieces.append(Piece(text, 0, True))
        else:
            pieces.append(Piece(text, 0, False, not GLOB_CHARS.isdisjoint(text)))
    if pieces and (
        had_quoted or any(p.text for p in pieces) or any(p.text is None for p in pieces)
    ):
        words.append(Word.join(pieces))
    elif had_quoted:
        words.append("")
    return words


def _unglob(word: str | Word) -> str | Word:
    if isinstance(word, Word) and word.pattern is not None and not word.unknown:
        return word.text
    return word


def expand_braces(tokens: list[object]) -> list[list[object]]:
    """Bash brace expansion over tokens (1-character str tokens are unquoted source).
    At most MAX_BRACE_RESULTS + 1 results."""
    if "{" not in tokens:
        return [tokens]
    results: list[list[object]] = []
    _braces(tokens, results)
    return results[: MAX_BRACE_RESULTS + 1]


def _braces(tokens: list[object], results: list[list[object]]) -> None:
    if len(results) > MAX_BRACE_RESULTS:
        return
    found = _first_brace(tokens)
    if found is None:
        results.append(tokens)
        return
    start, end, options = found
    head, tail = tokens[:start], tokens[end + 1 :]
    for option in options:
        _braces(head + option + tail, results)
        if len(results) > MAX_BRACE_RESULTS:
            return


def _first_brace(tokens: list[object]) -> tuple[int, int, list[list[object]]] | None:
    """The first `{...}` with a top-level comma or a sequence, and its options."""
    for start, token in enumerate(tokens):
        if token != "{":
            continue
        depth = 0
        commas: list[int] = []
        for position in range(start + 1, len(tokens)):
            t = tokens[position]
            if t == "{":
                depth += 1
            elif t == "}":
                if depth == 0:
                    inner = tokens[start + 1 : position]
                    if commas:
                        bounds = [start, *commas, position]
                        options = [
                            tokens[a + 1 : b] for a, b in zip(bounds, bounds[1:], strict=False)
                        ]
                        return start, position, options
                    sequence = _sequence(inner)
                    if sequence is not None:
                        return start, position, [list(s) for s in sequence]
                    break
                depth -= 1
            elif t == "," and depth == 0:
                commas.append(position)
    return None


def _sequence(inner: list[object]) -> list[str] | None:
    if not all(isinstance(t, str) for t in inner):
        return None
    text = "".join(inner)  # type: ignore[arg-type]
    numbers = re.fullmatch(r"(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?", text)
    letters = re.fullmatch(r"([A-Za-z])\.\.([A-Za-z])(?:\.\.(-?\d+))?", text)
    if numbers:
        lo, hi = int(numbers.group(1)), int(numbers.group(2))
        by = abs(int(numbers.group(3) or 1)) or 1
        width = max(len(numbers.group(1)), len(numbers.group(2)))
        pad = numbers.group(1).startswith("0") or numbers.group(2).startswith("0")
        step = by if hi >= lo else -by
        items = []
        for n in range(lo, hi + (1 if step > 0 else -1), step):
            items.append(str(n).zfill(width) if pad else str(n))
            if len(items) > MAX_BRACE_RESULTS:
                break
        return items
    if letters:
        lo, hi = ord(letters.group(1)), ord(letters.group(2))
        by = abs(int(letters.group(3) or 1)) or 1
        step = by if hi >= lo else -by
        return [chr(n) for n in range(lo, hi + (1 if step > 0 else -1), step)][
            : MAX_BRACE_RESULTS + 1
        ]
    return None


__all__ = ["Expander", "expand_braces", "node_text", "unescape_ansi_c", "UNKNOWN"]
