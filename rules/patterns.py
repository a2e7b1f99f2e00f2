"""Bash pattern matching (`${x#pat}`, `case`, `[[ == ]]`) as Python regular expressions.

>>> bool(bash_pattern_regex("sha*").fullmatch("shadow"))
True
"""

from __future__ import annotations

import re
from functools import lru_cache


@lru_cache(maxsize=1024)
def bash_pattern_regex(pattern: str) -> re.Pattern[str]:
    """`*`, `?`, `[...]` (with `!`/`^`), backslash escapes; `*` matches `/` here."""
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        elif ch == "[":
            end = _bracket_end(pattern, i)
            if end is None:
                out.append(re.escape(ch))
            else:
                body = pattern[i + 1 : end]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                body = body.replace("\\", "\\\\").replace("[:", "[[:")  # classes: left literal
                out.append("[" + ("^" if negate else "") + body + "]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    try:
        return re.compile("".join(out), re.S)
    except re.error:
        return re.compile(re.escape(pattern), re.S)


def _bracket_end(pattern: str, start: int) -> int | None:
    i = start + 1
    if i < len(pattern) and pattern[i] in "!^":
        i += 1
    if i < len(pattern) and pattern[i] == "]":
        i += 1
    while i < len(pattern):
        if pattern[i] == "]":
            return i
        i += 1
    return None
