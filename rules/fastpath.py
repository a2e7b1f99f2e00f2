"""A reader for the plainest lines, without tree-sitter: most lines agents send.

    >>> tokens("kubectl get pods -n prod | grep -v Running > /tmp/x")[0][0]
    [[['kubectl', 'get', 'pods', '-n', 'prod'], []], [['grep', '-v', 'Running'], [('>', None, '/tmp/x')]]]

Lines made only of plain words, single-quoted strings, double-quoted strings
with nothing to expand, pipes, `&&`, `||`, `;` and simple file redirects mean
the same to bash whatever else bash knows: there is nothing to expand, so
the words are the argv. For those, the walker skips tree-sitter and word
expansion (rules/shell.py Walker.line). Anything else (`$`, backquotes,
globs, braces, `~`, `#`, `\\`, assignments, reserved words, `&`...) returns
None and the line takes the full path. tests/rules/test_fastpath.py checks,
by property tests, that both paths read every line this module accepts the
same way.
"""

from __future__ import annotations

import re

Redirect = tuple[str, str | None, str]  # (operator, descriptor, target)
Command = list  # [words, redirects]
Pipeline = list[Command]
# Each entry: a pipeline, then the operator joining it to the next (&&, ||, ;) or None.

_WORD = re.compile(r"""[A-Za-z0-9_./:=@%+,^-]+|'[^']*'|"[^"$`\\!]*\"""")
_SPACE = re.compile(r"[ \t]+")
_REDIRECT = re.compile(r"([0-2]?)(>>|>|<)(?![>&|(<])")
_DUP = re.compile(r"[0-2]?>&[0-2](?![0-9A-Za-z_])")
_RESERVED = frozenset(
    "if then else elif fi case esac for select while until do done function time coproc "
    "{ } [[ ]] ! in".split()
)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\+?=")
MAX_FAST = 1024  # longer lines take the full path


def tokens(line: str) -> list[tuple[Pipeline, str | None]] | None:
    """The line's pipelines, or None when it is not a plain line."""
    if len(line) > MAX_FAST or not line.isascii():
        return None
    result: list[tuple[Pipeline, str | None]] = []
    pipeline: Pipeline = []
    words: list[str] = []
    redirects: list[Redirect] = []
    position = 0
    length = len(line)

    def end_command() -> bool:
        if not words:
            return False
        first = words[0]
        if first in _RESERVED or _ASSIGNMENT.match(first):
            return False
        pipeline.append([list(words), list(redirects)])
        words.clear()
        redirects.clear()
        return True

    while position < length:
        space = _SPACE.match(line, position)
        if space:
            position = space.end()
            continue
        ch = line[position]
        if ch == "|" or ch == "&" or ch == ";":
            two = line[position : position + 2]
            if two in ("&&", "||"):
                operator = two
            elif ch in "|;" and two not in ("|&", ";;", ";&"):
                operator = ch
            else:
                return None
            if not end_command():
                return None
            position += len(operator)
            if operator == "|":
                continue
            result.append((pipeline, operator))
            pipeline = []
            continue
        dup = _DUP.match(line, position)
        if dup:
            position = dup.end()  # 2>&1: nothing to read or write
            continue
        redirect = _REDIRECT.match(line, position)
        if redirect:
            position = redirect.end()
            space = _SPACE.match(line, position)
            if space:
                position = space.end()
            target, position = _word(line, position)
            if target is None:
                return None
            redirects.append((redirect.group(2), redirect.group(1) or None, target))
            continue
        word, position = _word(line, position)
        if word is None:
            return None
        words.append(word)
    if words or redirects:
        if not end_command():
            return None
    elif pipeline:
        return None  # `a |` at the end
    if pipeline:
        result.append((pipeline, None))
    elif result and result[-1][1] != ";":
        return None  # `a &&` at the end
    return result


def _word(line: str, position: int) -> tuple[str | None, int]:
    """One word made of plain runs and quoted strings with nothing to expand."""
    parts: list[str] = []
    while position < len(line):
        match = _WORD.match(line, position)
        if match is None:
            break
        text = match.group()
        if text[0] in "'\"":
            parts.append(text[1:-1])
        else:
            parts.append(text)
        position = match.end()
    if not parts:
        return None, position
    if position < len(line) and line[position] not in " \t|&;<>":
        return None, position  # something this reader does not know follows
    return "".join(parts), position
