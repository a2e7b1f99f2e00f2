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
    # Both demo identities got their certificates through `bastion login` and the dev issuer.
    for identity in ("demo-agent", "demo-reviewer"):
        assert f"{identity}: `bastion login` exchanged a token from the dev issuer" in result.stdout
