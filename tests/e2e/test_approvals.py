"""Reviewers by identity: approving roles, self-approval, two approvers, remote approval, grants, webhook.

Agents and reviewers are real OpenSSH clients with their own certificates;
reviewers approve over SSH (`ssh bastion approve N`, and `bastion approve
--bastion`), as SPEC section 5 describes. The webhook receiver is a real
HTTP server on 127.0.0.1.
"""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from harness import (
    TEST_LOGIN,
    Agent,
    BastionProcess,
    bastion_with_target,
    make_agent,
    make_state,
    start_bastion,
    state_store,
    wait_until,
)
from ptydriver import PtyProcess

from bastion.localsshd import LocalSshd
from bastion.targets import Target

DEST = f"{TEST_LOGIN}@web1"

CONFIG = """
[[role]]
name = "agents"
match = {{ groups = ["agents"] }}
targets = ["web1"]
logins = ["{login}"]

[[role]]
name = "reviewers"
match = {{ groups = ["reviewers"] }}
targets = ["web1"]
logins = ["{login}"]
approve = true
"""

TWO_APPROVERS = """
[[rule]]
name = "hold-whoami-two"
action = "review"
message = "whoami needs two reviewers in tests"
program = ["whoami"]
approvers = 2
timeout = "60s"
"""


class Hooks:
    """A webhook receiver: every POSTed JSON body, in order."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.failures_left = 1  # the first delivery fails: the bastion must retry
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = min(int(self.headers.get("Content-Length", "0")), 1 << 20)
                body = self.rfile.read(length)
                if hooks.failures_left > 0:
                    hooks.failures_left -= 1
                    self.send_error(503)
                    return
                hooks.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def for_command(self, command: str) -> list[dict]:
        return [b for b in self.bodies if b["request"]["command"] == command]


@pytest.fixture(scope="module")
def hooks():
    receiver = Hooks()
    yield receiver
    receiver.server.shutdown()


@pytest.fixture(scope="module")
def reviewed(tmp_path_factory: pytest.TempPathFactory, test_login: str, hooks: Hooks):
    def webhook(text: str) -> str:
        assert '# webhook = "' in text
        return text.replace(
            '# webhook = "', f'webhook = "http://127.0.0.1:{hooks.port}/hook" # ', 1
        )

    with bastion_with_target(
        tmp_path_factory.mktemp("approvals"),
        test_login,
        config=CONFIG.format(login=test_login),
        files={"test-policy.toml": TWO_APPROVERS},
        edit=webhook,
    ) as bastion:
        yield bastion


def person(reviewed: BastionProcess, root: Path, name: str, group: str) -> Agent:
    return make_agent(root / name, reviewed.state, reviewed.port, identity=name, groups=(group,))


def held(agent: Agent, command: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        agent.ssh("-J", "bastion", DEST, command), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def pending(reviewed: BastionProcess, command: str) -> int | None:
    with state_store(reviewed.state) as store:
        rows = [r for r in store.list_requests() if r.command == command]
    return rows[-1].id if rows else None


def request(reviewed: BastionProcess, request_id: int) -> dict:
    with state_store(reviewed.state) as store:
        return store.get_request(request_id).to_json()


def finished(reviewed: BastionProcess, request_id: int, timeout: float = 20) -> dict | None:
    """The request once it has left `pending` (None if it never does within `timeout`)."""

    def done() -> dict | None:
        row = request(reviewed, request_id)
        return row if row["state"] != "pending" else None

    return wait_until(done, timeout, interval=0.2)


def remote(reviewer: Agent, *verb: str) -> subprocess.CompletedProcess[str]:
    """`ssh bastion 'VERB ...'`: the reviewer's verbs run on the bastion itself.

    ssh joins its arguments with spaces, so a reason with spaces is quoted, as a
    person would type it.
    """
    return subprocess.run(
        reviewer.ssh("bastion", shlex.join(verb)), capture_output=True, text=True, timeout=60
    )


def test_reviewer_approves_over_ssh_and_the_output_arrives(
    reviewed: BastionProcess, tmp_path: Path, hooks: Hooks
) -> None:
    agent = person(reviewed, tmp_path, "ci-agent", "agents")
    alice = person(reviewed, tmp_path, "alice", "reviewers")
    client = held(agent, "uname -s")
    request_id = wait_until(lambda: pending(reviewed, "uname -s"), 20)
    assert request_id
    listed = remote(alice, "requests")
    assert listed.returncode == 0, listed.stderr
    assert str(request_id) in listed.stdout and "uname -s" in listed.stdout
    approved = remote(alice, "approve", str(request_id), "--reason", "looks fine")
    assert approved.returncode == 0, approved.stderr
    assert f"request {request_id} approved" in approved.stdout
    out, err = client.communicate(timeout=30)
    assert client.returncode == 0, err
    assert out == b"Linux\n"
    assert f"request {request_id} approved by alice".encode() in err
    # The webhook announced it (after one failed delivery, retried).
    bodies = wait_until(lambda: hooks.for_command("uname -s"), 20)
    assert bodies and bodies[0]["event"] == "request.created"
    assert bodies[0]["request"]["id"] == request_id
    assert bodies[0]["request"]["identity"] == "ci-agent"
    assert f"request {request_id} held: ci-agent" in reviewed.log()


def test_reviewer_denies_with_the_cli_remote_form(reviewed: BastionProcess, tmp_path: Path) -> None:
    agent = person(reviewed, tmp_path, "ci-agent", "agents")
    alice = person(reviewed, tmp_path, "alice", "reviewers")
    client = held(agent, "uname -r")
    request_id = wait_until(lambda: pending(reviewed, "uname -r"), 20)
    assert request_id
    denied = subprocess.run(
        [
            sys.executable,
            "-m",
            "bastion",
            "deny",
            str(request_id),
            "--reason",
            "not during the freeze",
            "--bastion",
            f"127.0.0.1:{reviewed.port}",
            "--identity-dir",
            str(alice.dir),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert denied.returncode == 0, denied.stderr
    out, err = client.communicate(timeout=30)
    assert client.returncode == 126 and out == b""
    assert f"request {request_id} denied by alice: not during the freeze".encode() in err


def test_nobody_approves_their_own_request(reviewed: BastionProcess, tmp_path: Path) -> None:
    alice = person(reviewed, tmp_path, "alice", "reviewers")
    bob = person(reviewed, tmp_path, "bob", "reviewers")
    client = held(alice, "uname -m")
    request_id = wait_until(lambda: pending(reviewed, "uname -m"), 20)
    assert request_id
    own = remote(alice, "approve", str(request_id))
    assert own.returncode == 7
    assert f"request {request_id} is your own" in own.stderr
    assert request(reviewed, request_id)["state"] == "pending"
    assert remote(bob, "approve", str(request_id)).returncode == 0
    out, err = client.communicate(timeout=30)
    assert client.returncode == 0 and out.strip(), err
    assert b"approved by bob" in err


def test_identity_without_an_approving_role_is_refused(
    reviewed: BastionProcess, tmp_path: Path
) -> None:
    agent = person(reviewed, tmp_path, "ci-agent", "agents")
    mallory = person(reviewed, tmp_path, "mallory", "agents")
    alice = person(reviewed, tmp_path, "alice", "reviewers")
    client = held(agent, "uname -n")
    request_id = wait_until(lambda: pending(reviewed, "uname -n"), 20)
    assert request_id
    refused = remote(mallory, "approve", str(request_id))
    assert refused.returncode == 7
    assert "no role of yours may approve requests" in refused.stderr
    assert request(reviewed, request_id)["state"] == "pending"
    assert remote(mallory, "requests").returncode == 7  # nor may it list them
    assert remote(alice, "deny", str(request_id)).returncode == 0
    client.communicate(timeout=30)
    assert client.returncode == 126


def test_a_two_approver_rule_needs_two_distinct_reviewers(
    reviewed: BastionProcess, tmp_path: Path
) -> None:
    agent = person(reviewed, tmp_path, "ci-agent", "agents")
    alice = person(reviewed, tmp_path, "alice", "reviewers")
    bob = person(reviewed, tmp_path, "bob", "reviewers")
    client = held(agent, "whoami")
    request_id = wait_until(lambda: pending(reviewed, "whoami"), 20)
    assert request_id
    first = remote(alice, "approve", str(request_id))
    assert first.returncode == 0 and "approval 1 of 2 recorded" in first.stdout
    again = remote(alice, "approve", str(request_id))
    assert again.returncode == 1 and "alice has already approved it" in again.stderr
    time.sleep(1.5)  # the held command must still be waiting
    assert client.poll() is None
    assert request(reviewed, request_id)["state"] == "pending"
    assert remote(bob, "approve", str(request_id)).returncode == 0
    out, err = client.communicate(timeout=30)
    assert client.returncode == 0 and out == f"{TEST_LOGIN}\n".encode(), err
    assert b"approved by alice, bob" in err
    assert [a["reviewer"] for a in request(reviewed, request_id)["approvals"]] == ["alice", "bob"]


def test_a_grant_lets_the_same_command_through_until_it_expires(
    reviewed: BastionProcess, tmp_path: Path
) -> None:
    agent = person(reviewed, tmp_path, "ci-agent", "agents")
    alice = person(reviewed, tmp_path, "alice", "reviewers")
    client = held(agent, "uname -o")
    request_id = wait_until(lambda: pending(reviewed, "uname -o"), 20)
    assert request_id
    approved = remote(alice, "approve", str(request_id), "--for", "4s")
    assert approved.returncode == 0 and "passes for 4s" in approved.stdout, approved.stderr
    granted_at = time.monotonic()
    client.communicate(timeout=30)
    assert client.returncode == 0
    repeat = agent.run("-J", "bastion", DEST, "uname -o", timeout=30)
    assert repeat.returncode == 0, repeat.stderr
    assert f"grant from request {request_id}".encode() in repeat.stderr
    # Another command line is not covered by the grant.
    other = held(agent, "uname -o -s")
    other_id = wait_until(lambda: pending(reviewed, "uname -o -s"), 20)
    assert other_id and other_id != request_id
    remote(alice, "deny", str(other_id))
    other.communicate(timeout=30)
    # After it expires, the same line is held again.
    time.sleep(max(0.0, 4.5 - (time.monotonic() - granted_at)))
    later = held(agent, "uname -o")
    later_id = wait_until(lambda: pending(reviewed, "uname -o"), 20)
    assert later_id and later_id != request_id
    remote(alice, "deny", str(later_id))
    later.communicate(timeout=30)
    assert later.returncode == 126


def test_disconnecting_cancels_the_request(reviewed: BastionProcess, tmp_path: Path) -> None:
    agent = person(reviewed, tmp_path, "ci-agent", "agents")
    client = held(agent, "uname -i")
    request_id = wait_until(lambda: pending(reviewed, "uname -i"), 20)
    assert request_id
    client.kill()
    client.communicate(timeout=10)
    state = finished(reviewed, request_id, 20)
    assert state and state["state"] == "cancelled"
    assert state["reason"] == "the agent disconnected"


def test_requests_watch_prints_new_requests(reviewed: BastionProcess, tmp_path: Path) -> None:
    watch = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bastion",
            "requests",
            "--watch",
            "--state-dir",
            str(reviewed.state.root),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.5)  # let it start and read what is pending
        agent = person(reviewed, tmp_path, "ci-agent", "agents")
        client = held(agent, "uname -p")
        request_id = wait_until(lambda: pending(reviewed, "uname -p"), 20)
        assert request_id
        lines: list[str] = []
        reader = threading.Thread(
            target=lambda: lines.extend(
                line for line in iter(watch.stdout.readline, "") if "uname -p" in line
            ),
            daemon=True,
        )
        reader.start()
        assert wait_until(lambda: lines, 20), "watch printed nothing"
        assert lines[0].startswith(f"request {request_id} pending: ci-agent on {DEST}")
        assert (
            remote(
                person(reviewed, tmp_path, "alice", "reviewers"), "deny", str(request_id)
            ).returncode
            == 0
        )
        client.communicate(timeout=30)
    finally:
        watch.terminate()
        watch.wait(timeout=10)


def test_ctrl_c_in_a_shell_cancels_the_held_line(reviewed: BastionProcess, tmp_path: Path) -> None:
    agent = person(reviewed, tmp_path, "ci-agent", "agents")
    shell = PtyProcess(agent.ssh("-tt", "-J", "bastion", DEST))
    try:
        shell.expect(b"$ ")
        shell.send(b"uname -s\r")
        seen = shell.expect(b"held for review as request ")
        request_id = wait_until(lambda: pending(reviewed, "uname -s"), 20)
        assert request_id and f"request {request_id}".encode() in seen + shell.expect(b"approve")
        shell.send(b"\x03")
        shell.expect(f"request {request_id} cancelled".encode())
        row = finished(reviewed, request_id, 10)
        assert row and row["state"] == "cancelled"
        assert row["reason"] == "cancelled by the agent (Ctrl-C)"
        shell.send(b"echo still-$((40+2))\r")  # the shell is still usable
        shell.expect(b"still-42")
        shell.send(b"exit\r")
        assert shell.wait() == 0
    finally:
        shell.kill()


def test_pending_requests_survive_a_restart_and_expire_without_their_session(
    tmp_path: Path, test_login: str, target_sshd: LocalSshd
) -> None:
    state = make_state(tmp_path / "state")
    with state_store(state) as store:
        store.add_target(
            Target("web1", "127.0.0.1", target_sshd.port, host_key=target_sshd.host_key_pub)
        )
    # The session fixtures' target trusts the session state's target CA, not this one:
    # the command is held before any upstream login, which is all this test needs.
    first = start_bastion(state)
    agent = make_agent(tmp_path / "agent", state, first.port)
    client = held(agent, "uname -s")
    try:
        request_id = wait_until(lambda: pending(first, "uname -s"), 20)
        assert request_id
        first.stop(signal.SIGKILL)  # a crash: nothing gets to cancel the request
        client.communicate(timeout=30)
        assert request(first, request_id)["state"] == "pending"
        second = start_bastion(state, port=first.port)
        try:
            row = finished(second, request_id, 40)
            assert row and row["state"] == "expired"
            assert row["reason"] == "the held session is gone"
        finally:
            second.stop()
    finally:
        client.kill()
        first.stop()
