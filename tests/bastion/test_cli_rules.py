"""bastion rules check|test, with the built-in pack and with files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def bastion(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_rules_check_default_and_files(tmp_path: Path) -> None:
    assert "ok" in bastion("rules", "check").stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('\n[[rule]]\nname = "x"\naction = "deny"\nprogram = ["a"]\nfrobnicate = 1\n')
    result = bastion("rules", "check", str(bad))
    assert result.returncode == 5
    assert f"{bad}:2:" in result.stderr and "frobnicate" in result.stderr
    assert result.stderr.count("\n") == 1


def test_rules_test_explains_a_decision() -> None:
    result = bastion(
        "rules", "test", "--json", "--user", "ci", "--target", "web1", "sudo cat /etc/shadow"
    )
    data = json.loads(result.stdout)
    assert data["decision"] == "deny" and data["rule"] == "credential-read"
    assert [c["program"] for c in data["commands"]] == ["sudo", "cat"]
    human = bastion("rules", "test", "rm -rf ./build").stdout
    assert human.startswith("allow:")


def test_rules_test_stdin_json_lines() -> None:
    lines = (
        "\n".join(
            [
                json.dumps(
                    {
                        "command": "psql -c 'DROP DATABASE prod'",
                        "user": "a",
                        "groups": ["g"],
                        "target": "t",
                    }
                ),
                "not json",
                json.dumps({"command": "ls -la"}),
                json.dumps({"command": 42}),
                json.dumps({"command": "echo " + "a" * 200_000}),
            ]
        )
        + "\n"
    )
    result = bastion("rules", "test", "--stdin", stdin=lines)
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["decision"] for o in out] == ["deny", "deny", "allow", "deny", "deny"]
    assert out[0]["rule"] == "sql-drop-database"
    # what is not a request is denied (fail closed), and says why
    assert [o["rule"] for o in out[3:]] == ["bad-input", "bad-input"] and out[1]["rule"] == "bad-input"
    assert "over 65536 characters" in out[4]["reason"]
    # SPEC 4's four keys on every line; decisions also say what was understood
    assert all({"decision", "rule", "reason", "commands"} <= set(o) for o in out)
    assert out[2]["understood"] is True and out[2]["capabilities"] == ["info"]


def test_rules_test_with_policy_file_and_default_action(tmp_path: Path) -> None:
    policy = tmp_path / "allow.toml"
    policy.write_text('[[rule]]\nname = "ok"\naction = "allow"\nprogram = ["uptime"]\n')
    args = ["rules", "test", "--policy", str(policy), "--default-action", "deny", "--json"]
    assert json.loads(bastion(*args, "uptime").stdout)["decision"] == "allow"
    assert json.loads(bastion(*args, "whoami").stdout)["decision"] == "deny"


def test_rules_test_uses_the_bastions_roles_with_state_dir(tmp_path) -> None:
    """An operator tests the real policy: [rules], the identity's roles and their defaults."""
    import json as _json
    import subprocess as _subprocess
    import sys as _sys

    from bastion.setup_state import initialise
    from bastion.statedir import StateDir

    state = StateDir(tmp_path / "state")
    initialise(state)
    (state.root / "status.toml").write_text(
        '[[rule]]\nname = "status-only"\naction = "allow"\nmessage = "status"\nprogram = ["uptime"]\n'
    )
    with state.config_file.open("a") as config:
        config.write(
            '\n[[role]]\nname = "status"\nmatch = { groups = ["status"] }\ntargets = ["web*"]\n'
            'logins = ["deploy"]\npolicy = ["status.toml"]\ndefault_action = "deny"\n'
        )

    def run(*args: str, stdin: str | None = None) -> _subprocess.CompletedProcess[str]:
        return _subprocess.run(
            [
                _sys.executable,
                "-m",
                "bastion",
                "rules",
                "test",
                "--state-dir",
                str(state.root),
                *args,
            ],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )

    common = ("--user", "ci", "--group", "status", "--target", "web1", "--login", "deploy")
    assert run(*common, "uptime").stdout.startswith("allow: status-only")
    assert run(*common, "whoami").stdout.startswith("deny: (no rule): no rule matched")
    # Without the role's group the identity has no role on web1: denied, never allowed.
    assert run("--user", "ci", "--target", "web1", "--login", "deploy", "uptime").stdout.startswith(
        "deny"
    )
    lines = [
        {
            "command": "whoami",
            "user": "ci",
            "groups": ["status"],
            "target": "web1",
            "login": "deploy",
        },
        {"command": "cat /etc/shadow", "groups": ["status"], "target": "web1", "login": "deploy"},
    ]
    out = run("--stdin", stdin="".join(_json.dumps(line) + "\n" for line in lines)).stdout
    decisions = [_json.loads(line) for line in out.splitlines()]
    assert [(d["decision"], d["rule"]) for d in decisions] == [
        ("deny", None),
        ("deny", "credential-read"),
    ]


def test_rules_test_names_what_is_not_understood_and_what_is() -> None:
    held = bastion("rules", "test", "trap 'cat /etc/shadow' EXIT")
    lines = held.stdout.splitlines()
    assert lines[0].startswith("deny: credential-read")
    assert "  - trap cat /etc/shadow: trap runs its handler later, on a signal or at exit" in lines
    known = bastion("rules", "test", "tar czf /tmp/b.tgz /srv/app")
    assert "understood; capabilities: read, write" in known.stdout
    assert "reads: /srv/app" in known.stdout and "writes: /tmp/b.tgz" in known.stdout
    alert = bastion("rules", "test", "--unknown-action", "alert", "frobnicate")
    assert alert.stdout.startswith("alert: not-understood")


def test_rules_suggest_turns_approvals_into_rules_that_then_allow(tmp_path: Path) -> None:
    import time

    from bastion.cli.common import open_state_store
    from bastion.setup_state import initialise
    from bastion.statedir import StateDir
    from bastion.store.records import NewRequest

    state = StateDir(tmp_path / "state")
    initialise(state)
    now = time.time()
    with open_state_store(state.root) as store:
        for command, who, where, decided in (
            ("frobnicate --all", "ci", "web1", "approved"),
            ("./deploy.sh prod", "ci", "web1", "approved"),
            ("frobnicate --all", "ci", "web2", "denied"),
            ("rebuild-cache", "bob", "db1", "approved"),
        ):
            held = NewRequest(who, where, "deploy", command, "not-understood", None, now, now + 60)
            request = store.create_request(held)
            store.finish_request(request.id, decided, reviewer="alice")
    out = bastion(
        "rules", "suggest", "--since", "1d", "--identity", "ci", "--state-dir", str(state.root)
    )
    assert out.returncode == 0, out.stderr
    assert "#   frobnicate --all" in out.stdout and "#   ./deploy.sh prod" in out.stdout
    assert "rebuild-cache" not in out.stdout and "web2" not in out.stdout
    assert 'scope = { identities = ["ci"], targets = ["web1"], logins = ["deploy"] }' in out.stdout
    suggested = tmp_path / "suggested.toml"
    suggested.write_text(out.stdout)
    assert bastion("rules", "check", str(suggested)).returncode == 0
    args = [
        "rules",
        "test",
        "--policy",
        str(suggested),
        "--json",
        "--user",
        "ci",
        "--target",
        "web1",
        "--login",
        "deploy",
    ]
    assert json.loads(bastion(*args, "frobnicate --all").stdout)["decision"] == "allow"
    assert json.loads(bastion(*args, "frobnicate --none").stdout)["decision"] == "review"
    other = [
        "rules",
        "test",
        "--policy",
        str(suggested),
        "--json",
        "--user",
        "bob",
        "--target",
        "web1",
        "--login",
        "deploy",
        "frobnicate --all",
    ]
    assert json.loads(bastion(*other).stdout)["decision"] == "review"  # scoped to ci
