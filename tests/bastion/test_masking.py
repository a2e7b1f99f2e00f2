"""[masking] configuration, `bastion mask`, and the relay failing closed when a masker breaks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bastion.config import DEFAULT_CONFIG, load_config
from bastion.errors import ConfigError
from bastion.masking import transfer_protocol


def _config(tmp_path: Path, extra: str):
    path = tmp_path / "bastion.toml"
    path.write_text(DEFAULT_CONFIG.replace("[masking]\n", "[masking]\n" + extra, 1))
    return load_config(path)


def test_default_config_masks_with_every_detector(tmp_path: Path) -> None:
    config = _config(tmp_path, "")
    assert config.masking.enabled and config.masking.binary == "mask"
    assert config.masking.holdback_ms == 40 and config.masking.echo_ms == 5
    assert {d.name for d in config.masking.compiled} >= {"email", "card", "aws-access-key"}
    assert config.warnings == ()


def test_masking_table_choices_and_custom_patterns(tmp_path: Path) -> None:
    path = tmp_path / "bastion.toml"
    path.write_text(
        '[server]\nlisten = "127.0.0.1:2222"\n'
        '[masking]\ndetectors = ["email", "national-id"]\n'
        "patterns = ['ACME-[0-9]{6}']\nbinary = \"close\"\nholdback_ms = 25\nbogus = 1\n"
        '[[role]]\nname = "ops"\nmatch = { groups = ["ops"] }\ntargets = ["*"]\n'
        "logins = [\"deploy\"]\nmask_patterns = ['OPS-[0-9]{4}']\n"
    )
    config = load_config(path)
    masking = config.masking
    names = [d.name for d in masking.compiled]
    assert names[-1] == "custom" and {"email", "us-ssn", "in-aadhaar", "uk-nino"} <= set(names)
    assert "aws-access-key" not in names
    assert masking.binary == "close" and masking.holdback_ms == 25
    assert [d.name for d in masking.detectors_for(["ops"])][-1] == "role:ops"
    assert masking.detectors_for(["other"]) == masking.compiled
    assert any("masking.bogus" in w for w in config.warnings)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('detectors = ["nope"]\n', "unknown detector 'nope'"),
        ("patterns = ['(']\n", "does not compile"),
        ('binary = "maybe"\n', "masking.binary must be one of"),
        ("holdback_ms = 0\n", "holdback_ms"),
        ("echo_ms = -1\n", "echo_ms"),
        ("enabled = 1\n", "masking.enabled"),
    ],
)
def test_masking_config_errors_are_one_line(tmp_path: Path, extra: str, message: str) -> None:
    path = tmp_path / "bastion.toml"
    path.write_text("[masking]\n" + extra)
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_role_mask_pattern_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bastion.toml"
    path.write_text('[[role]]\nname = "ops"\nmatch = { groups = ["ops"] }\nmask_patterns = ["("]\n')
    with pytest.raises(ConfigError, match="bastion.toml.*does not compile"):
        load_config(path)


@pytest.mark.parametrize(
    ("command", "protocol"),
    [
        ("scp -f file", "scp"),
        ("scp -v -r -t -- dir", "scp"),
        ("rsync --server --sender -vlogDtpre.iLsfxC . data/", "rsync"),
        ("git-upload-pack '/srv/repo.git'", "git"),
        ("scp a b", None),
        ("cat file", None),
        ("echo 'unbalanced", None),
    ],
)
def test_file_transfer_servers_are_recognised(command: str, protocol: str | None) -> None:
    assert transfer_protocol(command) == protocol


def _bastion_cli(*args: str, stdin: bytes, tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", "mask", "--state-dir", str(tmp_path / "none"), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
    )


def test_mask_verb_filters_stdin_without_a_state_dir(tmp_path: Path) -> None:
    data = b"mail jane@example.com key AKIAIOSFODNN7EXAMPLE\n" * 20000  # ~1 MB, streamed
    result = _bastion_cli("--stats", stdin=data, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"mail [MASKED:email] key [MASKED:aws-access-key]\n" * 20000
    assert b"aws-access-key=20000 email=20000" in result.stderr


def test_mask_verb_detector_choice_patterns_and_list(tmp_path: Path) -> None:
    chosen = _bastion_cli(
        "-d",
        "email",
        "-p",
        "T-[0-9]{4}",
        stdin=b"a@example.com T-1234 536-22-1234\n",
        tmp_path=tmp_path,
    )
    assert chosen.stdout == b"[MASKED:email] [MASKED:custom] 536-22-1234\n"
    listed = _bastion_cli("--list", stdin=b"", tmp_path=tmp_path)
    assert b"private-key" in listed.stdout and b"national-id" in listed.stdout
    bad = _bastion_cli("-d", "nope", stdin=b"", tmp_path=tmp_path)
    assert bad.returncode == 5 and b"unknown detector" in bad.stderr
    assert b"Traceback" not in bad.stderr
