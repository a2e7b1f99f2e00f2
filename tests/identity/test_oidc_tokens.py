"""OIDC token verification against a real HTTP discovery and JWKS server on 127.0.0.1."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st
from oidc_issuer import Issuer

from bastion.errors import BastionError
from bastion.identity.jwks import JwksCache
from bastion.identity.oidc import IssuerConfig, TokenRejected, TokenVerifier


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    yield server
    server.stop()


def verifier(issuer: Issuer, clock=time.monotonic, **config: object) -> TokenVerifier:
    settings_ = IssuerConfig(name="ci", url=issuer.url, audience="bastion", **config)
    return TokenVerifier(settings_, JwksCache(issuer.url, clock=clock))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hand_made(header: dict, claims: dict, secret: bytes | None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = (
        b"" if secret is None else hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    )
    return f"{signing_input}.{b64(signature)}"


def test_valid_token(issuer: Issuer) -> None:
    verified = verifier(issuer).verify(issuer.token())
    assert (verified.identity, verified.groups, verified.issuer) == (
        "ci-job-7",
        ("deployers",),
        "ci",
    )


def test_es256_token(issuer: Issuer) -> None:
    issuer.add_key("e1", curve=True)
    assert verifier(issuer).verify(issuer.token(kid="e1")).identity == "ci-job-7"


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3900}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not"),
        ({"iat": int(time.time()) + 3600, "exp": int(time.time()) + 3900}, "future"),
        ({"iss": "https://evil.example"}, "claims rejected"),
        ({"aud": "someone-else"}, "claims rejected"),
        ({"exp": int(time.time()) + 10 * 86400}, "24h"),
        ({"sub": None}, "identity"),
        ({"aud": None}, "audience"),
        ({"groups": "x" * 300}, "group"),
    ],
)
def test_claims_are_checked(issuer: Issuer, overrides: dict, reason: str) -> None:
    with pytest.raises(TokenRejected, match=reason):
        verifier(issuer).verify(issuer.token(**overrides))


def test_unknown_kid_and_tampered_signature(issuer: Issuer) -> None:
    issuer.add_key("k9")
    token = issuer.token(kid="k9")
    del issuer.keys["k9"]
    with pytest.raises(TokenRejected, match="unknown signing key"):
        verifier(issuer).verify(token)
    good = issuer.token()
    head, body, sig = good.split(".")
    tampered_body = b64(
        json.dumps(
            {
                "iss": issuer.url,
                "aud": "bastion",
                "sub": "root",
                "iat": int(time.time()),
                "exp": int(time.time()) + 60,
            }
        ).encode()
    )
    with pytest.raises(TokenRejected, match="signature"):
        verifier(issuer).verify(f"{head}.{tampered_body}.{sig}")


def test_alg_none_is_refused(issuer: Issuer) -> None:
    claims = {
        "iss": issuer.url,
        "aud": "bastion",
        "sub": "x",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    with pytest.raises(TokenRejected, match="not allowed"):
        verifier(issuer).verify(hand_made({"alg": "none", "kid": "k1"}, claims, None))


@pytest.mark.parametrize("form", ["pem", "openssh", "der"])
def test_hs256_signed_with_the_public_key_is_refused(issuer: Issuer, form: str) -> None:
    public = issuer.keys["k1"].public_key()
    secret = {
        "pem": issuer.public_pem("k1"),
        "openssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }[form]
    claims = {
        "iss": issuer.url,
        "aud": "bastion",
        "sub": "x",
        "iat": int(time.time()),
        "exp": int(time.time()) + 60,
    }
    token = hand_made({"alg": "HS256", "kid": "k1", "typ": "JWT"}, claims, secret)
    with pytest.raises(TokenRejected, match="not allowed"):
        verifier(issuer).verify(token)
    # Even an issuer configured (wrongly) to accept HS256 cannot be built.
    with pytest.raises(BastionError, match="asymmetric"):
        verifier(issuer, algorithms=("HS256",))


def test_rotation_is_picked_up_and_removed_keys_stop_working(issuer: Issuer) -> None:
    now = [1000.0]
    check = verifier(issuer, clock=lambda: now[0])
    old = issuer.token()
    assert check.verify(old).identity == "ci-job-7"
    issuer.add_key("k2")
    del issuer.keys["k1"]
    now[0] += 61  # an unknown kid refetches at most once a minute
    assert check.verify(issuer.token(kid="k2")).identity == "ci-job-7"
    with pytest.raises(TokenRejected, match="unknown signing key"):
        check.verify(old)


def test_unknown_kids_refetch_at_most_once_a_minute(issuer: Issuer) -> None:
    now = [1000.0]
    check = verifier(issuer, clock=lambda: now[0])
    check.verify(issuer.token())
    fetched = issuer.fetches
    for i in range(20):
        token = hand_made({"alg": "RS256", "kid": f"nope{i}"}, {"sub": "x"}, b"k")
        with pytest.raises(TokenRejected):
            check.verify(token)
    assert issuer.fetches == fetched  # within the same minute: no refetch storm
    now[0] += 61
    with pytest.raises(TokenRejected):
        check.verify(hand_made({"alg": "RS256", "kid": "other"}, {"sub": "x"}, b"k"))
    assert issuer.fetches == fetched + 1


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "a.b", "a.b.c.d", "!!!.???.###", "x" * 20000, b64(b"[1]") + ".e30.x"],
)
def test_garbage_and_oversized_tokens(issuer: Issuer, token: str) -> None:
    with pytest.raises(TokenRejected):
        verifier(issuer).verify(token)


def test_issuer_urls_must_be_https_unless_loopback() -> None:
    with pytest.raises(BastionError, match="https"):
        IssuerConfig(name="x", url="http://issuer.example.com", audience="a").validate()
    IssuerConfig(name="x", url="http://127.0.0.1:9", audience="a").validate()
    IssuerConfig(name="x", url="https://issuer.example.com", audience="a").validate()


def test_discovery_issuer_mismatch_is_refused(issuer: Issuer) -> None:
    check = TokenVerifier(
        IssuerConfig(
            name="ci", url=issuer.url.replace("127.0.0.1", "localhost"), audience="bastion"
        ),
        JwksCache(issuer.url.replace("127.0.0.1", "localhost")),
    )
    with pytest.raises(TokenRejected, match="cannot check the token"):
        check.verify(issuer.token())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_verify_only_ever_raises_token_rejected(token: str) -> None:
    check = TokenVerifier(
        IssuerConfig(name="x", url="http://127.0.0.1:9", audience="a"),
        JwksCache("http://127.0.0.1:9"),
    )
    with pytest.raises(TokenRejected):
        check.verify(token)


def test_the_exchange_refuses_an_oversized_token_before_decoding_it(issuer: Issuer) -> None:
    from bastion.config import Config, ServerConfig
    from bastion.exchange import TokenExchange

    exchange = TokenExchange(
        Config(
            ServerConfig(), issuers=(IssuerConfig(name="t", url=issuer.url, audience="bastion"),)
        ),
        None,  # type: ignore[arg-type]  # verify() never signs anything
    )
    # An issuer it does not know: without the early check the error would name the issuer.
    payload = b64(json.dumps({"iss": "https://unknown.example", "pad": "x" * 30000}).encode())
    with pytest.raises(TokenRejected, match="token larger than 16384 bytes"):
        exchange.verify(f"{b64(b'{}')}.{payload}.sig")
