"""Bash arithmetic (`$(( ))`, `(( ))`, `let`, subscripts), evaluated where exact.

    >>> evaluate_arith("2 * (3 + x)", lambda name: ({"x": "4"}.get(name), 2))
    14

Bash evaluates a variable's *text* as an arithmetic expression, so a value
such as `a[$(cmd)]` runs `cmd`: arithmetic over a variable whose value is not
a plain number is refused with `runs_code`, as is a subscript or any
substitution inside the expression. An unknown variable makes the result
unknown (None). Assignments (`x += 1`) are refused as unknown too: the
caller makes the variable unknown.
"""

from __future__ import annotations

import re
from collections.abc import Callable

MAX_DEPTH = 32


class ArithError(Exception):
    def __init__(self, message: str, runs_code: bool = False) -> None:
        super().__init__(message)
        self.runs_code = runs_code


_TOKEN = re.compile(
    r"\s*(?:(0[xX][0-9a-fA-F]+|\d+#[0-9a-zA-Z@_]+|\d+)|([A-Za-z_][A-Za-z0-9_]*)|"
    r"(\*\*|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%<>&|^!~()?:,]))"
)
_ASSIGN = re.compile(r"(?<![=!<>])=(?!=)|\+\+|--|[-+*/%&|^]=|<<=|>>=")


Lookup = Callable[[str], tuple[str | None, int]]  # name -> (value, class when unknown)


def evaluate_arith(expression: str, lookup: Lookup) -> int | None:
    if "$" in expression or "`" in expression or "[" in expression:
        raise ArithError("arithmetic with a substitution or subscript can run code", True)
    if _ASSIGN.search(expression):
        raise ArithError("arithmetic that assigns")
    tokens = _tokens(expression)
    parser = _Parser(tokens, lookup)
    value = parser.ternary()
    if parser.position != len(tokens):
        raise ArithError("arithmetic does not parse")
    return value


def _tokens(expression: str) -> list[tuple[str, str]]:
    tokens = []
    position = 0
    text = expression.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ArithError("arithmetic does not parse")
        number, name, operator = match.groups()
        if number is not None:
            tokens.append(("n", number))
        elif name is not None:
            tokens.append(("v", name))
        else:
            tokens.append(("o", operator))
        position = match.end()
        while position < len(text) and text[position].isspace():
            position += 1
    return tokens


def _number(text: str) -> int:
    if text.lower().startswith("0x"):
        return int(text, 16)
    if "#" in text:
        base, digits = text.split("#", 1)
        try:
            return int(digits, int(base))
        except ValueError as exc:
            raise ArithError("arithmetic does not parse") from exc
    if text.startswith("0") and len(text) > 1:
        try:
            return int(text, 8)
        except ValueError as exc:
            raise ArithError("arithmetic does not parse") from exc
    return int(text)


_BINARY = [
    ("||",),
    ("&&",),
    ("|",),
    ("^",),
    ("&",),
    ("==", "!="),
    ("<", ">", "<=", ">="),
    ("<<", ">>"),
    ("+", "-"),
    ("*", "/", "%"),
]


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], lookup: Lookup):
        self.tokens = tokens
        self.position = 0
        self.lookup = lookup
        self.depth = 0
        self.unknown = False

    def peek(self) -> str | None:
        if self.position < len(self.tokens) and self.tokens[self.position][0] == "o":
            return self.tokens[self.position][1]
        return None

    def ternary(self) -> int | None:
        condition = self.binary(0)
        if self.peek() == "?":
            self.position += 1
            yes = self.ternary()
            if self.peek() != ":":
                raise ArithError("arithmetic does not parse")
            self.position += 1
            no = self.ternary()
            if condition is None or yes is None or no is None:
                return None
            return yes if condition else no
        return condition

    def binary(self, level: int) -> int | None:
        if level == len(_BINARY):
            return self.power()
        left = self.binary(level + 1)
        while self.peek() in _BINARY[level]:
            operator = self.tokens[self.position][1]
            self.position += 1
            right = self.binary(level + 1)
            left = _apply(operator, left, right)
        return left

    def power(self) -> int | None:
        base = self.unary()
        if self.peek() == "**":
            self.position += 1
            exponent = self.power()
            if base is None or exponent is None:
                return None
            if exponent < 0 or exponent > 64:
                return None
            return base**exponent
        return base

    def unary(self) -> int | None:
        operator = self.peek()
        if operator in ("-", "+", "!", "~"):
            self.position += 1
            value = self.unary()
            if value is None:
                return None
            return {"-": -value, "+": value, "!": int(not value), "~": ~value}[operator]
        return self.atom()

    def atom(self) -> int | None:
        if self.position >= len(self.tokens):
            raise ArithError("arithmetic does not parse")
        kind, text = self.tokens[self.position]
        self.position += 1
        if kind == "n":
            return _number(text)
        if kind == "v":
            return self.variable(text)
        if text == "(":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise ArithError("arithmetic nested too deeply")
            value = self.ternary()
            if self.peek() != ")":
                raise ArithError("arithmetic does not parse")
            self.position += 1
            self.depth -= 1
            return value
        raise ArithError("arithmetic does not parse")

    def variable(self, name: str) -> int | None:
        value, unknown = self.lookup(name)
        if value is None:
            if unknown == 1:  # SAFE: a number or a name at worst
                return None
            raise ArithError(f"arithmetic on {name}, whose value is not known, can run code", True)
        text = value.strip()
        if text == "":
            return 0
        if re.fullmatch(r"-?(0[xX][0-9a-fA-F]+|\d+)", text):
            return _number(text.lstrip("-")) * (-1 if text.startswith("-") else 1)
        # bash evaluates the text itself: a name is looked up again, anything else may run code
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", text) and self.depth < MAX_DEPTH:
            self.depth += 1
            return self.variable(text)
        raise ArithError(f"arithmetic on {name}, whose value is not a number, can run code", True)


def _apply(operator: str, left: int | None, right: int | None) -> int | None:
    if left is None or right is None:
        return None
    if operator in ("/", "%") and right == 0:
        return None
    if operator in ("<<", ">>") and not 0 <= right < 64:
        return None
    result = {
        "||": lambda: int(bool(left) or bool(right)),
        "&&": lambda: int(bool(left) and bool(right)),
        "|": lambda: left | right,
        "^": lambda: left ^ right,
        "&": lambda: left & right,
        "==": lambda: int(left == right),
        "!=": lambda: int(left != right),
        "<": lambda: int(left < right),
        ">": lambda: int(left > right),
        "<=": lambda: int(left <= right),
        ">=": lambda: int(left >= right),
        "<<": lambda: left << right,
        ">>": lambda: left >> right,
        "+": lambda: left + right,
        "-": lambda: left - right,
        "*": lambda: left * right,
        "/": lambda: int(left / right),
        "%": lambda: left - right * int(left / right),
    }[operator]()
    if abs(result) > 2**63:
        return None
    return result
