"""A held exec is approved or denied from a terminal on the bastion host; racers get one outcome."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid

from harness import TARGET_NAME, TEST_LOGIN, Agent, BastionProcess, state_store, wait_until

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


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


def held(agent: Agent, command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        agent.ssh("-J", "bastion", DEST, command), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def test_approved_exec_runs_and_its_output_arrives(agent: Agent, bastion: BastionProcess) -> None:
    client = held(agent, "uname -s")
    request_id = wait_until(lambda: pending(bastion, "uname -s"), 20)
    assert request_id
    listed = cli(bastion, "requests")
    assert str(request_id) in listed.stdout and "uname -s" in listed.stdout
    assert '"state": "pending"' in cli(bastion, "requests", "show", str(request_id)).stdout
    approved = cli(bastion, "approve", str(request_id), "--reason", "maintenance window")
    assert approved.returncode == 0, approved.stderr
    out, err = client.communicate(timeout=30)
    assert client.returncode == 0, err
    assert out == b"Linux\n"
    assert f"held for review as request {request_id}".encode() in err
    assert b"approved by local:" in err
    again = cli(bastion, "approve", str(request_id))
    assert again.returncode == 1 and "already approved" in again.stderr


def test_denied_exec_gets_126_and_the_reason(agent: Agent, bastion: BastionProcess) -> None:
    client = held(agent, "uname -r")
    request_id = wait_until(lambda: pending(bastion, "uname -r"), 20)
    assert request_id
    assert cli(bastion, "deny", str(request_id), "--reason", "not today").returncode == 0
    out, err = client.communicate(timeout=30)
    assert client.returncode == 126 and out == b""
    assert f"request {request_id} denied by local:".encode() in err and b"not today" in err


def test_racing_approve_and_deny_give_one_outcome(agent: Agent, bastion: BastionProcess) -> None:
    client = held(agent, "uname -m")
    request_id = wait_until(lambda: pending(bastion, "uname -m"), 20)
    assert request_id
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    threads = [
        threading.Thread(
            target=lambda verb=verb: results.__setitem__(verb, cli(bastion, verb, str(request_id)))
        )
        for verb in ("approve", "deny")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    codes = sorted(result.returncode for result in results.values())
    assert codes == [0, 1], {k: (v.returncode, v.stderr) for k, v in results.items()}
    client.communicate(timeout=30)
    winner = "approve" if results["approve"].returncode == 0 else "deny"
    assert client.returncode == (0 if winner == "approve" else 126)


def held_sftp(agent: Agent, batch: str) -> subprocess.Popen[bytes]:
    """An sftp batch run through the bastion; the batch is sent at once, the client then waits."""
    client = subprocess.Popen(
        ["sftp", "-F", str(agent.config), "-b", "-", "-J", "bastion", DEST],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert client.stdin is not None
    client.stdin.write(batch.encode())
    client.stdin.close()
    return client


def listed(out: bytes) -> list[str]:
    """What `ls -1` printed: sftp -b echoes each batch line as `sftp> ...`."""
    return [line for line in out.decode().splitlines() if not line.startswith("sftp>")]


def test_held_sftp_request_runs_once_approved_and_the_requests_behind_it_follow(
    agent: Agent, bastion: BastionProcess
) -> None:
    name = f"held-by-review-{uuid.uuid4().hex[:8]}"
    client = held_sftp(agent, f"mkdir {name}\nls -1\nrmdir {name}\n")
    command = f"mkdir -- /home/{TEST_LOGIN}/{name}"  # the client sends resolved paths
    request_id = wait_until(lambda: pending(bastion, command), 20)
    assert request_id, "the sftp mkdir was not held"
    assert client.poll() is None  # still waiting: nothing behind the held request went ahead
    assert cli(bastion, "approve", str(request_id)).returncode == 0
    out, err = client.stdout.read(), client.stderr.read()  # type: ignore[union-attr]
    client.wait(timeout=60)
    assert client.returncode == 0, err
    assert f"held for review as request {request_id}".encode() in err
    assert b"approved by local:" in err
    assert name in listed(out)  # the ls after the mkdir saw the directory


def test_held_sftp_request_denied_is_refused_with_the_reason(
    agent: Agent, bastion: BastionProcess
) -> None:
    name = f"held-by-review-{uuid.uuid4().hex[:8]}"
    client = held_sftp(agent, f"-mkdir {name}\nls -1\n")  # `-`: go on after a failure
    command = f"mkdir -- /home/{TEST_LOGIN}/{name}"
    request_id = wait_until(lambda: pending(bastion, command), 20)
    assert request_id
    assert cli(bastion, "deny", str(request_id), "--reason", "no new dirs").returncode == 0
    out, err = client.stdout.read(), client.stderr.read()  # type: ignore[union-attr]
    client.wait(timeout=60)
    assert f"request {request_id} denied by local:".encode() in err and b"no new dirs" in err
    assert "sftp> ls -1" in out.decode()  # the request behind the refused one ran
    assert name not in listed(out)
    assert b"Permission denied" in err


def test_requests_verbs_refuse_bad_ids(bastion: BastionProcess) -> None:
    assert cli(bastion, "approve", "999999").returncode == 4
    assert cli(bastion, "deny", "abc").returncode == 2


def test_without_roles_nobody_approves_over_ssh(agent: Agent, bastion: BastionProcess) -> None:
    """With no [[role]] table no identity holds an approving role: only operators on the host."""
    client = held(agent, "uname -v")
    request_id = wait_until(lambda: pending(bastion, "uname -v"), 20)
    assert request_id
    remote = subprocess.run(
        agent.ssh("bastion", f"approve {request_id}"), capture_output=True, text=True, timeout=60
    )
    assert remote.returncode == 7 and "no role of yours may approve" in remote.stderr
    assert cli(bastion, "deny", str(request_id)).returncode == 0
    client.communicate(timeout=30)
    assert client.returncode == 126


def test_the_audit_chain_holds_after_bastion_and_reviewers_wrote_to_it(
    agent: Agent, bastion: BastionProcess
) -> None:
    """The bastion and reviewer processes append to one chain; it must verify."""
    assert agent.run("-J", "bastion", DEST, "echo chained").returncode == 0
    result = cli(bastion, "audit", "verify", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["intact"] and report["rows"] > 5 and report["unchained_rows"] == 0
