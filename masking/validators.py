"""Checks that turn a pattern match into a finding.

A regex alone cannot tell a card number from a 16-digit order id, or a
password from `PasswordAuthentication=no`; these functions can, cheaply, on
the few candidates the patterns let through. Each takes the matched bytes
(the part that would be masked) and returns a bool. The detector table names
them in its `validator` field; CHECKS maps those names to the functions.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable

_NOT_DIGITS = bytes(c for c in range(256) if not 0x30 <= c <= 0x39)


def digits(text: bytes) -> bytes:
    """The ASCII digits of `text`, separators dropped."""
    return text.translate(None, _NOT_DIGITS)


def entropy(text: bytes) -> float:
    """Shannon entropy in bits per byte: random tokens score 4-6, words and repeats less."""
    if not text:
        return 0.0
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in Counter(text).values())


def luhn(text: bytes) -> bool:
    """Luhn (mod 10) check over the digits of `text`: payment cards, Canadian SINs."""
    total = 0
    for index, char in enumerate(reversed(digits(text))):
        value = char - 0x30
        if index % 2:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


# Issuer prefixes (IIN ranges) and the lengths each brand issues.
_CARD_BRANDS: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa
    (51, 55, frozenset({16})),  # Mastercard
    (2221, 2720, frozenset({16})),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (300, 305, frozenset({14, 16, 17, 18, 19})),  # Diners Club
    (36, 36, frozenset({14, 15, 16, 17, 18, 19})),
    (38, 39, frozenset({16, 17, 18, 19})),
    (3528, 3589, frozenset({16, 17, 18, 19})),  # JCB
    (6011, 6011, frozenset({16, 17, 18, 19})),  # Discover
    (644, 649, frozenset({16, 17, 18, 19})),
    (65, 65, frozenset({16, 17, 18, 19})),
    (62, 62, frozenset({16, 17, 18, 19})),  # UnionPay
    (5018, 5018, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),  # Maestro
    (5020, 5020, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    (5038, 5038, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    (5893, 5893, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    (6304, 6304, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    (6759, 6763, frozenset({12, 13, 14, 15, 16, 17, 18, 19})),
    (2200, 2204, frozenset({16, 17, 18, 19})),  # Mir
)


def card_brand(number: bytes) -> bool:
    """Digits that start with a brand's issuer prefix and have one of its lengths."""
    for low, high, lengths in _CARD_BRANDS:
        width = len(str(low))
        if len(number) in lengths and low <= int(number[:width] or b"0") <= high:
            return True
    return False


def card_number(text: bytes) -> bool:
    """A plausible payment card: a brand's prefix and length, Luhn-valid, not one repeated digit.

    Grouped numbers must be grouped the way cards are printed (4-4-4-4, 4-6-5,
    4-4-4-4-3 ...): a run of 4-digit groups from a hex dump (`3132 3334 ...`)
    is not a card unless it is exactly one.
    """
    number = digits(text)
    if not (13 <= len(number) <= 19 and len(set(number)) > 1 and luhn(number)):
        return False
    if not card_brand(number):
        return False
    groups = [len(g) for g in re.split(rb"[ .-]", text)]
    return len(groups) == 1 or groups[0] == 4 and all(1 <= g <= 6 for g in groups)


def us_ssn(text: bytes) -> bool:
    """AAA-GG-SSSS with the ranges the SSA never issues left out.

    Area 000, 666 and 900-999, group 00 and serial 0000 are invalid; the
    famous advertising numbers 078-05-1120 and 219-09-9999 are not secrets.
    """
    number = digits(text)
    if len(number) != 9:
        return False
    area, group, serial = number[:3], number[3:5], number[5:]
    if area in (b"000", b"666") or area[:1] == b"9" or group == b"00" or serial == b"0000":
        return False
    return number not in (b"078051120", b"219099999", b"123456789")


# Verhoeff tables (dihedral group D5), for Aadhaar numbers.
_VERHOEFF_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VERHOEFF_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]


def verhoeff(text: bytes) -> bool:
    check = 0
    for index, char in enumerate(reversed(digits(text))):
        check = _VERHOEFF_D[check][_VERHOEFF_P[index % 8][char - 0x30]]
    return check == 0


def aadhaar(text: bytes) -> bool:
    """An Indian Aadhaar number: 12 digits, first not 0 or 1, Verhoeff-valid."""
    number = digits(text)
    return len(number) == 12 and number[:1] not in (b"0", b"1") and verhoeff(number)


# ISO 13616 lengths for the countries that issue IBANs (country code -> length).
IBAN_LENGTHS = {
    b"AD": 24, b"AE": 23, b"AL": 28, b"AT": 20, b"AZ": 28, b"BA": 20, b"BE": 16,
    b"BG": 22, b"BH": 22, b"BR": 29, b"BY": 28, b"CH": 21, b"CR": 22, b"CY": 28,
    b"CZ": 24, b"DE": 22, b"DK": 18, b"DO": 28, b"EE": 20, b"EG": 29, b"ES": 24,
    b"FI": 18, b"FO": 18, b"FR": 27, b"GB": 22, b"GE": 22, b"GI": 23, b"GL": 18,
    b"GR": 27, b"GT": 28, b"HR": 21, b"HU": 28, b"IE": 22, b"IL": 23, b"IQ": 23,
    b"IS": 26, b"IT": 27, b"JO": 30, b"KW": 30, b"KZ": 20, b"LB": 28, b"LC": 32,
    b"LI": 21, b"LT": 20, b"LU": 20, b"LV": 21, b"MC": 27, b"MD": 24, b"ME": 22,
    b"MK": 19, b"MR": 27, b"MT": 31, b"MU": 30, b"NL": 18, b"NO": 15, b"PK": 24,
    b"PL": 28, b"PS": 29, b"PT": 25, b"QA": 29, b"RO": 24, b"RS": 22, b"SA": 24,
    b"SC": 31, b"SE": 24, b"SI": 19, b"SK": 24, b"SM": 27, b"ST": 25, b"SV": 28,
    b"TL": 23, b"TN": 24, b"TR": 26, b"UA": 29, b"VA": 22, b"VG": 24, b"XK": 20,
}  # fmt: skip


def iban(text: bytes) -> bool:
    """An IBAN: the country's length, and the ISO 7064 mod-97 check equal to 1."""
    compact = text.replace(b" ", b"").replace(b"-", b"").upper()
    if IBAN_LENGTHS.get(compact[:2]) != len(compact) or not compact.isalnum():
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(chr(c), 36)) for c in rearranged)
    return int(number) % 97 == 1


def e164_phone(text: bytes) -> bool:
    """`+` and 10-15 digits (the country code included), separators used sparingly.

    Ten digits at least keeps timezone offsets (`+1000 2024`) and short counts
    out, at the price of the few countries with shorter numbers.
    """
    number = digits(text)
    if not 10 <= len(number) <= 15 or len(set(number)) < 3:
        return False
    separators = len(text) - 1 - len(number)  # everything but `+` and digits
    return separators <= 5 and b"  " not in text and text.count(b"(") == text.count(b")")


def nanp_phone(text: bytes) -> bool:
    """A North American number: area code and exchange start with 2-9, not 555-01xx fiction."""
    number = digits(text)
    if len(number) == 11 and number[:1] == b"1":
        number = number[1:]
    if len(number) != 10 or number[0] < 0x32 or number[3] < 0x32:
        return False
    return len(set(number)) >= 3 and number[1:3] != b"11"


def fr_phone(text: bytes) -> bool:
    """A French number: ten digits in five pairs, starting 01-09."""
    number = digits(text)
    return len(number) == 10 and number[:1] == b"0" and number[1:2] != b"0"


_NINO = re.compile(rb"(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]")


def uk_nino(text: bytes) -> bool:
    """A UK National Insurance number: valid prefix letters, six digits, suffix A-D."""
    compact = text.replace(b" ", b"")
    return len(compact) == 9 and _NINO.match(compact) is not None and len(set(compact[2:8])) > 1


def ca_sin(text: bytes) -> bool:
    """A Canadian Social Insurance Number: nine digits, Luhn-valid, not starting 0 or 8."""
    number = digits(text)
    return len(number) == 9 and number[:1] not in (b"0", b"8") and luhn(number)


_DNI_LETTERS = b"TRWAGMYFPDXBNJZSQVHLCKE"


def es_dni(text: bytes) -> bool:
    """A Spanish DNI or NIE: eight digits (NIE: X/Y/Z and seven) and their check letter."""
    compact = text.replace(b"-", b"").upper()
    if compact[:1] in (b"X", b"Y", b"Z"):
        compact = b"%d" % b"XYZ".index(compact[:1]) + compact[1:]
    if len(compact) != 9 or not compact[:8].isdigit():
        return False
    return _DNI_LETTERS[int(compact[:8]) % 23] == compact[8]


def br_cpf(text: bytes) -> bool:
    """A Brazilian CPF: eleven digits and their two mod-11 check digits."""
    number = [c - 0x30 for c in digits(text)]
    if len(number) != 11 or len(set(number)) == 1:
        return False
    for size in (9, 10):
        total = sum(d * (size + 1 - i) for i, d in enumerate(number[:size]))
        if (total * 10 % 11) % 10 != number[size]:
            return False
    return True


_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def cn_resident_id(text: bytes) -> bool:
    """A Chinese resident identity number: region, birth date, ISO 7064 MOD 11-2 check."""
    if len(text) != 18 or not text[:17].isdigit():
        return False
    year, month, day = int(text[6:10]), int(text[10:12]), int(text[12:14])
    if not (1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    total = sum(w * (c - 0x30) for w, c in zip(_CN_WEIGHTS, text[:17], strict=True))
    return b"10X98765432"[total % 11] == text[17:18].upper()[0]


_CF_ODD = [
    1,
    0,
    5,
    7,
    9,
    13,
    15,
    17,
    19,
    21,
    2,
    4,
    18,
    20,
    11,
    3,
    6,
    8,
    12,
    14,
    16,
    10,
    22,
    25,
    24,
    23,
]


def it_fiscal_code(text: bytes) -> bool:
    """An Italian codice fiscale: sixteen characters and the check letter over them."""
    code = text.upper()
    if len(code) != 16:
        return False
    total = 0
    for index, char in enumerate(code[:15]):
        value = char - 0x30 if char <= 0x39 else char - 0x41
        total += _CF_ODD[value] if index % 2 == 0 else value
    return code[15] == 0x41 + total % 26


def fr_nir(text: bytes) -> bool:
    """A French social security number (NIR): thirteen digits and a mod-97 key."""
    compact = text.replace(b" ", b"").upper()
    if len(compact) != 15:
        return False
    body = compact[:13].replace(b"2A", b"19").replace(b"2B", b"18")
    if not body.isdigit() or not compact[13:].isdigit():
        return False
    return 97 - int(body) % 97 == int(compact[13:])


def se_personnummer(text: bytes) -> bool:
    """A Swedish personal identity number: a plausible birth date and a Luhn check."""
    number = digits(text)
    if len(number) == 12:
        number = number[2:]
    if len(number) != 10:
        return False
    month, day = int(number[2:4]), int(number[4:6])
    return 1 <= month <= 12 and 1 <= day <= 91 and luhn(number)


def mixed_token(text: bytes) -> bool:
    """A generated token rather than a word: it holds a digit and a letter."""
    has_digit = digits(text) != b""
    return has_digit and any(0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A for c in text)


# --- values assigned to secret-named keys ----------------------------------------------

_PLACEHOLDER = re.compile(
    rb"(?i)(?:\$\{?[\w.]+\}?|\{\{.*\}\}|<[^>]*>|%\(?\w*\)?s?|\*+|x{3,}|\.{3,}|-+|_+|"
    rb"\[?(?:redacted|masked|hidden|removed|filtered|secret|password|none|null|nil|empty|"
    rb"undefined|true|false|yes|no|on|off|required|optional|changeme|change_me|example|"
    rb"sample|dummy|placeholder|your[\w-]*|my[\w-]*|test|todo|tbd|default|string|str|text|"
    rb"value|env|prompt|stdin|file|files|ask|input|secure|encrypted|disabled|enabled|unset|"
    rb"notset|not_set|n/a|na)\]?|[\w.]+\(.*|(?:os\.)?environ.*|process\.env.*|"
    rb"getenv.*|self\.\w+.*|this\.\w+.*)"
)
_WORDY = re.compile(rb"[a-z]+(?:[-_][a-z]+)*")
_PATH = re.compile(rb"(?:[~.]?/|[A-Za-z]:\\)[\w./\\-]*")
_NUMBERISH = re.compile(rb"[0-9][0-9.,:]*[smhdkKMGB%]?")


def placeholder(value: bytes) -> bool:
    """A value that stands for a secret instead of being one: `${DB_PASS}`, `<token>`, `****`."""
    return _PLACEHOLDER.fullmatch(value) is not None


def password_value(value: bytes) -> bool:
    """A value after a password-named key that is a password, not a setting.

    `PasswordAuthentication no`, `passwd: files systemd`, `password: ${DB}`,
    `--password-stdin` are settings or references; `hunter2`, `S3cr3t!`,
    `correcthorsebatterystaple` are passwords. Short all-lowercase words are
    taken for settings: the price is a dictionary word of 11 letters or fewer
    used as a password, and words joined by hyphens (`backslash-newlines`).
    """
    value = value.strip(b"\"'`")
    if len(value) < 4 or placeholder(value) or _PATH.fullmatch(value):
        return False
    if _WORDY.fullmatch(value) and (len(value) < 12 or b"-" in value or b"_" in value):
        return False  # a word, or words joined by - or _: a setting (read-only, files)
    return not (value.isdigit() and len(value) < 6)


def secret_value(value: bytes) -> bool:
    """A value after a token-, secret- or key-named key that looks generated.

    At least 8 characters, not a placeholder, a path, a plain word or a number
    with a unit, and either varied (entropy 3 bits per character or more) or
    long and mixed (letters and digits).
    """
    value = value.strip(b"\"'`")
    if len(value) < 8 or placeholder(value) or _PATH.fullmatch(value):
        return False
    if _WORDY.fullmatch(value.lower()) or _NUMBERISH.fullmatch(value):
        return False
    if value.count(b".") >= 2 and re.fullmatch(rb"[a-z0-9.-]+", value):  # a host name, a version
        return False
    return entropy(value) >= 3.0 or (len(value) >= 16 and mixed_token(value))


def high_entropy(threshold: float) -> Callable[[bytes], bool]:
    def check(value: bytes) -> bool:
        return entropy(value) >= threshold

    check.__name__ = f"entropy_{threshold:g}"
    return check


CHECKS: dict[str, Callable[[bytes], bool]] = {
    "card": card_number,
    "luhn": luhn,
    "us-ssn": us_ssn,
    "aadhaar": aadhaar,
    "iban": iban,
    "e164-phone": e164_phone,
    "nanp-phone": nanp_phone,
    "fr-phone": fr_phone,
    "uk-nino": uk_nino,
    "ca-sin": ca_sin,
    "es-dni": es_dni,
    "br-cpf": br_cpf,
    "cn-resident-id": cn_resident_id,
    "it-fiscal-code": it_fiscal_code,
    "fr-nir": fr_nir,
    "se-personnummer": se_personnummer,
    "mixed": mixed_token,
    "password": password_value,
    "secret": secret_value,
    "not-placeholder": lambda value: not placeholder(value.strip(b"\"'`")),
}
