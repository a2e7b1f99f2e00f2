"""Identity names: NFKC, and TR39's mixed-script test against look-alikes."""

from __future__ import annotations

import doctest

import pytest

import bastion.identity.names as names
from bastion.identity.names import (
    IdentityNameRefused,
    canonical_identity,
    is_group_name,
    mixed_scripts,
    nfkc,
    shown_identity,
)

CYRILLIC_A = "\u0430"  # а, looks like Latin a


def test_the_module_examples_hold() -> None:
    assert doctest.testmod(names).failed == 0


@pytest.mark.parametrize(
    "name",
    [
        "alice@example.com",
        "ci-job-7",
        "repo:org/app:ref:refs/heads/main",
        "system:serviceaccount:ci:deployer",
        "иван",  # one script: Cyrillic alone is a name, not a look-alike
        "Ελένη",
        "山田たろう",  # Han + Hiragana: Japanese
        "김철수 kim",  # Hangul + Latin: allowed by Highly Restrictive
        "café",
        "ʻokina",  # a Common modifier letter with Latin
    ],
)
def test_single_script_names_pass_unchanged(name: str) -> None:
    assert canonical_identity(name) == name
    assert mixed_scripts(name) == ()


@pytest.mark.parametrize(
    ("name", "scripts"),
    [
        (f"{CYRILLIC_A}lice@example.com", ("Cyrillic", "Latin")),
        (f"alice@ex{CYRILLIC_A}mple.com", ("Cyrillic", "Latin")),
        ("иван@example.com", ("Cyrillic", "Latin")),  # the whole string is one identity
        ("p\u0430ypal", ("Cyrillic", "Latin")),
        ("\u0391lice", ("Greek", "Latin")),  # Greek capital alpha
        ("田中иван", ("Cyrillic", "Han")),
    ],
)
def test_mixed_script_look_alikes_are_refused(name: str, scripts: tuple[str, ...]) -> None:
    with pytest.raises(IdentityNameRefused, match="mixes scripts") as refused:
        canonical_identity(name)
    message = str(refused.value)
    assert f"({', '.join(scripts)})" in message
    assert "\n" not in message and message.isascii()  # one line, and it shows the trick


def test_compatibility_forms_fold_to_one_spelling() -> None:
    assert canonical_identity("ａｌｉｃｅ@example.com") == "alice@example.com"  # fullwidth
    assert canonical_identity("\U0001d41alice") == "alice"  # mathematical bold a
    assert canonical_identity("e\u0301") == "é"  # composed
    assert nfkc("ａｌｉｃｅ") == "alice" and nfkc(None) is None


@pytest.mark.parametrize(
    "name", ["", "a\u200db", "a\u202eb", "line\nbreak", "tab\there", "x" * 257]
)
def test_empty_unprintable_and_long_names_are_refused(name: str) -> None:
    with pytest.raises(IdentityNameRefused):
        canonical_identity(name)


def test_listings_escape_names_that_are_not_canonical() -> None:
    assert shown_identity("alice@example.com") == "alice@example.com"
    assert shown_identity("иван") == "иван"
    assert shown_identity(f"{CYRILLIC_A}lice") == "\\u0430lice"
    assert shown_identity("ａｌｉｃｅ") == "\\uff41\\uff4c\\uff49\\uff43\\uff45"
    assert shown_identity("back\\slash\u200b") == "back\\\\slash\\u200b"


@pytest.mark.parametrize(
    ("group", "ok"),
    [
        ("deployers", True),
        ("org/team:admins@x", True),
        ("deployers\n", False),  # `$` would have let the newline through
        ("d\u0435ployers", False),
        ("", False),
        ("x" * 129, False),
        (7, False),
    ],
)
def test_group_names(group: object, ok: bool) -> None:
    assert is_group_name(group) is ok
