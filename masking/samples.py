"""Fake secrets for tests and benchmarks, generated from the detectors themselves.

    >>> import random
    >>> from masking.table import select
    >>> aws = select(["aws-access-key"])[0]
    >>> text, secret = sample(aws, random.Random(1))
    >>> secret in text and secret[:4] in (b"AKIA", b"ASIA", b"A3T") or len(secret) == 20
    True

`sample(detector, rng)` returns (text, secret): a line the detector must
mask and the bytes that must disappear. Token and assignment rows are
generated from their own regular expression (random choices at every
class and repetition, so values have the entropy real ones have); the
personal-data rows, whose checksums a random string would fail, have
generators that compute valid check digits. Nothing here is a real secret.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable

try:
    from re import _constants as sre_constants  # type: ignore[attr-defined]
    from re import _parser as sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    import sre_constants  # type: ignore[no-redef]
    import sre_parse  # type: ignore[no-redef]

from masking import validators
from masking.table import Detector

_C = sre_constants
_CATEGORIES = {
    _C.CATEGORY_DIGIT: string.digits,
    _C.CATEGORY_WORD: string.ascii_letters + string.digits + "_",
    _C.CATEGORY_SPACE: " ",
    _C.CATEGORY_NOT_SPACE: string.ascii_letters + string.digits,
    _C.CATEGORY_NOT_DIGIT: string.ascii_letters,
    _C.CATEGORY_NOT_WORD: " ",
}
_PRINTABLE = [chr(c) for c in range(0x21, 0x7F)]


def _class(items: list, rng: random.Random) -> str:  # type: ignore[type-arg]
    chars: list[str] = []
    negate = False
    for op, value in items:
        if op is _C.NEGATE:
            negate = True
        elif op is _C.LITERAL:
            chars.append(chr(value))
        elif op is _C.RANGE:
            chars.extend(chr(c) for c in range(value[0], value[1] + 1))
        elif op is _C.CATEGORY:
            chars.extend(_CATEGORIES.get(value, "a"))
    if negate:
        banned = set(chars) | set(" \t\r\n\"'`;,&<>()[]{}|\\")
        choices = [c for c in string.ascii_letters + string.digits if c not in banned]
        return rng.choice(choices or ["x"])
    # Prefer letters and digits when a class offers them: values look like real tokens.
    plain = [c for c in chars if c.isalnum() and c.isascii()]
    pool = plain if plain and rng.random() < 0.92 else chars
    return rng.choice(pool) if pool else "x"


def _generate(tree: list, rng: random.Random, groups: dict[int, str], extra: int) -> str:  # type: ignore[type-arg]
    out: list[str] = []
    for op, value in tree:
        if op is _C.LITERAL:
            out.append(chr(value))
        elif op is _C.NOT_LITERAL:
            out.append(rng.choice([c for c in string.ascii_letters if ord(c) != value]))
        elif op is _C.ANY:
            out.append(rng.choice(string.ascii_letters))
        elif op is _C.IN:
            out.append(_class(value, rng))
        elif op in (_C.MAX_REPEAT, _C.MIN_REPEAT, getattr(_C, "POSSESSIVE_REPEAT", None)):
            low, high, body = value
            high = min(high, low + extra) if high != _C.MAXREPEAT else low + extra
            for _ in range(rng.randint(low, max(low, high))):
                out.append(_generate(body, rng, groups, extra))
        elif op is _C.SUBPATTERN:
            group, _, _, body = value
            text = _generate(body, rng, groups, extra)
            if group is not None:
                groups[group] = text
            out.append(text)
        elif op is _C.BRANCH:
            out.append(_generate(rng.choice(value[1]), rng, groups, extra))
        elif op is _C.GROUPREF:
            out.append(groups.get(value, ""))
        elif op is _C.CATEGORY:
            out.append(rng.choice(_CATEGORIES.get(value, "a")))
        elif op is getattr(_C, "ATOMIC_GROUP", None):
            out.append(_generate(value, rng, groups, extra))
        elif op is _C.GROUPREF_EXISTS:
            out.append(_generate(value[1], rng, groups, extra))
        # AT (anchors) and ASSERT / ASSERT_NOT (lookaround) produce nothing.
    return "".join(out)


def from_regex(pattern: bytes, rng: random.Random, extra: int = 3) -> bytes:
    """A random string the pattern matches (lookarounds aside: callers add context)."""
    tree = sre_parse.parse(pattern.decode("latin-1"))
    return _generate(list(tree), rng, {}, extra).encode("latin-1")


# --- personal data with check digits ----------------------------------------------------


def _luhn_complete(body: str) -> str:
    for digit in "0123456789":
        if validators.luhn((body + digit).encode()):
            return body + digit
    raise AssertionError("unreachable")


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def card(rng: random.Random) -> bytes:
    prefix, length = rng.choice([("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15),
                                 ("37", 15), ("6011", 16), ("65", 16), ("3530", 16), ("4", 19)])  # fmt: skip
    number = _luhn_complete(prefix + _digits(rng, length - len(prefix) - 1))
    style = rng.choice(["plain", " ", "-", "."])
    if style == "plain":
        return number.encode()
    groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    if length == 15:
        groups = [number[:4], number[4:10], number[10:]]
    return style.join(groups).encode()


def iban(rng: random.Random) -> bytes:
    country, length = rng.choice(
        [(b"DE", 22), (b"GB", 22), (b"FR", 27), (b"NL", 18), (b"ES", 24), (b"IT", 27)]
    )
    bban = _digits(rng, length - 4).encode()
    if country in (b"GB", b"NL"):
        bban = bytes(rng.choice(string.ascii_uppercase.encode()) for _ in range(4)) + bban[4:]
    rearranged = bban + country + b"00"
    number = int("".join(str(int(chr(c), 36)) for c in rearranged))
    compact = country + b"%02d" % (98 - number % 97) + bban
    style = rng.choice([b"", b" ", b"-"])
    return style.join(compact[i : i + 4] for i in range(0, len(compact), 4)) if style else compact


def us_ssn(rng: random.Random) -> bytes:
    return b"%03d-%02d-%04d" % (rng.randint(1, 665), rng.randint(1, 99), rng.randint(1, 9999))


def aadhaar(rng: random.Random) -> bytes:
    while True:
        body = str(rng.randint(2, 9)) + _digits(rng, 10)
        for digit in "0123456789":
            if validators.verhoeff((body + digit).encode()):
                number = body + digit
                return " ".join(number[i : i + 4] for i in range(0, 12, 4)).encode()


def phone(rng: random.Random) -> bytes:
    return rng.choice([
        b"+1 %d %03d %04d" % (rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)),
        b"+44 20 %04d %04d" % (rng.randint(1000, 9999), rng.randint(0, 9999)),
        b"+49 30 %08d" % rng.randint(10**7, 10**8 - 1),
    ])  # fmt: skip


def nanp_phone(rng: random.Random) -> bytes:
    return rng.choice([
        b"(%d) %03d-%04d" % (rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)),
        b"%d-%03d-%04d" % (rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)),
        b"%d.%03d.%04d" % (rng.randint(201, 989), rng.randint(200, 999), rng.randint(0, 9999)),
    ])  # fmt: skip


def uk_nino(rng: random.Random) -> bytes:
    first = rng.choice("ABCEGHJKLMNOPRSTWXYZ")
    second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    while first + second in ("BG", "GB", "NK", "KN", "TN", "NT", "ZZ"):
        second = rng.choice("ABCEGHJKLMNPRSTWXYZ")
    digits = _digits(rng, 6)
    return f"{first}{second} {digits[:2]} {digits[2:4]} {digits[4:]} {rng.choice('ABCD')}".encode()


def ca_sin(rng: random.Random) -> bytes:
    number = _luhn_complete(str(rng.choice([1, 2, 3, 4, 5, 6, 7, 9])) + _digits(rng, 7))
    return f"{number[:3]}-{number[3:6]}-{number[6:]}".encode()


def es_dni(rng: random.Random) -> bytes:
    number = rng.randint(10**7, 10**8 - 1)
    return b"%d%c" % (number, b"TRWAGMYFPDXBNJZSQVHLCKE"[number % 23])


def br_cpf(rng: random.Random) -> bytes:
    while True:
        digits = [rng.randint(0, 9) for _ in range(9)]
        for size in (9, 10):
            total = sum(d * (size + 1 - i) for i, d in enumerate(digits))
            digits.append((total * 10 % 11) % 10)
        text = "".join(map(str, digits))
        if len(set(text)) > 1:
            return f"{text[:3]}.{text[3:6]}.{text[6:9]}-{text[9:]}".encode()


def cn_resident_id(rng: random.Random) -> bytes:
    body = b"%06d%04d%02d%02d%03d" % (rng.randint(110000, 659000), rng.randint(1950, 2010),
                                      rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 999))  # fmt: skip
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(w * (c - 0x30) for w, c in zip(weights, body, strict=True))
    return body + b"10X98765432"[total % 11 : total % 11 + 1]


def it_fiscal_code(rng: random.Random) -> bytes:
    letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(6))
    code = f"{letters}{rng.randint(10, 99)}{rng.choice('ABCDEHLMPRST')}{rng.randint(10, 70)}"
    code += f"{rng.choice(string.ascii_uppercase)}{rng.randint(100, 999)}"
    for last in string.ascii_uppercase:
        if validators.it_fiscal_code((code + last).encode()):
            return (code + last).encode()
    raise AssertionError("unreachable")


def fr_nir(rng: random.Random) -> bytes:
    body = b"%d%02d%02d%02d%03d%03d" % (rng.randint(1, 2), rng.randint(40, 99), rng.randint(1, 12),
                                        rng.randint(1, 95), rng.randint(1, 999), rng.randint(1, 999))  # fmt: skip
    key = 97 - int(body) % 97
    return b"%s %s %s %s %s %s %02d" % (
        body[:1],
        body[1:3],
        body[3:5],
        body[5:7],
        body[7:10],
        body[10:13],
        key,
    )


def se_personnummer(rng: random.Random) -> bytes:
    date = b"%02d%02d%02d" % (rng.randint(40, 99), rng.randint(1, 12), rng.randint(1, 28))
    number = _luhn_complete(date.decode() + _digits(rng, 3))
    return f"{number[:6]}-{number[6:]}".encode()


def email(rng: random.Random) -> bytes:
    local = "".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 10)))
    domain = rng.choice(
        ["example.com", "mail.example.org", "example.co.uk", "xn--bcher-kva.example"]
    )
    return f"{local}.{rng.choice(['ops', 'dev', 'x'])}@{domain}".encode()


PERSONAL: dict[str, Callable[[random.Random], bytes]] = {
    "card": card,
    "iban": iban,
    "phone": phone,
    "phone-nanp": nanp_phone,
    "us-ssn": us_ssn,
    "in-aadhaar": aadhaar,
    "uk-nino": uk_nino,
    "ca-sin": ca_sin,
    "es-dni": es_dni,
    "br-cpf": br_cpf,
    "cn-resident-id": cn_resident_id,
    "it-fiscal-code": it_fiscal_code,
    "fr-nir": fr_nir,
    "se-personnummer": se_personnummer,
    "email": email,
    "phone-fr": lambda rng: (
        b"0%d %02d %02d %02d %02d"
        % tuple(rng.randint(1, 99) if i else rng.randint(1, 9) for i in range(5))
    ),
}

_HANDWRITTEN: dict[str, tuple[bytes, bytes]] = {
    "private-key": (
        b"-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEAu1SU1LfVLPH\\n-----END RSA PRIVATE KEY-----",
        b"MIIEowIBAAKCAQEAu1SU1LfVLPH",
    ),
    "private-key-body": (
        b"MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
        b"MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun",
    ),
    "password": (b"DB_PASSWORD=Tr0ub4dor&3x", b"Tr0ub4dor&3x"),
    "pgpass-password": (b"db.example.com:5432:app:appuser:Zq8r2Lmv", b"Zq8r2Lmv"),
    "redis-password": (b"requirepass q8Zt2LmVx9", b"q8Zt2LmVx9"),
    "secret": (b'"client_token": "q8Zt2LmVx9Rk4Pw7Yb3N"', b"q8Zt2LmVx9Rk4Pw7Yb3N"),
}


def sample(detector: Detector, rng: random.Random, tries: int = 50) -> tuple[bytes, bytes]:
    """(text, secret): a line holding a fake secret of this kind, and the part masked."""
    if detector.name in PERSONAL:
        secret = PERSONAL[detector.name](rng)
        return b"value " + secret + b" end", secret
    if detector.name in _HANDWRITTEN:
        return _HANDWRITTEN[detector.name]
    assert detector.regex is not None, detector.name
    for _ in range(tries):
        text = from_regex(detector.regex.pattern, rng)
        match = detector.regex.search(b" " + text + b" ")
        if match is None:
            continue
        start, end = detector.secret_span(match)
        secret = match.string[start:end]
        if detector.accepts(secret):
            return b" " + text + b" ", secret
    raise ValueError(f"no sample of {detector.name} after {tries} tries")
