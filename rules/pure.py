"""What a few text tools print, computed exactly when their input is known.

    >>> output("rev", ["wodahs/cte/"], None)
    '/etc/shadow'
    >>> output("base64", ["-d"], "Y2F0IC9ldGMvc2hhZG93")
    'cat /etc/shadow'

`$(echo ...)`, `$(printf ...)`, `$(rev <<< ...)` and pipes of such tools are
how a line hides a word from a reader; bash computes them, and so do we.
Anything outside this small set, or any input not known, gives None (the
output is unknown). `output_class` says what an unknown output can look
like: SAFE for tools that print ids, numbers and names, ANY otherwise.
"""

from __future__ import annotations

import base64
import binascii
import re

from rules.values import ANY, SAFE

MAX_OUTPUT = 64 * 1024


def output(
    program: str,
    args: list[str],
    stdin: str | None,
    cwd: str | None = None,
    login: str | None = None,
) -> str | None:
    function = _TOOLS.get(program)
    if function is None:
        return None
    try:
        result = function(args, stdin)
    except (ValueError, IndexError, binascii.Error, UnicodeDecodeError):
        return None
    if result is None or len(result) > MAX_OUTPUT:
        return None
    return result


def _echo(args: list[str], stdin: str | None) -> str | None:
    newline = True
    escapes = False
    while args and re.fullmatch(r"-[neE]+", args[0]):
        for flag in args[0][1:]:
            if flag == "n":
                newline = False
            elif flag == "e":
                escapes = True
            else:
                escapes = False
        args = args[1:]
    text = " ".join(args)
    if escapes:
        if "\\c" in text:
            return _unescape(text.split("\\c", 1)[0])
        text = _unescape(text)
    return text + ("\n" if newline else "")


def _unescape(text: str) -> str:
    from rules.words import unescape_ansi_c

    return unescape_ansi_c(text)


_CONVERSION = re.compile(r"%(%|[-+ #0]*\d*(?:\.\d+)?([sbdiqcxXo]))")


def _printf(args: list[str], stdin: str | None) -> str | None:
    if not args:
        return None
    if args[0] == "--":
        args = args[1:]
    if not args or args[0].startswith("-"):
        return None  # printf -v is a builtin form handled by the walker
    template, values = args[0], args[1:]
    conversions = [m for m in _CONVERSION.finditer(template) if m.group(1) != "%"]
    if not conversions and values:
        return None
    out: list[str] = []
    position = 0
    rounds = 0
    while True:
        rounds += 1
        if rounds > 64:
            return None
        piece, position = _format_once(template, values, position)
        if piece is None:
            return None
        out.append(piece)
        if not conversions or position >= len(values):
            break
    return "".join(out)


def _format_once(template: str, values: list[str], position: int) -> tuple[str | None, int]:
    result: list[str] = []
    last = 0
    for match in _CONVERSION.finditer(template):
        result.append(_unescape(template[last : match.start()]))
        last = match.end()
        if match.group(1) == "%":
            result.append("%")
            continue
        letter = match.group(2)
        value = values[position] if position < len(values) else ""
        position += 1
        spec = match.group(1)
        if letter == "s":
            if spec != "s":
                return None
            result.append(value)
        elif letter == "b":
            result.append(_unescape(value))
        elif letter in "di":
            if spec not in ("d", "i"):
                return None
            result.append(str(int(value or "0", 0)))
        elif letter == "c":
            result.append(value[:1])
        else:
            return None
    result.append(_unescape(template[last:]))
    return "".join(result), position


def _rev(args: list[str], stdin: str | None) -> str | None:
    if args or stdin is None:
        return None
    lines = stdin.split("\n")
    return "\n".join(line[::-1] for line in lines)


def _base64(args: list[str], stdin: str | None) -> str | None:
    decode = any(a in ("-d", "--decode", "-di", "-id") for a in args)
    rest = [a for a in args if not a.startswith("-")]
    if rest or stdin is None:
        return None
    if decode:
        data = base64.b64decode(re.sub(r"\s+", "", stdin) + "==", validate=False)
        return data.decode("utf-8")
    return base64.b64encode(stdin.encode()).decode() + "\n"


def _xxd(args: list[str], stdin: str | None) -> str | None:
    if stdin is None or sorted(args) not in (["-p", "-r"], ["-ps", "-r"], ["-rp"], ["-r", "-ps"]):
        return None
    return binascii.unhexlify(re.sub(r"\s+", "", stdin)).decode("utf-8")


def _tr(args: list[str], stdin: str | None) -> str | None:
    if stdin is None:
        return None
    delete = False
    if args and args[0] == "-d":
        delete, args = True, args[1:]
    if any(a.startswith("-") for a in args):
        return None
    if delete and len(args) == 1:
        chars = _tr_set(args[0])
        return None if chars is None else "".join(c for c in stdin if c not in chars)
    if len(args) != 2:
        return None
    source, target = _tr_set(args[0]), _tr_set(args[1])
    if source is None or target is None or not target:
        return None
    target = target + target[-1] * max(0, len(source) - len(target))
    return stdin.translate(str.maketrans(source, target[: len(source)]))


def _tr_set(text: str) -> str | None:
    classes = {
        "[:upper:]": "ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        "[:lower:]": "abcdefghijklmnopqrstuvwxyz",
        "[:digit:]": "0123456789",
    }
    for name, chars in classes.items():
        text = text.replace(name, chars)
    if "[" in text or "\\" in text:
        return None
    out: list[str] = []
    i = 0
    while i < len(text):
        if i + 2 < len(text) and text[i + 1] == "-":
            low, high = ord(text[i]), ord(text[i + 2])
            if high < low or high - low > 256:
                return None
            out.extend(chr(c) for c in range(low, high + 1))
            i += 3
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _cat(args: list[str], stdin: str | None) -> str | None:
    if args and args != ["-"]:
        return None
    return stdin


def _basename(args: list[str], stdin: str | None) -> str | None:
    if not args or args[0].startswith("-") or len(args) > 2:
        return None
    name = args[0].rstrip("/").rsplit("/", 1)[-1] or "/"
    if len(args) == 2 and name.endswith(args[1]) and name != args[1]:
        name = name[: -len(args[1])]
    return name + "\n"


def _dirname(args: list[str], stdin: str | None) -> str | None:
    if len(args) != 1 or args[0].startswith("-"):
        return None
    path = args[0].rstrip("/")
    if "/" not in path:
        return ".\n"
    return (path.rsplit("/", 1)[0] or "/") + "\n"


def _head_tail(tail: bool):  # type: ignore[no-untyped-def]
    def run(args: list[str], stdin: str | None) -> str | None:
        if stdin is None:
            return None
        count = 10
        if len(args) == 2 and args[0] == "-n" and args[1].isdigit():
            count = int(args[1])
        elif len(args) == 1 and re.fullmatch(r"-n?\d+", args[0]):
            count = int(args[0].lstrip("-n"))
        elif args:
            return None
        lines = stdin.splitlines(keepends=True)
        return "".join(lines[-count:] if tail else lines[:count]) if count else ""

    return run


def _sed(args: list[str], stdin: str | None) -> str | None:
    """Only `sed s/A/B/` and `s/A/B/g` with plain text (the common hiding trick)."""
    if stdin is None or len(args) != 1:
        return None
    match = re.fullmatch(r"s(.)((?:(?!\1).)*)\1((?:(?!\1).)*)\1(g?)", args[0])
    if match is None:
        return None
    old, new, every = match.group(2), match.group(3), match.group(4)
    if not old or any(c in old + new for c in "\\.*[]^$&"):
        return None
    return stdin.replace(old, new, -1 if every else 1)


_TOOLS = {
    "echo": _echo,
    "printf": _printf,
    "rev": _rev,
    "base64": _base64,
    "xxd": _xxd,
    "tr": _tr,
    "cat": _cat,
    "basename": _basename,
    "dirname": _dirname,
    "head": _head_tail(False),
    "tail": _head_tail(True),
    "sed": _sed,
    "true": lambda args, stdin: "",
    ":": lambda args, stdin: "",
}


PURE = frozenset(_TOOLS)


def output_class(program: str, args: list[str], names: bool) -> int:
    """What an unknown output can hold: SAFE for tools that print names and numbers."""
    if program == "cat" and args and all(a.endswith(".pid") for a in args):
        return SAFE  # `kill -HUP $(cat /run/nginx.pid)`: a pid file holds a number
    if program == "date":
        formats = [a for a in args if a.startswith("+")]
        if all(not re.search(r"[/*?\[]", f) and re.search(r"%", f) for f in formats):
            return SAFE
        return ANY
    return SAFE if names else ANY
