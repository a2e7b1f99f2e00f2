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

_TOKEN = re.compile(
    r"""(?P<space>[ \t]+)"""
    r"""|(?P<op>&&|\|\||[|;](?![|;&]))"""
    r"""|(?P<dup>[0-2]?>&[0-2](?![0-9A-Za-z_]))"""
    r"""|(?P<redir>([0-2]?)(>>|>|<)(?![>&|(<])[ \t]*)"""
    r"""|(?P<word>(?:[A-Za-z0-9_./:=@%+,^-]++|'[^']*+'|"[^"$`\\!]*+")++)(?=[ \t|&;<>]|$)"""
)
_QUOTED = re.compile("'([^']*)'|\"([^\"]*)\"")
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
    pending: tuple[str, str | None] | None = None  # a redirect waiting for its file
    position = 0
    length = len(line)
    match = _TOKEN.match
    while position < length:
        found = match(line, position)
        if found is None:
            return None
        position = found.end()
        kind = found.lastgroup
        if kind == "space" or kind == "dup":
            if pending is not None and kind == "dup":
                return None
            continue
        if kind == "word":
            text = found.group("word")
            if text.startswith("="):
                return None  # tree-sitter-bash reads `==` and `=x` words its own way
            if "'" in text or '"' in text:
                text = _QUOTED.sub(_unquote, text)
            if pending is not None:
                redirects.append((pending[0], pending[1], text))
                pending = None
            else:
                words.append(text)
            continue
        if pending is not None:
            return None  # `>` with no file
        if kind == "redir":
            pending = (found.group(6), found.group(5) or None)
            continue
        operator = found.group("op")
        if not words or words[0] in _RESERVED or _ASSIGNMENT.match(words[0]):
            return None
        pipeline.append([words, redirects])
        words, redirects = [], []
        if operator == "|":
            continue
        result.append((pipeline, operator))
        pipeline = []
    if pending is not None:
        return None
    if words or redirects:
        if not words or words[0] in _RESERVED or _ASSIGNMENT.match(words[0]):
            return None
        pipeline.append([words, redirects])
    elif pipeline:
        return None  # `a |` at the end
    if pipeline:
        result.append((pipeline, None))
    elif result and result[-1][1] != ";":
        return None  # `a &&` at the end
    return result


def _unquote(match: re.Match[str]) -> str:
    return match.group(1) if match.group(1) is not None else match.group(2)
