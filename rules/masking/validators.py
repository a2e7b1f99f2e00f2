"""Checksums and range rules that turn a pattern match into a finding.

A regex alone cannot tell a card number from a 16-digit order id; these
functions can, cheaply, on the few candidates the regexes let through.
Each takes the matched bytes (separators included) and returns a bool.
"""

from __future__ import annotations

_NOT_DIGITS = bytes(c for c in range(256) if not 0x30 <= c <= 0x39)


def digits(text: bytes) -> bytes:
    """The ASCII digits of `text`, separators dropped."""
    return text.translate(None, _NOT_DIGITS)


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


def card_number(text: bytes) -> bool:
    """A plausible payment card: 13-19 digits, Luhn-valid, not one repeated digit."""
    number = digits(text)
    return 13 <= len(number) <= 19 and len(set(number)) > 1 and luhn(number)


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
    compact = text.replace(b" ", b"").upper()
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


def mixed_token(text: bytes) -> bool:
    """A generated token rather than a word: it holds a digit and a letter."""
    has_digit = digits(text) != b""
    return has_digit and any(0x41 <= c <= 0x5A or 0x61 <= c <= 0x7A for c in text)
