"""Pure pieces: durations, labels, listen addresses, config, migrations, certificate parsing."""

from __future__ import annotations

from pathlib import Path

import asyncssh
import pytest

from bastion.config import load_config, parse_listen
from bastion.durations import parse_duration
from bastion.errors import ConfigError, UsageError
from bastion.identity.authorities import Authorities
from bastion.identity.certinfo import certificate_info, certificate_info_from_blob
from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.targets import normalise_public_key, parse_labels, validate_target_name


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("10m", 600), ("2h", 7200), ("1d", 86400), (" 45s ", 45)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0m", "-5m", "10 minutes", "1y", "m", "45", "10"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


def test_labels() -> None:
    assert parse_labels(["env=prod", "team=db"]) == {"env": "prod", "team": "db"}
    for bad in (["novalue"], ["=x"], ["k=v w"]):
        with pytest.raises(UsageError):
            parse_labels(bad)
    with pytest.raises(UsageError):
        parse_labels([f"k{i}=v" for i in range(40)])


@pytest.mark.parametrize("name", ["web1", "db-2.prod", "a_b"])
def test_good_target_names(name: str) -> None:
    assert validate_target_name(name) == name


@pytest.mark.parametrize("name", ["", "-x", "a b", "a/b", "x" * 64, "web1;rm"])
def test_bad_target_names(name: str) -> None:
    with pytest.raises(UsageError):
        validate_target_name(name)


def test_public_key_normalised_and_garbage_refused() -> None:
    key = asyncssh.generate_private_key("ssh-ed25519", comment="c")
    line = normalise_public_key(key.export_public_key().decode() + "\n", "key")
    assert line.startswith("ssh-ed25519 ")
    with pytest.raises(UsageError):
        normalise_public_key("ssh-ed25519 AAAAnot-base64", "key")


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:2222") == ("127.0.0.1", 2222)
    assert parse_listen("[::1]:22") == ("::1", 22)
    for bad in ("2222", "host:", "host:port", "h:99999"):
        with pytest.raises(ConfigError):
            parse_listen(bad)


def test_config_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bastion.toml"
    path.write_text("[server\nlisten=1")
    with pytest.raises(ConfigError, match="bastion.toml"):
        load_config(path)
    path.write_text('[server]\nlisten = "127.0.0.1:1"\nupstream_timeout = "soon"\n')
    with pytest.raises(ConfigError, match="upstream_timeout"):
        load_config(path)
    path.write_text('[server]\nlisten = "127.0.0.1:1"\ncolour = "blue"\n[extra]\n')
    config = load_config(path)
    assert any("colour" in w for w in config.warnings) and any(
        "extra" in w for w in config.warnings
    )


def test_certificates_parse_and_host_certs_name_the_target(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s")
    initialise(state)
    authorities = Authorities(state.keys)
    agent = asyncssh.generate_private_key("ssh-ed25519")
    cert = authorities.issue_user_certificate(
        agent, identity="ci", principals=["deploy"], ttl=60, serial=42
    )
    info = certificate_info_from_blob(cert.public_data)
    assert (info.key_id, info.serial, info.principals, info.cert_type) == (
        "ci",
        42,
        ("deploy",),
        "user",
    )
    assert info.ca_public_key == authorities.user_ca_key_text
    _, host_cert = authorities.host_certificate("web1")
    host_info = certificate_info(host_cert.export_certificate())
    assert host_info.principals == ("web1",) and host_info.cert_type == "host"
    creds = authorities.session_credentials(login="deploy", identity="ci", session_id="abc")
    session_info = certificate_info(creds.certificate.export_certificate())
    assert session_info.key_id == "bastion:ci:abc" and session_info.principals == ("deploy",)
    assert session_info.valid_before - session_info.valid_after <= 400
    with pytest.raises(ValueError):
        certificate_info_from_blob(agent.public_data)
