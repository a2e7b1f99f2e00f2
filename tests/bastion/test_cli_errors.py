"""Every verb given bad input: one line on stderr, no traceback, the documented exit code.

The codes are README.md's table: 1 other failure, 2 usage, 3 not initialised,
4 not found, 5 configuration, 6 token rejected, 7 not allowed, 70 internal
error (a bug). Each case runs the real entry point, `bastion.cli.app.main`,
in this process (as the console script does), so the table stays cheap.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bastion.cli.app import main
from bastion.setup_state import initialise
from bastion.statedir import StateDir

# (argv, exit code, a fragment of the one error line); S is an initialised state
# dir, N a missing one, K a private key, K.pub its public key, F a plain file.
CASES = [
    ("init --state-dir F", 2, "not a directory"),
    ("init --state-dir S2 --listen bad", 2, "--listen: invalid listen address"),
    ("init --state-dir S2 --host-name bad_name!", 2, "invalid host name"),
    ("serve --state-dir N", 3, "run `bastion init` first"),
    ("serve --state-dir S --log-level bogus", 2, "invalid log level 'bogus'"),
    ("serve --state-dir S --log-format xml", 2, "invalid log format 'xml'"),
    ("serve --state-dir S --metrics nowhere", 2, "--metrics: invalid listen address"),
    ("serve --state-dir S --host-name bad!name", 2, "invalid host name"),
    ("demo --target nope", 2, "--target must be"),
    ("login --bastion bad@host:xx --token-file F --host-ca K.pub", 2, "invalid bastion address"),
    ("login --bastion 127.0.0.1:1 --token-file F --host-ca K", 2, "is a private key"),
    ("login --bastion 127.0.0.1:1 --device --issuer https://x --out O", 2, "give --host-ca"),
    ("login --bastion 127.0.0.1:1 --device --token-file F --host-ca K.pub", 2, "--device takes no"),
    (
        "cert issue --state-dir S --identity a --principal p --pubkey K.pub --ttl 10",
        2,
        "needs a unit",
    ),
    ("cert issue --state-dir S --identity a --principal p --pubkey K", 2, "is a private key"),
    (
        "cert issue --state-dir S --identity a --principal p --pubkey F",
        2,
        "not an OpenSSH public key",
    ),
    (
        "cert issue --state-dir S --identity a --principal p --pubkey K.pub --out M/c.pub",
        2,
        "no directory",
    ),
    ("cert issue --state-dir N --identity a --principal p --pubkey K.pub", 3, "bastion init"),
    ("cert issue --state-dir S", 2, "Missing option"),
    (
        "cert revoke --state-dir S --identity nobody",
        4,
        "no certificate was ever issued to 'nobody'",
    ),
    ("cert revoke --state-dir S 123", 4, "no certificate with serial 123"),
    ("cert revoke --state-dir S abc", 2, "invalid serial"),
    ("cert list --state-dir N", 3, "bastion init"),
    ("ca export nope --state-dir S", 2, "unknown CA"),
    ("ca export user --known-hosts --state-dir S", 2, "--known-hosts goes with"),
    ("ca export host --state-dir N", 3, "bastion init"),
    ("host-key --state-dir N", 3, "bastion init"),
    ("host-key --state-dir S --known-hosts bad@host", 2, "invalid bastion address"),
    ("targets add x --host h --state-dir S", 2, "give exactly one of"),
    ("targets add bad!name --host h --scan --state-dir S", 2, "invalid target name"),
    ("targets add y --host h --host-key K --state-dir S", 2, "is a private key"),
    ("targets add y --host h --port 70000 --scan --state-dir S", 2, "invalid port"),
    ("targets remove nosuch --state-dir S", 4, "no target named 'nosuch'"),
    ("targets list --state-dir N", 3, "bastion init"),
    ("rules check M/missing.toml", 5, "cannot read"),
    ("rules check F", 5, "F:1"),
    ("rules test", 2, "give a COMMAND or --stdin"),
    ("rules test --default-action bogus ls", 2, "--default-action must be"),
    ("config check --state-dir N", 3, "bastion init"),
    ("requests --state-dir N", 3, "bastion init"),
    ("requests show 999 --state-dir S", 4, "no request 999"),
    ("approve 999 --state-dir S", 4, "no request 999"),
    ("approve 999 --for 10 --state-dir S", 2, "needs a unit"),
    ("deny 999 --state-dir S", 4, "no request 999"),
    ("requests --bastion bad@host:x", 2, "invalid bastion address"),
    ("sessions --state-dir N", 3, "bastion init"),
    ("replay nosuch --state-dir S", 4, "no session 'nosuch'"),
    ("replay x --speed 0 --state-dir S", 2, "--speed must be"),
    ("export nosuch --state-dir S", 4, "no session 'nosuch'"),
    ("audit --state-dir N", 3, "bastion init"),
    ("audit verify --state-dir N", 3, "bastion init"),
    ("search foo --state-dir N", 3, "bastion init"),
    ("alerts --state-dir N", 3, "bastion init"),
    ("mask --binary bogus --state-dir N", 2, "--binary must be one of"),
    ("mask -p ( --state-dir N", 2, "does not compile"),
    ("nosuch-verb", 2, "No such command"),
]


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli-errors")
    initialise(StateDir(root / "S"))
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / "K")], check=True
    )
    (root / "F").write_text("not a key, not toml\n")
    return {
        "S2": str(root / "S2"),
        "S": str(root / "S"),
        "N": str(root / "nothing"),
        "K.pub": str(root / "K.pub"),
        "K": str(root / "K"),
        "F": str(root / "F"),
        "M": str(root / "missing-dir"),
        "O": str(root / "out"),
    }


def _argv(line: str, places: dict[str, str]) -> list[str]:
    words = line.split()
    out = []
    for word in words:
        head, sep, tail = word.partition("/")
        out.append(
            places.get(word) or (places[head] + sep + tail if head in places and sep else word)
        )
    return out


def run_main(argv: list[str], capsys: pytest.CaptureFixture[str], monkeypatch) -> tuple[int, str]:
    status, _, err = run_main_out(argv, capsys, monkeypatch)
    return status, err


def run_main_out(argv: list[str], capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["bastion", *argv])
    monkeypatch.setattr(sys, "stdin", open("/dev/null"))  # noqa: SIM115 (closed by pytest)
    with pytest.raises(SystemExit) as stopped:
        main()
        raise SystemExit(0)
    code = stopped.value.code
    captured = capsys.readouterr()
    return (code if isinstance(code, int) else 1), captured.out, captured.err


@pytest.mark.parametrize(("line", "code", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line_and_the_documented_code(
    line: str, code: int, fragment: str, places: dict[str, str], capsys, monkeypatch
) -> None:
    status, err = run_main(_argv(line, places), capsys, monkeypatch)
    assert "Traceback" not in err and "internal error" not in err, err
    assert status == code, err
    assert fragment in err, err
    if not err.startswith("Usage:"):  # click's own usage errors print usage, then one line
        assert err.count("\n") == 1, err


def test_unknown_target_in_rules_test_is_reported(
    places: dict[str, str], capsys, monkeypatch
) -> None:
    status, err = run_main(
        ["rules", "test", "--state-dir", places["S"], "--target", "nosuch", "ls"],
        capsys,
        monkeypatch,
    )
    assert status == 0
    assert "warning: no target 'nosuch' is registered" in err


def test_version_and_short_help(capsys, monkeypatch) -> None:
    from bastion import installed_version

    status, _ = run_main(["--version"], capsys, monkeypatch)
    assert status == 0
    for argv in (["-h"], ["cert", "issue", "-h"], ["serve", "-h"]):
        status, out, _ = run_main_out(argv, capsys, monkeypatch)
        assert status == 0
        assert "Usage: bastion" in out and "<bool>" not in out and "╭" not in out
    result = subprocess.run(
        [sys.executable, "-m", "bastion", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == f"bastion {installed_version()}"


def test_the_readme_documents_every_exit_code() -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    codes = {code for _, code, _ in CASES}
    for code in codes | {1, 6, 7, 70}:
        assert f"| {code} |" in readme, code
