"""`bastion login` with a token from a real OpenID provider: panva's oidc-provider (npm).

tests/support/oidc_provider/server.mjs runs it on 127.0.0.1 with the client_credentials
grant and RS256 JWT access tokens (`sub` = client id, `groups`, `aud` per resource).
Its dependencies come from `npm ci --prefix tests/support/oidc_provider`.
"""

from __future__ import annotations

import base64
import json
import selectors
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from harness import TEST_LOGIN, BastionProcess, bastion_with_target, token_login
from jose import jwt

from bastion.identity.certinfo import certificate_info

PROVIDER_DIR = Path(__file__).resolve().parents[1] / "support" / "oidc_provider"
CLIENT_ID = "ci-job-7"  # as in server.mjs
CLIENT_SECRET = "test-only-secret-not-for-production"
START_TIMEOUT = 20.0

CONFIG = """
[[issuer]]
name = "oidc-provider"
url = "{url}"
audience = "bastion"

[[role]]
name = "deployers"
issuer = "oidc-provider"
match = {{ groups = ["deployers"] }}
targets = ["web1"]
logins = ["{login}"]
cert_ttl = "5m"
"""


class OidcProvider:
    def __init__(self, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.process, self.url, self.log = process, url, log

    def token(self, resource: str) -> str:
        """An access token from the provider's token endpoint (client_credentials grant)."""
        with urllib.request.urlopen(  # noqa: S310 (loopback http)
            self.url + "/.well-known/openid-configuration", timeout=10
        ) as response:
            token_endpoint = json.load(response)["token_endpoint"]
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        request = urllib.request.Request(
            token_endpoint,
            data=urllib.parse.urlencode(
                {"grant_type": "client_credentials", "resource": resource}
            ).encode(),
            headers={"Authorization": f"Basic {basic}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return json.load(response)["access_token"]


@pytest.fixture(scope="module")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("node") is None:
        pytest.fail("node is not installed: this test runs the npm package oidc-provider")
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        pytest.fail(
            "oidc-provider is not installed: run `npm ci --prefix tests/support/oidc_provider`"
        )
    log = tmp_path_factory.mktemp("oidc-provider") / "server.log"
    with log.open("wb") as stderr:
        process = subprocess.Popen(
            ["node", "server.mjs", "0"],
            cwd=PROVIDER_DIR,
            stdin=subprocess.PIPE,  # the server exits when this closes
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    try:
        port = _first_line(process, START_TIMEOUT)
        if not port.isdigit():
            raise RuntimeError(
                f"oidc-provider did not print its port (got {port!r}):\n"
                + log.read_text(errors="replace")
            )
        yield OidcProvider(process, f"http://127.0.0.1:{port}", log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        for pipe in (process.stdin, process.stdout):
            if pipe:
                pipe.close()


def _first_line(process: subprocess.Popen[bytes], timeout: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or not selector.select(left):
                raise RuntimeError(f"oidc-provider printed no port within {timeout:.0f}s")
            chunk = process.stdout.read1(64)  # type: ignore[attr-defined]
            if not chunk:
                break  # exited
            line += chunk
    return line.decode(errors="replace").strip()


@pytest.fixture(scope="module")
def provider_bastion(
    tmp_path_factory: pytest.TempPathFactory, test_login: str, oidc_provider: OidcProvider
):
    config = CONFIG.format(url=oidc_provider.url, login=test_login)
    with bastion_with_target(
        tmp_path_factory.mktemp("provider"), test_login, config=config
    ) as bastion:
        yield bastion


def test_provider_token_to_certificate_to_ssh_jump(
    provider_bastion: BastionProcess, oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    token = oidc_provider.token("urn:bastion")
    claims = jwt.get_unverified_claims(token)
    assert claims["iss"] == oidc_provider.url and claims["aud"] == "bastion"
    assert jwt.get_unverified_header(token)["alg"] == "RS256"

    out = tmp_path / "agent"
    result = token_login(provider_bastion, token, out)
    assert result.returncode == 0, result.stderr
    info = certificate_info((out / "id_ed25519-cert.pub").read_bytes())
    assert info.key_id == CLIENT_ID and info.principals == (TEST_LOGIN,)
    assert info.valid_before <= claims["exp"] + 1  # never past the provider's expiry

    ssh = subprocess.run(
        [
            "ssh",
            "-F",
            str(out / "ssh_config"),
            "-o",
            "BatchMode=yes",
            "-J",
            "bastion",  # the bastion's Host entry in the generated ssh_config
            f"{TEST_LOGIN}@web1",
            "echo hello",
        ],
        capture_output=True,
        timeout=60,
    )
    assert ssh.returncode == 0, ssh.stderr
    assert ssh.stdout == b"hello\n"


def test_provider_token_for_another_audience_is_refused(
    provider_bastion: BastionProcess, oidc_provider: OidcProvider, tmp_path: Path
) -> None:
    token = oidc_provider.token("urn:someone-else")
    assert jwt.get_unverified_claims(token)["aud"] == "someone-else"
    result = token_login(provider_bastion, token, tmp_path / "other")
    assert result.returncode != 0
    assert "token claims rejected" in result.stderr, result.stderr
    assert "audience" in result.stderr.lower(), result.stderr  # the reason names it
    assert not (tmp_path / "other" / "id_ed25519-cert.pub").exists()
