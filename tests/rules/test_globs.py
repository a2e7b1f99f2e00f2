"""rules/globs.py: a bash glob in a command against a name a rule spells out."""

from __future__ import annotations

import fnmatch
import random

import pytest

from rules.globs import overlaps


@pytest.mark.parametrize(
    ("word", "pattern", "expected"),
    [
        ("/et?", "/etc", True),
        ("/e*c", "/etc", True),
        ("/etc/sha*", "/etc/shadow", True),
        ("/etc/s[h]adow", "/etc/shadow", True),
        ("/etc/s[!h]adow", "/etc/shadow", False),
        ("~/.ssh/*.pub", "~/.ssh/id_rsa", False),
        ("~/.ssh/id_*", "*/.ssh/id_rsa", True),  # the rule's * takes the ~
        ("*", ".env", False),  # a glob never matches a leading dot
        ("*", "*/.env", False),  # nor a slash
        (".e*", ".env", True),
        ("*/.env", "*/.env", True),
        ("r?", "rm", True),
        ("/bin/r?", "rm", False),
        ("./build/*", "/*", False),
        ("/*", "/etc", True),
        ("[", "[", True),  # an unclosed bracket is a literal
    ],
)
def test_overlaps(word: str, pattern: str, expected: bool) -> None:
    assert overlaps(word, pattern) is expected


def test_overlap_agrees_with_matching_a_literal_name() -> None:
    """Against a name with no wildcards, overlap is bash-style matching: check it against
    fnmatch on random words, where the two agree (no `/` or leading `.` under a wildcard)."""
    rng = random.Random(7)
    for _ in range(2000):
        name = "".join(rng.choice("ab") for _ in range(rng.randint(1, 6)))
        word = "".join(
            rng.choice(["a", "b", "?", "*", "[ab]", "[!a]"]) for _ in range(rng.randint(1, 5))
        )
        assert overlaps(word, name) == fnmatch.fnmatchcase(name, word), (word, name)
