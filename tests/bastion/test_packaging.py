"""Every install path: the wheel's contents, and the Dockerfile, README and CI saying the same.

The Dockerfile is never built here (no Docker engine); its install steps are
proven by CI because they are CI's own lines, which these tests hold them to.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bastion.errors import BastionError
from bastion.setup_state import initialise
from bastion.statedir import StateDir

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bastion", "rules", "recorder")


def _ci_lines() -> list[str]:
    return (ROOT / ".ci" / "run").read_text().splitlines()


def _dockerfile_runs() -> list[str]:
    """The Dockerfile's RUN instructions, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    return [line.split(None, 1)[1].strip() for line in text.splitlines() if line.startswith("RUN ")]


def _readme_setup_lines() -> list[str]:
    """The first two lines of the README's first code block: the demo line, the test line."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n(.*?)```", text, re.S)
    assert block, "README.md has no sh code block"
    return block.group(1).strip().splitlines()[:2]


def test_dockerfile_installs_with_exactly_the_steps_ci_runs() -> None:
    runs = [run for run in _dockerfile_runs() if "$VENV" in run]
    assert len(runs) == 3, runs
    ci = [line.strip() for line in _ci_lines()]
    positions = [ci.index(run) for run in runs]  # ValueError names the line CI lacks
    assert positions == sorted(positions), "the Dockerfile runs CI's wheel steps in another order"
    assert any(run.startswith('"$VENV/bin/pip" install') and ".whl" in run for run in runs)
    assert all("-e " not in run for run in runs), "the container must install the wheel"


def test_ci_runs_the_wheel_steps_outside_the_tree_then_init_and_demo() -> None:
    ci = "\n".join(_ci_lines())
    wheel = ci.index('"$VENV/bin/pip" install --quiet "$DIST"/bastion-*.whl')
    init = ci.index('"$VENV/bin/bastion" init --state-dir')
    demo = ci.index('"$VENV/bin/bastion" demo --script')
    tests = ci.index("pytest")
    assert wheel < init < demo < tests


def test_readme_setup_lines_are_what_ci_runs() -> None:
    demo, tests = _readme_setup_lines()
    assert "bastion demo --script" in demo and "pytest" in tests
    ci = _ci_lines()
    assert any(line == demo or line.startswith(demo + " ||") for line in ci), demo
    assert any(line == tests for line in ci), tests
    for line in (demo, tests):
        assert "python3 -m venv .venv" in line  # Debian 12's Python refuses pip outside a venv
        assert "pip install -e . " not in line


def test_dockerfile_runs_unprivileged_with_state_in_a_volume_and_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^USER bastion$", text, re.M)
    assert 'VOLUME ["/var/lib/bastion"]' in text and "BASTION_HOME=/var/lib/bastion" in text
    assert re.search(r"^HEALTHCHECK .*\n?.*/readyz", text, re.M)
    entry = re.search(r"^ENTRYPOINT (\[.*\])$", text, re.M)
    assert entry and '"serve", "--init"' in entry.group(1)
    for name in ("BASTION_HOST_NAMES", "BASTION_METRICS"):
        assert name in text


def _tracked_data_files() -> set[str]:
    """Files of the packages a wheel must carry besides Python sources."""
    if (ROOT / ".git").exists():
        listed = subprocess.run(
            # safe.directory: the README's test line runs pytest with sudo in a user's clone
            ["git", "-c", "safe.directory=*", "-C", str(ROOT), "ls-files", *PACKAGES],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    else:
        listed = [str(p.relative_to(ROOT)) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*")]
    return {
        name
        for name in listed
        if not name.endswith((".py", ".pyc"))
        and "__pycache__" not in name
        and (ROOT / name).is_file()
    }


def test_the_wheel_holds_every_data_file(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("bastion-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    wanted = _tracked_data_files()
    assert any(name.endswith(".sql") for name in wanted)
    assert wanted - names == set(), "missing from the wheel (pyproject.toml package-data)"


def test_a_failed_init_leaves_no_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_migrations(*args: object, **kwargs: object) -> None:  # as a wheel without them did
        raise FileNotFoundError(2, "No such file or directory", "bastion/store/sqlite/migrations")

    monkeypatch.setattr("bastion.setup_state.open_store", no_migrations)
    root = tmp_path / "state"
    with pytest.raises((BastionError, OSError)):
        initialise(StateDir(root))
    assert not root.exists()
    assert list(tmp_path.iterdir()) == []  # nor the directory it was being built in


def test_a_failed_init_in_an_existing_dir_removes_what_it_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "state"
    root.mkdir()
    (root / "notes.txt").write_text("mine")

    def no_migrations(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError(2, "gone", "migrations")

    monkeypatch.setattr("bastion.setup_state.open_store", no_migrations)
    with pytest.raises((BastionError, OSError)):
        initialise(StateDir(root))
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt"]


def test_init_makes_the_database_and_config_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        state = StateDir(tmp_path / "state")
        initialise(state)
    finally:
        os.umask(old)
    for path in (
        state.database,
        state.config_file,
        state.root,
        state.keys,
        state.root / "recordings",
    ):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, (path, oct(path.stat().st_mode))


def test_init_refuses_a_state_dir_that_is_a_file(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    result = subprocess.run(
        [sys.executable, "-m", "bastion", "init", "--state-dir", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "not a directory" in result.stderr and "Traceback" not in result.stderr


def test_init_writes_the_host_names_given(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    initialise(state, host_names=["bastion.example.com"])
    from bastion.config import load_config

    names = load_config(state.config_file).server.host_names
    assert names == ("bastion.example.com", "localhost", "127.0.0.1")
