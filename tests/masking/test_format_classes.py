"""Format classes a red-team pass found the masker missing, each in our own spellings, and
the everyday neighbours each must leave alone: Azure storage keys, Discord and Telegram bot
tokens, phone numbers in international form, US SSNs however separated, lower-case IBANs,
a UTF-16 private key over several lines, the 8-bit CSI inside a secret, card numbers with
mixed separators."""

from __future__ import annotations

import base64

import pytest

from masking import projection
from masking.stream import Masker

_AZURE_KEY = base64.b64encode(bytes(range(31, 95))).decode()  # 64 bytes: 86 chars and ==


def masked(data: bytes) -> bytes:
    masker = Masker()
    return masker.feed(data) + masker.flush()


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # `az storage account keys list` (JSON), and a connection string
        ('  {\n    "keyName": "key2",\n    "permissions": "FULL",\n    "value": "%s"\n  }\n'
         % _AZURE_KEY, _AZURE_KEY[:40]),  # fmt: skip
        (f"AZURE_STORAGE_CONNECTION_STRING='DefaultEndpointsProtocol=https;AccountName=logs7;"
         f"AccountKey={_AZURE_KEY};EndpointSuffix=core.windows.net'\n", _AZURE_KEY[:40]),
        # Discord: a bot token (base64 of the bot's id), a webhook
        ("Authorization: Bot OTg3NjU0MzIxMDk4NzY1NDMy.Yk3pQz.W8eR5tY7uI9oP1aS3dF6gH0jK2lZ4xC\n",
         "OTg3NjU0MzIxMDk4NzY1NDMy.Yk3pQz"),
        ("DISCORD_BOT=OTg3NjU0MzIxMDk4NzY1NDMy.Yk3pQz.W8eR5tY7uI9oP1aS3dF6gH0jK2lZ4xC\n",
         "W8eR5tY7uI9oP1aS3dF6"),
        ("https://discordapp.com/api/webhooks/998877665544332211/"
         "pL0oK9iJ8uH7yG6tF5rD4eS3wA2qZ1xC-vB_nM0lK9jH8gF7dS6aQ5wE4rT3yU2iO1pPmNb\n",
         "pL0oK9iJ8uH7yG6tF5rD4eS3"),
        # Telegram: in the API URL, and bare
        ("GET https://api.telegram.org/bot5987654321:AAGx7Kp2Lm9Qr4St8Uv3Wy6Za1Bc5De0Fg2/sendMessage\n",
         "AAGx7Kp2Lm9Qr4St8Uv3"),
        ("TELEGRAM_TOKEN=5987654321:AAGx7Kp2Lm9Qr4St8Uv3Wy6Za1Bc5De0Fg2\n", "AAGx7Kp2Lm9Qr4St8Uv3"),
        # phone numbers in international form
        ("support: +44 161 496 0321\n", "496 0321"),
        ("whatsapp +34 612 34 56 78\n", "612 34 56 78"),
        ("tel. +49 (0)89 2180 3344\n", "2180 3344"),
        ("+1-646-555-0147 (mobile)\n", "555-0147"),
        # US SSNs, labelled or not, with spaces, dashes or dots
        ("SSN: 387 41 9052\n", "387 41 9052"),
        ("applicant 387-41-9052 approved\n", "387-41-9052"),
        ("soc. sec. no 387.41.9052\n", "387.41.9052"),
        # IBANs in lower case
        ("transfer to fr76 3000 6000 0112 3456 7890 189\n", "3000 6000 0112"),
        ("iban=nl91abna0417164300\n", "abna0417164300"),
        # card numbers with mixed separators
        ("visa 4012 8888-8888.1881\n", "8888-8888"),
        ("mc 5105-1051 0510 5100\n", "1051 0510"),
    ],
)
def test_the_class_is_masked(text: str, secret: str) -> None:
    out = masked(text.encode())
    assert secret.encode() not in out and b"[MASKED:" in out, out


def test_a_utf16_private_key_is_masked_over_all_its_lines() -> None:
    key = (
        "-----BEGIN PRIVATE KEY-----\n"
        "MC4CAQAwBQYDK2VwBCIEIHq7Zx3pL9mW2nR5tY8bV1cX4dF6gH0jK2lQ9sE7uI3o\n"
        "Zq8r2LmvXx9Rk4Pw7Yb3Nc6Ds1Fg5Hj0Kl2MnQw8Er5Ty7Ui9Op1As3Df6Gh0Jk2L\n"
        "-----END PRIVATE KEY-----\n"
        "done\n"
    )
    for encoding in ("utf-16-le", "utf-16-be"):
        out = masked(key.encode(encoding)).replace(b"\0", b"")
        assert b"MC4CAQAw" not in out and b"Zq8r2Lmv" not in out, (encoding, out)
        assert out.endswith(b"done\n")


def test_the_8_bit_csi_inside_a_secret_is_read_as_escape_bracket() -> None:
    out = masked(b"export GH=ghp_Qm7Zr2Lp9Ws4\x9b1mNt8Vb1Yc6Xd3Fg5Hj0Ka2Lz4Mx7\x9b0m\n")
    assert b"ghp_Qm7Zr2" not in out and b"[MASKED:github-pat]" in out
    out = masked(b"id AKIAZ7QX\x9b0m2MB4RT6PLK3W ok\n")
    assert b"MB4RT6" not in out


def test_0x9b_inside_a_utf8_character_is_not_a_csi() -> None:
    # U+011B (e with caron) is C4 9B: the 9B continues the character, it starts no sequence.
    assert projection.ESCAPE.search("m\u011b1msto".encode()) is None
    assert projection.ESCAPE.search(b"a\x9b1mb") is not None
    czech = "Hlavn\u00ed m\u011b5Csto, za\u0159\u00edzen\u00ed \u011b\u0161\u010d\u0159\n".encode()
    assert masked(czech) == czech


@pytest.mark.parametrize(
    "line",
    [
        # Nine digits spaced 3-2-4 are an SSN only after a label: alone they are as often counts.
        b"2024-05-01T10:00:00+00:00 nginx[412]: 412 67 3098 ms\n",
        b"holder 387 41 9052 on the form\n",
        b"  1  0 0 387 41 9052 12 3\n",  # a column of vmstat-like counts
        b"Version: 1.22.4+44 20 7946\n",
        b"de89370400440532013000.log\n",  # lower-case and hex-shaped: a file name, not an IBAN
        b"4012888888881881abc\n",  # glued to letters in a hex-ish id
        b"key1 = value-without-secret\n",
        b"bot_name: 5987654321\n",
    ],
)
def test_everyday_neighbours_stay_as_they_are(line: bytes) -> None:
    assert masked(line) == line
