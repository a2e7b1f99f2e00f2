"""Could a shell glob in a command name the file a rule protects?

    >>> overlaps("/et?", "/etc")
    True
    >>> overlaps("~/.ssh/*.pub", "~/.ssh/id_rsa")
    False
    >>> overlaps("/**/id_rsa", "**/.ssh/id_rsa")
    True

The command's word is a bash pathname pattern: `*`, `?` and `[...]` never
match a `/`, nor a `.` that starts a name (so `cat *` does not read
`.env`); `**` (which the bastion writes for "anything below", as find
reaches) matches anything. A rule's path pattern reads the same way except
that a `*` may match a leading dot (`~/.ssh/*` covers `~/.ssh/.x`). Both
are small automata; the answer is whether some string is accepted by both,
found by a search over pairs of positions. It is exact for these pattern
languages, which is why globbed arguments need no special case in the
rules themselves.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_PATTERN = 256  # longer words are assumed to overlap (fail closed)
MAX_STEPS = 20_000  # a search that needs more is assumed to find an overlap (fail closed)
GLOB_CHARS = frozenset("*?[")

_Token = tuple[
    str, object
]  # ("lit", ch) | ("one", None) | ("star", None) | ("any", None) | ("set", (chars, negated))


def rule_regex(pattern: str) -> str:
    """A rule's path pattern as a regular expression: `**` anything, `*` and `?` within one
    name, `[...]` a set (`[*]` a literal star)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end, chars, negated = _bracket(pattern, i)
            if end is None:
                out.append(re.escape(ch))
            else:
                body = "".join(re.escape(c) for c in sorted(chars))
                out.append(f"[^/{body}]" if negated else f"[{body}]")
                i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def has_glob(word: str) -> bool:
    """A word bash would expand as a pattern. One holding whitespace came from quotes
    (`psql -c 'SELECT count(*) ...'`), and quoted words are never expanded."""
    if GLOB_CHARS.isdisjoint(word):
        return False
    # `[w\ ]` still globs in bash with a quoted space inside the brackets.
    return "[" in word or not _WHITESPACE.search(word)


_WHITESPACE = re.compile(r"\s")


@lru_cache(maxsize=16384)
def overlaps(word: str, pattern: str) -> bool:
    """Whether the bash glob `word` and the fnmatch pattern `pattern` share a match."""
    if len(word) > MAX_PATTERN or len(pattern) > MAX_PATTERN:
        return True
    if not has_glob(pattern):  # a name the rule spells out: plain glob matching
        return _bash_regex(word).fullmatch(pattern) is not None
    if not _ends_agree(word, pattern):
        return False
    left, right = _tokens(word), _tokens(pattern)
    alphabet = _alphabet(left + right)
    start = (0, 0, True)
    seen = {start}
    todo = [start]
    steps = 0
    while todo:
        steps += 1
        if steps > MAX_STEPS:
            return True
        i, j, name_start = todo.pop()
        if i == len(left) and j == len(right):
            return True
        following = []
        # A star may match nothing.
        if i < len(left) and left[i][0] in ("star", "any"):
            following.append((i + 1, j, name_start))
        if j < len(right) and right[j][0] in ("star", "any"):
            following.append((i, j + 1, name_start))
        if i < len(left) and j < len(right):
            for ch in alphabet:
                steps += 1
                if steps > MAX_STEPS:
                    return True
                if not _accepts(left[i], ch, shell=True, name_start=name_start):
                    continue
                if not _accepts(right[j], ch, shell=False, name_start=name_start):
                    continue
                after_i = i if left[i][0] in ("star", "any") else i + 1
                after_j = j if right[j][0] in ("star", "any") else j + 1
                following.append((after_i, after_j, ch == "/"))
        for state in following:
            if state not in seen:
                seen.add(state)
                todo.append(state)
    return False


def _ends_agree(word: str, pattern: str) -> bool:
    """Cheap refusal before the search: the spelled-out starts and ends must agree."""
    for a, b in ((word, pattern), (word[::-1], pattern[::-1])):
        fixed_a = _literal_run(a)
        fixed_b = _literal_run(b)
        common = min(len(fixed_a), len(fixed_b))
        if fixed_a[:common] != fixed_b[:common]:
            return False
    return True


def _literal_run(text: str) -> str:
    """The characters before the first wildcard (or backslash, kept out for simplicity)."""
    for index, ch in enumerate(text):
        if ch in "*?[]\\":
            return text[:index]
    return text


@lru_cache(maxsize=4096)
def _bash_regex(word: str) -> re.Pattern[str]:
    """The glob as bash matches path names: wildcards never match `/` nor a leading `.`."""
    parts: list[str] = []
    name_start = True
    for kind, value in _tokens(word):
        guard = "(?!\\.)" if name_start else ""
        if kind == "lit":
            parts.append(re.escape(value))  # type: ignore[arg-type]
            name_start = value == "/"
            continue
        if kind == "any":
            parts.append(".*")
        elif kind == "star":
            parts.append(guard + "[^/]*")
        elif kind == "one":
            parts.append(guard + "[^/]")
        else:
            chars, negated = value  # type: ignore[misc]
            body = "".join(re.escape(c) for c in sorted(chars) if c != "/")
            parts.append(guard + (f"[^/{body}]" if negated else f"[{body}]" if body else "(?!)"))
        name_start = False
    return re.compile("".join(parts), re.S)


def _tokens(pattern: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*" and pattern[i + 1 : i + 2] == "*":
            # `**`: any descendants (what a recursive reader or find reaches), `/` included
            if tokens and tokens[-1][0] == "star":
                tokens.pop()
            if not tokens or tokens[-1][0] != "any":
                tokens.append(("any", None))
            i += 1
            if pattern[i + 1 : i + 2] == "/":
                i += 1  # `**/` also matches no directory at all
        elif ch == "*":
            if not tokens or tokens[-1][0] not in ("star", "any"):
                tokens.append(("star", None))
        elif ch == "?":
            tokens.append(("one", None))
        elif ch == "[":
            end, chars, negated = _bracket(pattern, i)
            if end is None:
                tokens.append(("lit", "["))
            else:
                tokens.append(("set", (chars, negated)))
                i = end
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            tokens.append(("lit", pattern[i]))
        else:
            tokens.append(("lit", ch))
        i += 1
    return tokens


def _bracket(pattern: str, start: int) -> tuple[int | None, frozenset[str], bool]:
    """[abc], [!a-z], [^x], []x]: (index of the closing ], its characters, negated?)."""
    i = start + 1
    negated = i < len(pattern) and pattern[i] in "!^"
    if negated:
        i += 1
    chars: set[str] = set()
    first = True
    while i < len(pattern) and (pattern[i] != "]" or first):
        if i + 2 < len(pattern) and pattern[i + 1] == "-" and pattern[i + 2] != "]":
            low, high = ord(pattern[i]), ord(pattern[i + 2])
            chars.update(chr(c) for c in range(low, min(high, low + 256) + 1))
            i += 3
        else:
            chars.add(pattern[i])
            i += 1
        first = False
    if i >= len(pattern):
        return None, frozenset(), False
    return i, frozenset(chars), negated


def _alphabet(tokens: list[_Token]) -> list[str]:
    """Every character that can tell the patterns apart, plus one that none names."""
    chars = {"/", "."}
    for kind, value in tokens:
        if kind == "lit":
            chars.add(value)  # type: ignore[arg-type]
        elif kind == "set":
            chars.update(value[0])  # type: ignore[index]
    spare = next(chr(c) for c in range(0x4E00, 0x9FFF) if chr(c) not in chars)
    return sorted(chars) + [spare]


def _accepts(token: _Token, ch: str, *, shell: bool, name_start: bool) -> bool:
    kind, value = token
    if kind == "lit":
        return ch == value
    if kind == "any":
        return True
    if ch == "/":
        return False  # a glob's * ? and [...] never match / (only ** does)
    if shell and ch == "." and name_start:
        return False  # bash globs need a leading dot spelled out
    if kind in ("one", "star"):
        return True
    chars, negated = value  # type: ignore[misc]
    return (ch in chars) != negated
