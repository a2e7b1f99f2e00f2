"""Hostile tokens are bounded in bytes and counts, and refused with one line.

Signed tokens come from the test issuer over real HTTP on 127.0.0.1; the
unsigned ones are what anybody can send to the bastion's SSH port, read by
the exchange before any signature is checked.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from oidc_issuer import Issuer

from bastion.config import Config, ServerConfig
from bastion.exchange import TokenExchange
from bastion.identity.jwks import JwksCache
from bastion.identity.oidc import IssuerConfig, TokenRejected, TokenVerifier


@pytest.fixture(scope="module")
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    yield server
    server.stop()


def verify(issuer: Issuer, token: str, **config: object):
    settings = IssuerConfig(name="ci", url=issuer.url, audience="bastion", **config)
    return TokenVerifier(settings, JwksCache(issuer.url)).verify(token)


def exchange(issuer: Issuer) -> TokenExchange:
    issuers = (IssuerConfig(name="ci", url=issuer.url, audience="bastion"),)
    return TokenExchange(Config(ServerConfig(), issuers=issuers), None)  # type: ignore[arg-type]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def one_line(exc: pytest.ExceptionInfo[TokenRejected]) -> str:
    message = str(exc.value)
    assert "\n" not in message and len(message) < 300, message
    return message


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"sub": "a" * 300}, "1-256 characters"),
        ({"sub": "\u0430lice@example.com"}, "mixes scripts (Cyrillic, Latin)"),
        ({"sub": "ａｌｉｃｅ@example.com"}, "not in Unicode normal form NFKC"),
        ({"sub": "alice\u200b"}, "unprintable"),
        ({"groups": [f"g{i}" for i in range(300)]}, "at most 256 groups"),
        ({"groups": ["deployers", "d\u0435ployers"]}, "is not a group name"),
        ({"groups": ["x" * 200]}, "is not a group name"),
        ({"groups": [{"nested": 1}]}, "is not a group name"),
        ({f"claim{i}": i for i in range(150)}, "claims (at most 100)"),
        ({"deep": nested(20)}, "nested deeper than 8"),
        ({"wide": [0] * 2500}, "more than 2000 values"),
        ({"jti": ""}, "jti"),
        ({"jti": "two\nlines"}, "jti"),
        ({"jti": "j" * 300}, "jti"),
    ],
)
def test_signed_but_hostile_claims_are_refused(issuer: Issuer, claims: dict, reason: str) -> None:
    token = issuer.token(**claims)
    assert len(token) < 16384  # each is refused for its own reason, not for its size
    with pytest.raises(TokenRejected) as refused:
        verify(issuer, token)
    assert reason in one_line(refused)


def test_thousands_of_groups_are_refused_by_size_before_decoding(issuer: Issuer) -> None:
    token = issuer.token(groups=[f"group-{i}" for i in range(3000)])
    with pytest.raises(TokenRejected) as refused:
        exchange(issuer).verify(token)
    assert "token larger than 16384 bytes" in one_line(refused)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("[" * 6000 + "]" * 6000, "nested too deeply"),  # past Python's recursion limit
        (json.dumps({"iss": "x", "a": nested(50)}), "nested deeper than 8"),
        (json.dumps({f"c{i}": 0 for i in range(500)}), "claims (at most 100)"),
        ('"just a string"', "not a JSON object"),
    ],
)
def test_unsigned_payloads_are_bounded_before_the_issuer_is_chosen(
    issuer: Issuer, payload: str, reason: str
) -> None:
    token = f"{b64(b'{}')}.{b64(payload.encode())}.sig"
    with pytest.raises(TokenRejected) as refused:
        exchange(issuer).verify(token)
    assert reason in one_line(refused)


def test_token_ids_are_kept_with_the_issuer(issuer: Issuer) -> None:
    with_id = verify(issuer, issuer.token(jti="id-1"))
    assert with_id.token_id == "id-1"
    assert with_id.replay_key == f"jti:{issuer.url} id-1"
    assert with_id.replay == "once"
    # Without a jti the token's hash is the key: two different tokens, two keys.
    first = verify(issuer, issuer.token(jti=None, nonce="a"))
    second = verify(issuer, issuer.token(jti=None, nonce="b"), replay="allow")
    assert first.token_id is None and first.replay_key.startswith("sha256:")
    assert first.replay_key != second.replay_key and second.replay == "allow"


def test_replay_mode_is_validated(issuer: Issuer) -> None:
    with pytest.raises(Exception, match='replay must be "once" or "allow"'):
        IssuerConfig(name="ci", url=issuer.url, audience="bastion", replay="twice").validate()
