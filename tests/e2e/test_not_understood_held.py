"""An exec the bastion does not understand is held; the reviewer sees exactly why; approved,
it runs on the target through the real OpenSSH client and sshd."""

from __future__ import annotations

import json
import subprocess
import sys

from harness import TARGET_NAME, TEST_LOGIN, Agent, BastionProcess, state_store, wait_until

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"
COMMAND = "python3 -c 'print(6 * 7)'"  # inline code: never understood, harmless to run


def cli(bastion: BastionProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args, "--state-dir", str(bastion.state.root)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def pending(bastion: BastionProcess, command: str) -> int | None:
    with state_store(bastion.state) as store:
        rows = [r for r in store.list_requests() if r.command == command]
    return rows[-1].id if rows else None


def test_a_command_not_understood_is_held_explained_and_runs_once_approved(
    agent: Agent, bastion: BastionProcess
) -> None:
    client = subprocess.Popen(
        agent.ssh("-J", "bastion", DEST, COMMAND), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    request_id = wait_until(lambda: pending(bastion, COMMAND), 20)
    assert request_id
    shown = cli(bastion, "requests", "show", str(request_id))
    assert shown.returncode == 0, shown.stderr
    request = json.loads(shown.stdout)
    assert request["rule"] == "not-understood" and request["state"] == "pending"
    assert request["explanation"] == (
        "not understood: print(6 * 7): python3 code given on the line is not analysed"
    )
    approved = cli(bastion, "approve", str(request_id), "--reason", "checked the code")
    assert approved.returncode == 0, approved.stderr
    out, err = client.communicate(timeout=30)
    assert client.returncode == 0, err
    assert out == b"42\n"
    assert f"held for review as request {request_id} (rule not-understood)".encode() in err


def test_rules_test_names_the_same_reason(bastion: BastionProcess) -> None:
    result = cli(bastion, "rules", "test", "--json", COMMAND)
    data = json.loads(result.stdout)
    assert data["decision"] == "review" and data["understood"] is False
    assert data["not_understood"] == [
        {"word": "print(6 * 7)", "why": "python3 code given on the line is not analysed"}
    ]
