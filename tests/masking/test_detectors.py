"""Each detector: what it masks (true positives) and what it leaves alone (near misses)."""

from __future__ import annotations

from pathlib import Path

import pytest

from masking import BUILTIN, Masker, custom_detector, select
from masking.validators import aadhaar, card_number, e164_phone, iban, luhn, us_ssn

EVERYDAY = Path(__file__).parent / "everyday"


def mask(text: bytes, detectors=BUILTIN) -> tuple[bytes, dict[str, int]]:
    masker = Masker(detectors)
    out = masker.feed(text) + masker.flush()
    return out, dict(masker.counts)


def names_of(name: str) -> set[str]:
    """A detector's name, or the names an alias or group stands for."""
    return {d.name for d in select([name])}


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
    (
        "basic-auth-header",
        b"{'authorization': 'Basic dXNlcjpwYXNzd29yZA=='}",
        b"dXNlcjpwYXNzd29yZA==",
    ),
    ("bearer-token-bare", b"using Bearer 9f8e7d6c5b4a39281706f5e4", b"9f8e7d6c5b4a39281706f5e4"),
    ("url-password", b"postgres://app:s3cr3t-pw@db.example.com:5432/app", b"s3cr3t-pw"),
    ("url-password", b"https://user:p@ss@host.example.com/x", b"p@ss"),
    ("phone", b"call +1 415 555 2671 now", b"+1 415 555 2671"),
    ("phone", b"tel:+442071838750", b"+442071838750"),
    ("phone", b"+49 (30) 901820-00", b"+49 (30) 901820-00"),
    # The families the issue found unmasked, in the formats their providers document.
    (
        "azure-ad-client-secret",
        b"AZURE_CLIENT_SECRET=Kx78Q~Zm2.P4vR9_sT6uW1yB3dF5hJ7kL0nQ2sV",
        b"Kx78Q~Zm2.P4vR9_sT6uW1yB3dF5hJ7kL0nQ2sV",
    ),
    (
        "slack-webhook-url",
        b"url: https://hooks.slack.com/services/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",
        b"T0ABCD123/B0ABCD4567/q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds",
    ),
    (
        "slack-app-token",
        b"SLACK_APP_TOKEN=xapp-1-A0ABCDE1234-5512345678901-0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
        b"xapp-1-A0ABCDE1234-5512345678901-0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6",
    ),
    (
        "npm-access-token",
        b"//registry.npmjs.org/:_authToken=npm_q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj0Kl2Mn",
        b"npm_q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj0Kl2Mn",
    ),
    (
        "pypi-upload-token",
        b"password = pypi-AgEIcHlwaS5vcmcCJDk4ZjRjYTNhLTQ0ZGUtNDFhZS1hZDM4LTk3ZDRiMGFhZGY1NAACKlszLCJmMGE",
        b"pypi-AgEIcHlwaS5vcmcCJDk4ZjRjYTNhLTQ0ZGUtNDFhZS1hZDM4LTk3ZDRiMGFhZGY1NAACKlszLCJmMGE",
    ),
    (
        "twilio-api-key",
        b"TWILIO_API_KEY SK0123456789abcdef0123456789abcdef ok",
        b"SK0123456789abcdef0123456789abcdef",
    ),
    (
        "sendgrid-api-token",
        b"SENDGRID=SG.q8Zt2LmVx9Rk4Pw7Yb3Nc6.Ds1Fg5Hj0Kl2MnQ8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj0K",
        b"SG.q8Zt2LmVx9Rk4Pw7Yb3Nc6.Ds1Fg5Hj0Kl2MnQ8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj0K",
    ),
    (
        "curl-auth-user",
        b"curl -u deploy:Xq7-pw2!hb https://ci.example.com/api",
        b"deploy:Xq7-pw2!hb",
    ),
    ("password", b"password=Tr0ub4dor&3", b"Tr0ub4dor&3"),
    ("secret", b'api_key: "a8f5f167f44f4964e6c998dee827110c"', b"a8f5f167f44f4964e6c998dee827110c"),
    (
        "api-key-header",
        b"X-Api-Key: 7d9f3b2a1c8e4f6a9b0d2c4e6f8a1b3c",
        b"7d9f3b2a1c8e4f6a9b0d2c4e6f8a1b3c",
    ),
    ("stripe-key", b"sk_test_51H8q2LmVx9Rk4Pw7Yb3Nc6Ds", b"sk_test_51H8q2LmVx9Rk4Pw7Yb3Nc6Ds"),
    ("stripe-key", b"rk_test_51H8q2LmVx9Rk4Pw7Yb3Nc6Ds", b"rk_test_51H8q2LmVx9Rk4Pw7Yb3Nc6Ds"),
    (
        "stripe-key",
        b"whsec_q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj0K",
        b"whsec_q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj0K",
    ),
    ("gitlab-token", b"glrt-q8Zt2LmVx9Rk4Pw7Yb3N", b"glrt-q8Zt2LmVx9Rk4Pw7Yb3N"),
    (
        "gitlab-token",
        b"glptt-0123456789abcdef0123456789abcdef01234567",
        b"glptt-0123456789abcdef0123456789abcdef01234567",
    ),
    ("gitlab-token", b"gldt-q8Zt2LmVx9Rk4Pw7Yb3N", b"gldt-q8Zt2LmVx9Rk4Pw7Yb3N"),
    ("gitlab-token", b"glft-q8Zt2LmVx9Rk4Pw7Yb3N", b"glft-q8Zt2LmVx9Rk4Pw7Yb3N"),
    ("gitlab-token", b"GR1348941q8Zt2LmVx9Rk4Pw7Yb3N", b"GR1348941q8Zt2LmVx9Rk4Pw7Yb3N"),
    (
        "gitlab-token",
        b"token glpat-q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg.01.0f1e2d3c4 done",
        b"glpat-q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg.01.0f1e2d3c4",
    ),
    (
        "gitlab-token",
        b"token glpat-q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj.01150gy1z done",
        b"glpat-q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg5Hj.01150gy1z",
    ),
    ("card", b"dotted 4111.1111.1111.1111 ok", b"4111.1111.1111.1111"),
    ("iban", b"IBAN DE89-3704-0044-0532-0130-00 ok", b"DE89-3704-0044-0532-0130-00"),
    ("email", b"to ops@xn--bcher-kva.example and", b"ops@xn--bcher-kva.example"),
    ("email", b"to ops@bucher.xn--p1ai and", b"ops@bucher.xn--p1ai"),
    ("uk-nino", b"NI number AB 12 34 56 C", b"AB 12 34 56 C"),
    ("ca-sin", b"SIN 123-456-782", b"123-456-782"),
    ("es-dni", b"DNI 12345678Z", b"12345678Z"),
    ("br-cpf", b"CPF 529.982.247-25", b"529.982.247-25"),
    (
        "password-hash",
        b"root:$6$rounds=5000$saltsalt$Mq1NhmZ5Xb2bC7o1Qd3e0J:19000:0:99999:7:::",
        b"$6$rounds=5000$saltsalt$Mq1NhmZ5Xb2bC7o1Qd3e0J",
    ),
    (
        "jwt",
        b"tok eyJhbGciOiJIUzI1NiJ9\t.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        b"eyJhbGciOiJIUzI1NiJ9\t.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
]


@pytest.mark.parametrize(("name", "text", "secret"), POSITIVES, ids=[p[0] for p in POSITIVES])
def test_detector_masks_true_positive(name: str, text: bytes, secret: bytes) -> None:
    out, counts = mask(text)
    assert secret not in out
    assert any(f"[MASKED:{n}]".encode() in out for n in names_of(name)), out
    assert set(counts) & names_of(name)
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
    # Everyday output the old masker took for secrets.
    b"  getty@tty1.service        loaded active running Getty on tty1",
    b"  user@1000.service         loaded active running User Manager for UID 1000",
    b"  systemd-fsck@dev-disk-by\\x2duuid-1234.service loaded active exited",
    b"20190427014516 2 6 100 2047 2 E00F4F6C9F8A3B1C5D7E9F0A2B4C6D8E1F3A5B7C9D0E2F4A6B8C",
    b"20230316183029 2 6 100 3071 5 D1F3B5A7C9E1F2A4B6C8D0E2F4A6B8C0D2E4F6A8B0C2D4E6F8",
    b"00000000: 3132 3334 3536 3738 3930 3132 3334 3536  1234567890123456",
    b"00000010: 4111 1111 1111 1111 0a0a 0a0a 0a0a 0a0a  A...............",
    b"cards: 16 ok, timestamps 1700000000123 1712345678901",
    b"PasswordAuthentication no",
    b"passwd:         files systemd",
    b"  --password-stdin    Take the password from stdin",
    b"password: ********",
    b'"password": "${DB_PASSWORD}"',
    b"token_type: bearer",
    b'"prompt_tokens": 1234, "max_tokens": 4096',
    b"secretName: my-tls-secret",
    b"key: app.kubernetes.io/name",
    b"sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    b"commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
    b"Linux 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01) x86_64",
    b"inet 192.168.10.24/24 brd 192.168.10.255 scope global eth0",
    b"version 1.22.3-alpine3.19 released 2024-05-01T12:30:45.123456789Z",
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
    assert out == b'{"private_key": "[MASKED:private-key]", "x": 1}\n'
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
    assert {d.name for d in chosen} >= {"email", "us-ssn", "in-aadhaar", "uk-nino"}
    out, counts = mask(b"jane@example.com AKIAIOSFODNN7EXAMPLE 536-22-1234\n", chosen)
    assert out == b"[MASKED:email] AKIAIOSFODNN7EXAMPLE [MASKED:us-ssn]\n"
    with pytest.raises(ValueError, match="unknown detector 'nope'"):
        select(["nope"])


def test_three_cards_on_one_line_are_all_masked() -> None:
    out, counts = mask(b"cards 4111111111111111, 5555 5555 5555 4444 and 3782-822463-10005\n")
    assert out == b"cards [MASKED:card], [MASKED:card] and [MASKED:card]\n"
    assert counts == {"card": 3}


def test_a_routable_gitlab_token_is_masked_whole() -> None:
    token = b"glpat-q8Zt2LmVx9Rk4Pw7Yb3Nc6Ds1Fg.01.0f1e2d3c4"
    out, _ = mask(b"token " + token + b"\n")
    assert out == b"token [MASKED:gitlab-pat-routable]\n"
