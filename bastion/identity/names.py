r"""Identity names: one spelling per identity, and no look-alikes.

    >>> canonical_identity("ａｌｉｃｅ@example.com")   # fullwidth letters: NFKC folds them
    'alice@example.com'
    >>> canonical_identity("\u0430lice@example.com")  # a Cyrillic а among Latin letters
    Traceback (most recent call last):
    ...
    bastion.identity.names.IdentityNameRefused: identity '\u0430lice@example.com' mixes scripts (Cyrillic, Latin): look-alike names are refused

An identity is a certificate's key id, what roles match, what revocation
and listings name. Two strings that look the same must not be two
identities, so every identity entering the bastion (a token's identity
claim, `bastion cert issue --identity`) is NFKC-normalised and must pass
the mixed-script test of Unicode TR39 (section 5.2, "Highly Restrictive"):
each character's Script_Extensions (UAX #24; Common and Inherited count
as every script) must share one script with all the others, or the
string must stay within Latin + Han + Hiragana + Katakana, Latin + Han +
Bopomofo or Latin + Han + Hangul. Script data comes from fontTools'
copy of the Unicode Character Database (the stdlib has no Script
property), kept current by its maintainers.

Not covered: whole-script confusables (a name entirely in Cyrillic letters
that happen to look Latin, with no other part): TR39's confusables table
would be needed, and identities come from issuers an operator configured.
"""

from __future__ import annotations

import re
import unicodedata

from fontTools import unicodedata as ucd

from bastion.errors import UsageError

MAX_IDENTITY_CHARS = 256
MAX_GROUP_CHARS = 128
MAX_GROUPS = 256
_GROUP = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_.:/@-]{{0,{MAX_GROUP_CHARS - 1}}}")
GROUP_RULE = f"letters, digits and _.:/@-, at most {MAX_GROUP_CHARS}"
_ANY = frozenset({"Zyyy", "Zinh"})  # Common, Inherited: compatible with every script
# TR39 5.1: a Han character also belongs to the writing systems that use it.
_AUGMENT = {
    "Hani": {"Hanb", "Jpan", "Kore"},
    "Hira": {"Jpan"},
    "Kana": {"Jpan"},
    "Hang": {"Kore"},
    "Bopo": {"Hanb"},
}
# TR39 5.2, Highly Restrictive: the combinations of scripts allowed besides one script.
_COMBINATIONS = (
    frozenset({"Latn", "Hani", "Hira", "Kana", "Hanb", "Jpan", "Kore"}),
    frozenset({"Latn", "Hani", "Bopo", "Hanb", "Jpan", "Kore"}),
    frozenset({"Latn", "Hani", "Hang", "Hanb", "Jpan", "Kore"}),
)


class IdentityNameRefused(UsageError):
    """An identity that is not one printable, single-script name; the message is one line."""


def canonical_identity(name: str) -> str:
    """`name` in NFKC, or IdentityNameRefused with the reason."""
    if not isinstance(name, str):
        raise IdentityNameRefused("identity must be a string")
    normal = unicodedata.normalize("NFKC", name)
    if not normal or len(normal) > MAX_IDENTITY_CHARS:
        raise IdentityNameRefused(f"identity must be 1-{MAX_IDENTITY_CHARS} characters")
    if not normal.isprintable():  # controls, format characters (ZWJ...), other spaces
        raise IdentityNameRefused(f"identity {quoted(normal)} has unprintable characters")
    scripts = mixed_scripts(normal)
    if scripts:
        raise IdentityNameRefused(
            f"identity {quoted(normal)} mixes scripts ({', '.join(scripts)}):"
            " look-alike names are refused"
        )
    return normal


def mixed_scripts(text: str) -> tuple[str, ...]:
    """The names of the scripts `text` mixes, if it is not Highly Restrictive; else ()."""
    sets = [_augmented(ucd.script_extension(ch)) for ch in text]
    sets = [s for s in sets if not s & _ANY]
    if not sets:
        return ()
    if frozenset.intersection(*sets):
        return ()  # single script
    if any(all(s & combo for s in sets) for combo in _COMBINATIONS):
        return ()
    # Name each character's primary script, in the order they first appear.
    seen = dict.fromkeys(
        ucd.script_name(ucd.script(ch)) for ch in text if ucd.script(ch) not in _ANY
    )
    return tuple(sorted(seen))


def nfkc(name: str | None) -> str | None:
    """An identity an operator typed (a filter, a revocation), in the form identities are kept."""
    return None if name is None else unicodedata.normalize("NFKC", name)


def is_group_name(text: object) -> bool:
    """Group names are ASCII: roles match them, certificates records carry them."""
    return isinstance(text, str) and _GROUP.fullmatch(text) is not None


def shown_identity(name: str) -> str:
    """How a stored identity is printed: as is when it is canonical, else escaped.

    Rows written before names were checked may hold a look-alike; a listing
    must not show it as if it were the real one.
    """
    try:
        if canonical_identity(name) == name:
            return name
    except IdentityNameRefused:
        pass
    return quoted(name, limit=MAX_IDENTITY_CHARS)[1:-1]


def _augmented(scripts: set[str]) -> frozenset[str]:
    extra = {more for script in scripts for more in _AUGMENT.get(script, ())}
    return frozenset(scripts | extra)


def quoted(text: str, limit: int = 100) -> str:
    """`text` in quotes, cut at `limit`, everything outside ASCII escaped (\\uXXXX),
    backslashes doubled: what a one-line error or a listing may show of it."""
    cut = text[:limit] + ("..." if len(text) > limit else "")
    escaped = cut.replace("\\", "\\\\").encode("ascii", "backslashreplace").decode("ascii")
    return f"'{escaped}'"
