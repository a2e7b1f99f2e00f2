"""bastion init, targets, cert and ca: the operator's set-up verbs."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import asyncssh

from bastion.localsshd import LocalSshd


def bastion(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_init_creates_state_and_never_overwrites_keys(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = bastion("init", "--state-dir", str(state))
    assert first.returncode == 0, first.stderr
    for name in ("user_ca", "host_ca", "target_ca", "host_key"):
        mode = stat.S_IMODE((state / "keys" / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert (state / "bastion.toml").is_file() and (state / "recordings").is_dir()
    before = {p.name: p.read_bytes() for p in (state / "keys").iterdir()}
    second = bastion("init", "--state-dir", str(state))
    assert second.returncode == 0
    assert "nothing changed" in second.stdout
    assert before == {p.name: p.read_bytes() for p in (state / "keys").iterdir()}


def test_state_dir_comes_from_bastion_home(tmp_path: Path) -> None:
    env = dict(os.environ, BASTION_HOME=str(tmp_path / "home-state"))
    assert bastion("init", env=env).returncode == 0
    assert (tmp_path / "home-state" / "bastion.db").is_file()


def test_verbs_on_uninitialised_state_fail_with_one_line(tmp_path: Path) -> None:
    result = bastion("targets", "list", "--state-dir", str(tmp_path / "nothing"))
    assert result.returncode == 3
    assert result.stderr.count("\n") == 1 and "bastion init" in result.stderr
    assert "Traceback" not in result.stderr


def test_ca_export_prints_public_key_lines(tmp_path: Path) -> None:
    state = tmp_path / "s"
    bastion("init", "--state-dir", str(state))
    for which in ("user", "host", "target"):
        out = bastion("ca", "export", which, "--state-dir", str(state))
        assert out.returncode == 0
        key = asyncssh.import_public_key(out.stdout.strip())
        assert key.algorithm == b"ssh-ed25519"
    assert bastion("ca", "export", "nope", "--state-dir", str(state)).returncode == 2


def test_targets_add_list_remove_with_pinned_key(tmp_path: Path) -> None:
    state = tmp_path / "s"
    bastion("init", "--state-dir", str(state))
    pub = tmp_path / "host.pub"
    pub.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_public_key())
    added = bastion(
        "targets",
        "add",
        "db1",
        "--host",
        "127.0.0.1",
        "--port",
        "2200",
        "--host-key",
        str(pub),
        "--label",
        "env=staging",
        "--state-dir",
        str(state),
    )
    assert added.returncode == 0, added.stderr
    listed = json.loads(bastion("targets", "list", "--json", "--state-dir", str(state)).stdout)
    assert listed[0]["name"] == "db1" and listed[0]["port"] == 2200
    assert listed[0]["labels"] == {"env": "staging"}
    table = bastion("targets", "list", "--state-dir", str(state)).stdout
    assert "db1" in table and "127.0.0.1:2200" in table
    dup = bastion(
        "targets", "add", "db1", "--host", "h", "--host-key", str(pub), "--state-dir", str(state)
    )
    assert dup.returncode == 2 and "already exists" in dup.stderr
    assert bastion("targets", "remove", "db1", "--state-dir", str(state)).returncode == 0
    assert json.loads(bastion("targets", "list", "--json", "--state-dir", str(state)).stdout) == []
    missing = bastion("targets", "remove", "db1", "--state-dir", str(state))
    assert missing.returncode == 4


def test_targets_add_rejects_bad_input_without_saving(tmp_path: Path) -> None:
    state = tmp_path / "s"
    bastion("init", "--state-dir", str(state))
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("not a key\n")
    cases = [
        ["bad name!", "--host", "h", "--host-key", str(garbage)],
        ["ok", "--host", "h", "--host-key", str(garbage)],
        ["ok", "--host", "h"],
        ["ok", "--host", "h", "--port", "70000", "--scan"],
        ["ok", "--host", "h", "--scan", "--label", "novalue"],
    ]
    for args in cases:
        result = bastion("targets", "add", *args, "--state-dir", str(state))
        assert result.returncode != 0, args
        assert result.stderr.strip().count("\n") == 0, result.stderr
        assert "Traceback" not in result.stderr
    assert json.loads(bastion("targets", "list", "--json", "--state-dir", str(state)).stdout) == []


def test_targets_scan_pins_the_real_sshd_key(tmp_path: Path, target_sshd: LocalSshd) -> None:
    state = tmp_path / "s"
    bastion("init", "--state-dir", str(state))
    result = bastion(
        "targets",
        "add",
        "scanned",
        "--host",
        "127.0.0.1",
        "--port",
        str(target_sshd.port),
        "--scan",
        "--state-dir",
        str(state),
    )
    assert result.returncode == 0, result.stderr
    expected = asyncssh.import_public_key(target_sshd.host_key_pub).get_fingerprint()
    assert expected in result.stdout
    listed = json.loads(bastion("targets", "list", "--json", "--state-dir", str(state)).stdout)
    pinned = asyncssh.import_public_key(listed[0]["host_key"]).get_fingerprint()
    assert pinned == expected


def test_cert_issue_signs_with_user_ca_and_records_serial(tmp_path: Path) -> None:
    state = tmp_path / "s"
    bastion("init", "--state-dir", str(state))
    key = asyncssh.generate_private_key("ssh-ed25519")
    pub = tmp_path / "agent.pub"
    pub.write_bytes(key.export_public_key())
    out = tmp_path / "agent-cert.pub"
    result = bastion(
        "cert",
        "issue",
        "--identity",
        "ci-job-7",
        "--principal",
        "deploy",
        "--principal",
        "app",
        "--group",
        "deployers",
        "--pubkey",
        str(pub),
        "--ttl",
        "10m",
        "--out",
        str(out),
        "--state-dir",
        str(state),
    )
    assert result.returncode == 0, result.stderr
    from bastion.identity.certinfo import certificate_info

    info = certificate_info(out.read_bytes())
    assert info.key_id == "ci-job-7" and info.principals == ("deploy", "app")
    assert 590 <= info.valid_before - info.valid_after - 60 <= 600
    user_ca = bastion("ca", "export", "user", "--state-dir", str(state)).stdout.split()[:2]
    assert info.ca_public_key.split() == user_ca
    assert f"serial {info.serial}" in result.stderr
    from harness import state_store

    from bastion.statedir import StateDir

    with state_store(StateDir(state)) as store:
        record = store.get_certificate(info.serial)
    assert record is not None and record.groups == ("deployers",)
    assert record.key_id == "ci-job-7" and record.principals == ("deploy", "app")
    assert (record.valid_after, record.valid_before) == (info.valid_after, info.valid_before)


def test_cert_issue_refuses_bad_ttl_and_logins(tmp_path: Path) -> None:
    state = tmp_path / "s"
    bastion("init", "--state-dir", str(state))
    pub = tmp_path / "agent.pub"
    pub.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_public_key())
    base = ["cert", "issue", "--identity", "x", "--pubkey", str(pub), "--state-dir", str(state)]
    assert bastion(*base, "--principal", "ok", "--ttl", "30d").returncode == 2
    assert bastion(*base, "--principal", "ok", "--ttl", "ten").returncode == 2
    assert bastion(*base, "--principal", "bad login").returncode == 2


def test_config_check_reports_ok_and_names_the_line_of_errors(tmp_path: Path) -> None:
    state = tmp_path / "s"
    bastion("init", "--state-dir", str(state))
    ok = bastion("config", "check", "--state-dir", str(state))
    assert ok.returncode == 0 and "ok" in ok.stdout
    config = state / "bastion.toml"
    lines_before = len(config.read_text().splitlines())
    with config.open("a") as handle:
        handle.write(
            '\n[[role]]\nname = "x"\nmatch = { groups = ["a"] }\ntargets = ["*"]\nshell = "no"\n'
        )
    bad = bastion("config", "check", "--state-dir", str(state))
    assert bad.returncode == 5
    assert f"bastion.toml:{lines_before + 2}:" in bad.stderr and "shell" in bad.stderr
