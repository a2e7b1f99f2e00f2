"""`bastion demo --script`: from nothing to a working tour through the real ssh client."""

from __future__ import annotations

import subprocess
import sys


def test_demo_script_runs_the_tour_and_exits_zero(test_login: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bastion", "demo", "--script"],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo tour: 5/5 steps as expected" in result.stdout
    assert "hello from bastion-demo" in result.stdout
    assert "unknown target 'nowhere'" in result.stdout
    assert "denied by rule credential-read" in result.stdout
