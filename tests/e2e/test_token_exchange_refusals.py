"""`bastion login --token-file` refusals: a token used twice, a revoked identity, a look-alike.

Two real HTTP issuers on 127.0.0.1: "ci" with the default `replay = "once"`,
"reusable" with `replay = "allow"`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from harness import (
    BastionProcess,
    audit_rows,
    bastion_cli,
    bastion_with_target,
    token_login,
    wait_until,
)
from oidc_issuer import Issuer

from bastion.identity.certinfo import certificate_info

CONFIG = """
[[issuer]]
name = "ci"
url = "{once_url}"
audience = "bastion"

[[issuer]]
name = "reusable"
url = "{allow_url}"
audience = "bastion"
replay = "allow"

[[role]]
name = "deployers"
match = {{ groups = ["deployers"] }}
targets = ["web1"]
logins = ["{login}"]
cert_ttl = "5m"
"""


@pytest.fixture(scope="module")
def issuers():
    once, allow = Issuer(), Issuer()
    yield once, allow
    once.stop()
    allow.stop()


@pytest.fixture(scope="module")
def token_bastion(
    tmp_path_factory: pytest.TempPathFactory, test_login: str, issuers: tuple[Issuer, Issuer]
):
    once, allow = issuers
    config = CONFIG.format(once_url=once.url, allow_url=allow.url, login=test_login)
    with bastion_with_target(
        tmp_path_factory.mktemp("token-refusals"), test_login, config=config
    ) as bastion:
        yield bastion


def refusals(bastion: BastionProcess, text: str) -> list:
    return [
        r for r in audit_rows(bastion.state) if r.kind == "refused" and text in (r.detail or "")
    ]


def logged_in(result: subprocess.CompletedProcess[str], out: Path) -> bool:
    return result.returncode == 0 and (out / "id_ed25519-cert.pub").exists()


def refused(result: subprocess.CompletedProcess[str], out: Path, reason: str) -> None:
    assert result.returncode != 0, result.stdout
    assert reason in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr  # one line says why
    assert not (out / "id_ed25519-cert.pub").exists()


@pytest.mark.parametrize("jti", ["job-41-attempt-1", None])
def test_the_same_token_exchanged_twice_is_refused_the_second_time(
    token_bastion: BastionProcess,
    issuers: tuple[Issuer, Issuer],
    tmp_path: Path,
    jti: str | None,
) -> None:
    token = issuers[0].token(sub=f"replayed-{jti or 'no-jti'}", jti=jti)
    first = token_login(token_bastion, token, tmp_path / "first")
    assert logged_in(first, tmp_path / "first"), first.stderr
    second = token_login(token_bastion, token, tmp_path / "second")
    refused(second, tmp_path / "second", "was exchanged before")
    if jti is not None:
        assert f"token '{jti}'" in second.stderr
    assert wait_until(lambda: refusals(token_bastion, "was exchanged before"))
    issued = [
        r
        for r in audit_rows(token_bastion.state)
        if r.kind == "certificate" and r.identity == f"replayed-{jti or 'no-jti'}"
    ]
    assert len(issued) == 1  # the token id is in the row of the one certificate it gave
    assert (f"token jti '{jti}'" if jti else "token sha256:") in (issued[0].detail or "")


def test_replay_allow_lets_an_issuers_token_be_exchanged_again(
    token_bastion: BastionProcess, issuers: tuple[Issuer, Issuer], tmp_path: Path
) -> None:
    token = issuers[1].token(sub="reusable-job")
    for attempt in ("one", "two", "three"):
        result = token_login(token_bastion, token, tmp_path / attempt)
        assert logged_in(result, tmp_path / attempt), result.stderr


def test_a_revoked_identity_gets_no_certificate_from_its_unexpired_token(
    token_bastion: BastionProcess, issuers: tuple[Issuer, Issuer], tmp_path: Path
) -> None:
    once, allow = issuers
    before = token_login(token_bastion, once.token(sub="to-revoke"), tmp_path / "before")
    assert logged_in(before, tmp_path / "before"), before.stderr
    kept = once.token(sub="to-revoke")  # unexpired, never used
    reusable = allow.token(sub="to-revoke")
    assert token_login(token_bastion, reusable, tmp_path / "r0").returncode == 0
    revoked = bastion_cli(token_bastion, "cert", "revoke", "--identity", "to-revoke")
    assert revoked.returncode == 0, revoked.stderr
    for token, name in ((kept, "kept"), (reusable, "reusable")):
        result = token_login(token_bastion, token, tmp_path / name)
        refused(result, tmp_path / name, "'to-revoke' is revoked")
        assert "bastion cert unrevoke --identity" in result.stderr
    assert wait_until(
        lambda: [r for r in refusals(token_bastion, "is revoked") if r.identity == "to-revoke"]
    )
    # A refused token was not spent: once the operator lifts the revocation it works.
    assert bastion_cli(token_bastion, "cert", "unrevoke", "--identity", "to-revoke").returncode == 0
    after = token_login(token_bastion, kept, tmp_path / "after")
    assert logged_in(after, tmp_path / "after"), after.stderr
    info = certificate_info((tmp_path / "after" / "id_ed25519-cert.pub").read_bytes())
    assert info.key_id == "to-revoke"


def test_a_look_alike_subject_is_refused_and_audited_escaped(
    token_bastion: BastionProcess, issuers: tuple[Issuer, Issuer], tmp_path: Path
) -> None:
    look_alike = "\u0430lice@example.com"  # a Cyrillic а
    result = token_login(token_bastion, issuers[0].token(sub=look_alike), tmp_path / "a")
    refused(result, tmp_path / "a", "mixes scripts (Cyrillic, Latin)")
    assert "\\u0430lice@example.com" in result.stderr  # shown so the trick is visible
    rows = wait_until(lambda: refusals(token_bastion, "mixes scripts"))
    assert rows and "\\u0430lice@example.com" in rows[-1].detail
    listed = bastion_cli(token_bastion, "cert", "list", "--json").stdout
    assert look_alike not in listed and "\\u0430lice" not in listed
