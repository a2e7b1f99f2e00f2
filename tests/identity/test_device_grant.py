"""The device authorization grant (RFC 8628) against the dev issuer, a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bastion.devissuer import DevIssuer
from bastion.errors import BastionError
from bastion.identity.device import (
    DeviceLoginFailed,
    device_login,
    endpoints,
    poll_for_token,
    post_form,
    request_code,
)
from bastion.identity.jwks import JwksCache
from bastion.identity.oidc import IssuerConfig, TokenVerifier


@pytest.fixture()
def issuer():
    server = DevIssuer.start({"alice": ["reviewers"], "ci": ["agents"]})
    yield server
    server.stop()


def sign_in_when_asked(issuer: DevIssuer, identity: str, deny: bool = False):
    """A `say` that, like a person, opens the printed URL in a 'browser' (a GET)."""
    said: list[str] = []

    def say(text: str) -> None:
        said.append(text)
        if text.startswith("To sign in, open ") and "user_code=" in text:
            url = text.removeprefix("To sign in, open ") + f"&identity={identity}"
            if deny:
                url += "&deny=1"
            threading.Timer(0.3, lambda: urllib.request.urlopen(url, timeout=10).read()).start()

    return say, said


def test_device_login_yields_a_token_the_bastion_verifies(issuer: DevIssuer) -> None:
    say, said = sign_in_when_asked(issuer, "alice")
    token = device_login(issuer.url, "bastion-cli", say=say)
    assert any("enter the code" in line for line in said)
    verifier = TokenVerifier(
        IssuerConfig(name="dev", url=issuer.url, audience="bastion", algorithms=("ES256",)),
        JwksCache(issuer.url),
    )
    verified = verifier.verify(token)
    assert verified.identity == "alice" and verified.groups == ("reviewers",)


def test_declined_sign_in_is_one_line(issuer: DevIssuer) -> None:
    say, _ = sign_in_when_asked(issuer, "alice", deny=True)
    with pytest.raises(DeviceLoginFailed, match="^sign-in was declined$"):
        device_login(issuer.url, "bastion-cli", say=say)


def test_slow_down_adds_five_seconds_to_the_interval(issuer: DevIssuer) -> None:
    device_url, token_url = endpoints(issuer.url)
    code = request_code(device_url, "bastion-cli", "openid")
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:  # no real waiting: the server sees polls too fast
        sleeps.append(seconds)
        if len(sleeps) == 3:
            assert issuer.sign_in(code.user_code, "ci")

    token = poll_for_token(token_url, "bastion-cli", code, sleep=sleep)
    assert token.count(".") == 2
    # poll 1: pending; poll 2 (at once): slow_down, so the interval grows by 5 s.
    assert sleeps == [1, 1, 6]


def test_an_expired_code_ends_the_wait(issuer: DevIssuer) -> None:
    device_url, token_url = endpoints(issuer.url)
    code = request_code(device_url, "bastion-cli", "openid")
    for pending in issuer._codes.values():
        pending.expires = 0  # the issuer's side says expired_token
    with pytest.raises(DeviceLoginFailed, match="expired"):
        poll_for_token(token_url, "bastion-cli", code, sleep=lambda s: None)
    clock = iter([0.0, 10_000.0])  # the client's own deadline
    fresh = request_code(device_url, "bastion-cli", "openid")
    with pytest.raises(DeviceLoginFailed, match="expired"):
        poll_for_token(token_url, "c", fresh, sleep=lambda s: None, clock=lambda: next(clock))


def test_plain_http_issuers_off_loopback_are_refused_before_any_request() -> None:
    with pytest.raises(BastionError, match="must be https"):
        endpoints("http://login.example.com")
    with pytest.raises(BastionError, match="must be https"):
        post_form("http://login.example.com/token", {})


def test_oversized_and_malformed_responses_are_refused() -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = (
                b'{"pad": "' + b"x" * 100_000 + b'"}'
                if self.path == "/big"
                else b'{"device_code": "d"}'
            )
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with pytest.raises(DeviceLoginFailed, match="more than 65536 bytes"):
            post_form(f"{base}/big", {})
        with pytest.raises(DeviceLoginFailed, match="malformed device authorization response"):
            request_code(f"{base}/small", "c", "openid")
    finally:
        server.shutdown()
