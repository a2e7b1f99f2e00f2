"""What a shell word is worth once expanded: known text, a glob, or partly unknown.

    >>> w = Word.join([Piece("backup-"), Piece(None, SAFE), Piece(".tgz")])
    >>> w.text == "backup-" + UNKNOWN + ".tgz", w.pattern
    (True, 'backup-*.tgz')

A fully known word with no glob is a plain `str` (the common case, and the
fast one). Anything else is a `Word`: its text with each unknown part
marked by UNKNOWN, the bash pattern it stands for when it globs or holds a
part known only by its shape, and how much is unknown:

- SAFE: a value that has no `/`, no whitespace or glob characters, and does
  not start with `-` (a date, a host name, a commit id, a pid). It cannot
  add words or options, nor leave the directory a path names, so in a path
  it reads as `*` within one name.
- ANY: anything at all. Unquoted, it may also become several words, or none.
"""

from __future__ import annotations

from dataclasses import dataclass

UNKNOWN = "\ufffc"
SAFE = 1
ANY = 2
GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class Piece:
    """A part of a word before joining: literal text, or an unknown of some class."""

    text: str | None  # None: unknown
    unknown: int = 0
    quoted: bool = True  # quoted text never globs; a quoted unknown never splits
    glob: bool = False  # unquoted literal text that holds glob characters


@dataclass(frozen=True, slots=True)
class Word:
    text: str
    pattern: str | None = None  # the bash glob this word expands, if it does
    unknown: int = 0  # 0, SAFE or ANY: the worst unknown part
    splits: bool = False  # may be several words (an unquoted ANY part)

    @staticmethod
    def join(pieces: list[Piece]) -> str | Word:
        """One word from its pieces (after word splitting, which the caller did)."""
        text_parts: list[str] = []
        pattern_parts: list[str] = []
        unknown = 0
        splits = False
        globbing = False
        for piece in pieces:
            if piece.text is None:
                text_parts.append(UNKNOWN)
                pattern_parts.append("*")
                unknown = max(unknown, piece.unknown)
                splits = splits or (not piece.quoted and piece.unknown == ANY)
                continue
            text_parts.append(piece.text)
            if piece.glob and not piece.quoted:
                globbing = True
                pattern_parts.append(piece.text)
            else:
                pattern_parts.append(escape_glob(piece.text))
        text = "".join(text_parts)
        if not unknown and not globbing:
            return text
        if not globbing and unknown == ANY:
            return Word(text, None, unknown, splits)
        return Word(text, "".join(pattern_parts), unknown, splits)


def escape_glob(text: str) -> str:
    if GLOB_CHARS.isdisjoint(text) and "\\" not in text:
        return text
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


def text_of(word: str | Word) -> str:
    """The word as shown to a reader: unknown parts as ‹?›."""
    if type(word) is str:
        return word.replace("\x01", "~") if "\x01" in word else word
    return word.text.replace(UNKNOWN, "‹?›").replace("\x01", "~")  # type: ignore[union-attr]


def is_known(word: str | Word) -> bool:
    return type(word) is str or not word.unknown  # type: ignore[union-attr]


def literal(word: str | Word) -> str | None:
    """The word's exact text, when it is known and does not glob."""
    return word if type(word) is str else None  # type: ignore[return-value]


def may_be_option(word: str | Word) -> bool:
    """Whether the word could start with `-` once its unknown parts are filled in."""
    if type(word) is str:
        return word.startswith("-")
    assert isinstance(word, Word)
    if word.text.startswith("-"):
        return True
    return word.text.startswith(UNKNOWN) and word.unknown == ANY


def path_form(word: str | Word) -> tuple[str, bool] | None:
    """(path or bash pattern, is_pattern) for a word used as a path; None when it cannot
    be known (an ANY part could hold `/`, `..` or several paths)."""
    if type(word) is str:
        return word, False
    assert isinstance(word, Word)
    if word.unknown == ANY:
        return None
    if word.pattern is None:
        return word.text, False
    return word.pattern, True
