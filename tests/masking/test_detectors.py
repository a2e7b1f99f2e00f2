"""Each detector: what it masks (true positives) and what it leaves alone (near misses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rules.masking import BUILTIN, NAMES, Masker, custom_detector, describe, select
from rules.masking.validators import aadhaar, card_number, e164_phone, iban, luhn, us_ssn

EVERYDAY = Path(__file__).parent / "everyday"


def mask(text: bytes, detectors=BUILTIN) -> tuple[bytes, dict[str, int]]:
    masker = Masker(detectors)
    out = masker.feed(text) + masker.flush()
    return out, dict(masker.counts)


POSITIVES = [
    ("email", b"contact jane.doe+ops@mail.example.co.uk today", b"jane.doe+ops@mail.example.co.uk"),
    ("email", b"<bob@example.com>", b"bob@example.com"),
    ("email", b"mailto:ops@example.org", b"ops@example.org"),
    ("card", b"visa 4111111111111111 ok", b"4111111111111111"),
    ("card", b"mc 5555-5555-5555-4444 ok", b"5555-5555-5555-4444"),
    ("card", b"amex 3782 822463 10005.", b"3782 822463 10005"),
    ("card", b"visa 4111 1111 1111 1111", b"4111 1111 1111 1111"),
    ("us-ssn", b"ssn: 536-22-1234\n", b"536-22-1234"),
    ("in-aadhaar", b"aadhaar 2345 6789 0124", b"2345 6789 0124"),
    ("iban", b"IBAN DE89 3704 0044 0532 0130 00.", b"DE89 3704 0044 0532 0130 00"),
    ("iban", b"GB29NWBK60161331926819", b"GB29NWBK60161331926819"),
    ("aws-access-key", b"id=AKIAIOSFODNN7EXAMPLE", b"AKIAIOSFODNN7EXAMPLE"),
    ("aws-access-key", b"ASIAY34FZKBOKMUTVV7A,", b"ASIAY34FZKBOKMUTVV7A"),
    (
        "aws-secret-key",
        b"aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "aws-secret-key",
        b'"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",',
        b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "aws-secret-key",
        b"export AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    ),
    (
        "aws-session-token",
        b'"SessionToken": "' + b"IQoJb3JpZ2luX2Vj" * 10 + b'"',
        b"IQoJb3JpZ2luX2Vj" * 10,
    ),
    (
        "github-token",
        b"token ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
        b"ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8",
    ),
    ("github-token", b"ghs_" + b"Z9" * 18, b"ghs_" + b"Z9" * 18),
    ("github-token", b"github_pat_11ABCDEFG0" + b"x1" * 35, b"github_pat_11ABCDEFG0" + b"x1" * 35),
    ("gitlab-token", b"glpat-x1Y2z3A4b5C6d7E8f9G0", b"glpat-x1Y2z3A4b5C6d7E8f9G0"),
    (
        "slack-token",
        b"xoxb-123456789012-1234567890123-AbCdEfGh",
        b"xoxb-123456789012-1234567890123-AbCdEfGh",
    ),
    ("stripe-key", b"key=sk_live_4eC39HqLyjWDarjtT1zdp7dc", b"sk_live_4eC39HqLyjWDarjtT1zdp7dc"),
    ("stripe-key", b"rk_live_4eC39HqLyjWDarjtT1zdp7dcXX", b"rk_live_4eC39HqLyjWDarjtT1zdp7dcXX"),
    (
        "google-api-key",
        b"AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
        b"AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q",
    ),
    (
        "llm-api-key",
        b"OPENAI_API_KEY=sk-proj-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8",
        b"sk-proj-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8",
    ),
    (
        "llm-api-key",
        b"sk-ant-api03-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9",
        b"sk-ant-api03-Ab1Cd2Ef3Gh4Ij5Kl6Mn7Op8Qr9",
    ),
    (
        "jwt",
        b"token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U&x=1",
        b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    ("bearer-token", b"> Authorization: Bearer abc.def-123_xyz", b"abc.def-123_xyz"),
    ("bearer-token", b"{'authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", b"dXNlcjpwYXNzd29yZA=="),
    ("bearer-token", b"using Bearer 9f8e7d6c5b4a39281706f5e4", b"9f8e7d6c5b4a39281706f5e4"),
    ("url-password", b"postgres://app:s3cr3t-pw@db.example.com:5432/app", b"s3cr3t-pw"),
    ("url-password", b"https://user:p@ss@host.example.com/x", b"p@ss"),
    ("phone", b"call +1 415 555 2671 now", b"+1 415 555 2671"),
    ("phone", b"tel:+442071838750", b"+442071838750"),
    ("phone", b"+49 (30) 901820-00", b"+49 (30) 901820-00"),
]


@pytest.mark.parametrize(("name", "text", "secret"), POSITIVES, ids=[p[0] for p in POSITIVES])
def test_detector_masks_true_positive(name: str, text: bytes, secret: bytes) -> None:
    out, counts = mask(text)
    assert secret not in out
    assert f"[MASKED:{name}]".encode() in out
    assert counts.get(name, 0) >= 1
    # Only the secret goes: what surrounded it is still there.
    before, _, after = text.partition(secret)
    assert out.startswith(before) and out.endswith(after)


NEAR_MISSES = [
    b"4111111111111112",  # Luhn fails
    b"1700000000000",  # epoch milliseconds
    b"0000 0000 0000 0000",
    b"12.3456789012345678",  # a float
    b"order 1234-5678-9012-3456-7890",  # too long a dashed id
    b"000-12-3456 666-12-3456 912-12-3456 123-00-4567 123-45-0000 078-05-1120",
    b"2026-11-24 10:15:36",
    b"2345 6789 0123",  # Verhoeff fails
    b"DE89 3704 0044 0532 0130 01",  # mod 97 fails
    b"XX89370400440532013000",
    b"AKIAIOSFODNN7EXAMPL",  # too short
    b"XAKIAIOSFODNN7EXAMPLE",  # part of a longer word
    b"ghp_short",
    b"sk-learn and task-manager-for-everyone-in-the-team",
    b"the bearer of bad news; Bearer authentication",
    b"https://example.com:8443/path?q=1",
    b"https://user@example.com/",  # user, no password
    b"git@github.com:org/repo.git",
    b"icon@2x.png",
    b"lodash@4.17.21 @types/node@20.11.5",
    b"root@web1:~#",
    b"+0000 +0530 +1000 2026",
    b"+12345",
    b"3.14159265358979323846",
    b"uuid 123e4567-e89b-12d3-a456-426614174000",
    b"-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQ\n-----END CERTIFICATE-----\n",
    b"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZI\n-----END PUBLIC KEY-----\n",
    b"secret_access_key is set",
]


@pytest.mark.parametrize("text", NEAR_MISSES)
def test_near_miss_passes_unchanged(text: bytes) -> None:
    out, counts = mask(text + b"\n")
    assert out == text + b"\n", counts
    assert counts == {}


@pytest.mark.parametrize("path", sorted(EVERYDAY.glob("*.txt")), ids=lambda p: p.name)
def test_everyday_output_is_unchanged(path: Path) -> None:
    data = path.read_bytes()
    out, counts = mask(data)
    assert counts == {}, counts
    assert out == data


def test_everyday_corpus_is_large_enough() -> None:
    files = list(EVERYDAY.glob("*.txt"))
    assert len(files) >= 25
    assert sum(p.stat().st_size for p in files) > 100_000


def test_git_log_with_author_addresses_masks_only_the_addresses() -> None:
    log = b"commit 1f2e3d4c\nAuthor: Jane Doe <jane@example.com>\nDate:   Mon Nov 24 10:15:38 2026 +1100\n"
    out, counts = mask(log)
    assert out == log.replace(b"jane@example.com", b"[MASKED:email]")
    assert counts == {"email": 1}


def test_private_key_block_is_masked_whole() -> None:
    key = (
        b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
        b"b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
        b"QyNTUxOQAAACDHSGAtcLrJmtK3oJ8wsGBpYqf5n2xXzO7x6C0yXz3xGgAAAJgu7zYBLu82\n"
        b"-----END OPENSSH PRIVATE KEY-----\n"
    )
    out, counts = mask(b"before\n" + key + b"after\n")
    assert out == b"before\n[MASKED:private-key]\nafter\n"
    assert counts == {"private-key": 1}


def test_encrypted_pem_headers_are_part_of_the_block() -> None:
    key = (
        b"-----BEGIN RSA PRIVATE KEY-----\r\nProc-Type: 4,ENCRYPTED\r\n"
        b"DEK-Info: AES-128-CBC,3F17F5316E2BAC89\r\n\r\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo\r\n"
        b"-----END RSA PRIVATE KEY-----\r\n$ "
    )
    out, _ = mask(key)
    assert out == b"[MASKED:private-key]\r\n$ "


def test_one_line_key_in_json_is_masked() -> None:
    line = b'{"private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBg\\nkqhkiG9w0B\\n-----END PRIVATE KEY-----\\n", "x": 1}\n'
    out, counts = mask(line)
    assert out == b'{"private_key": "[MASKED:private-key]\\n", "x": 1}\n'
    assert counts == {"private-key": 1}


def test_truncated_key_does_not_swallow_what_follows() -> None:
    text = b"-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5\nuser@host:~$ ls\nfile\n"
    out, _ = mask(text)
    assert out == b"[MASKED:private-key]\nuser@host:~$ ls\nfile\n"


def test_validators() -> None:
    assert luhn(b"79927398713") and not luhn(b"79927398710")
    assert card_number(b"4012 8888 8888 1881") and not card_number(b"1111111111111")
    assert us_ssn(b"536-22-1234") and not us_ssn(b"666-22-1234")
    assert aadhaar(b"2345 6789 0124") and not aadhaar(b"1234 5678 9012")
    assert iban(b"NL91ABNA0417164300") and not iban(b"NL91ABNA0417164301")
    assert e164_phone(b"+14155552671") and not e164_phone(b"+1000 2024")


def test_custom_pattern_masks_its_secret_group() -> None:
    custom = custom_detector(r"ticket=(?P<secret>T-[0-9]{6})")
    out, counts = mask(b"see ticket=T-123456 now\n", BUILTIN + (custom,))
    assert out == b"see ticket=[MASKED:custom] now\n"
    assert counts == {"custom": 1}


@pytest.mark.parametrize(
    ("pattern", "error"),
    [("", "empty"), ("(", "does not compile"), ("a*", "empty string"), ("x" * 600, "longer than")],
)
def test_custom_pattern_errors_are_one_line(pattern: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        custom_detector(pattern)


def test_select_by_name_and_group() -> None:
    chosen = select(["email", "national-id"])
    assert {d.name for d in chosen} == {"email", "us-ssn", "in-aadhaar"}
    out, counts = mask(b"jane@example.com AKIAIOSFODNN7EXAMPLE 536-22-1234\n", chosen)
    assert out == b"[MASKED:email] AKIAIOSFODNN7EXAMPLE [MASKED:us-ssn]\n"
    with pytest.raises(ValueError, match="unknown detector 'nope'"):
        select(["nope"])


def test_every_detector_is_described_with_an_example_it_masks() -> None:
    described = describe()
    assert [name for name, _, _ in described] == list(NAMES)
    for name, description, example in described:
        assert description
        out, counts = mask(b"x " + example + b" y\n")
        assert counts == {name: 1}, (name, out)
