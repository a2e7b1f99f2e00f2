"""Two bastion nodes on one PostgreSQL store behind a real haproxy (mode tcp, send-proxy-v2).

The agent and the reviewer are real OpenSSH clients. haproxy reaches the
nodes from 127.0.0.2 and sends PROXY v2 headers; the agent connects from
127.0.0.1, so a session that records 127.0.0.1 got the agent's address
from the header, not the balancer's.
"""

from __future__ import annotations

import shlex
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from haproxy import Haproxy, available, start_haproxy
from harness import (
    TEST_LOGIN,
    Agent,
    BastionProcess,
    audit_rows,
    make_agent,
    make_state,
    start_bastion,
    state_store,
    wait_until,
)
from postgres import PostgresServer

from bastion.localsshd import free_port, start_sshd
from bastion.statedir import StateDir
from bastion.targets import Target

DEST = f"{TEST_LOGIN}@web1"
ROLES = """
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


@dataclass
class Cluster:
    state: StateDir
    nodes: dict[str, BastionProcess]
    balancer: Haproxy
    agent: Agent
    reviewer: Agent

    def node_of_session(self, predicate, timeout: float = 20.0) -> str:
        def find() -> str | None:
            with state_store(self.state) as store:
                found = [s for s in store.list_sessions() if predicate(s)]
            return found[-1].node if found else None

        node = wait_until(find, timeout)
        assert node in self.nodes, node
        return node

    def other(self, node: str) -> str:
        return next(name for name in self.nodes if name != node)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, test_login: str, postgres_server: PostgresServer):
    reason = available()
    if reason is not None:
        pytest.fail(reason)
    root = tmp_path_factory.mktemp("two-nodes")
    state = make_state(root / "state")
    url = postgres_server.new_database("nodes")
    text = state.config_file.read_text()
    text = text.replace("[store]\n", f'[store]\nurl = "{url}"\n', 1)
    text = text.replace("[server]\n", '[server]\nproxy_protocol = ["127.0.0.2"]\n', 1)
    state.config_file.write_text(text + ROLES.format(login=test_login))
    sshd = start_sshd(
        root / "sshd",
        trusted_user_ca=(state.keys / "target_ca.pub").read_text(),
        allow_user=test_login,
    )
    with state_store(state) as store:
        store.add_target(Target("web1", "127.0.0.1", sshd.port, host_key=sshd.host_key_pub))
    ports = [free_port(), free_port()]
    nodes = {
        f"node-{i}": start_bastion(state, port, node=f"node-{i}") for i, port in enumerate(ports)
    }
    balancer = start_haproxy(root / "haproxy", ports)
    agent = make_agent(root / "agent", state, balancer.port, groups=("agents",))
    reviewer = make_agent(
        root / "reviewer", state, balancer.port, identity="rita", groups=("reviewers",)
    )
    yield Cluster(state, nodes, balancer, agent, reviewer)
    balancer.stop()
    for node in nodes.values():
        node.stop()
    sshd.stop()


def test_both_nodes_serve_through_the_balancer_and_keep_the_agents_address(
    cluster: Cluster,
) -> None:
    for n in range(4):
        result = cluster.agent.run("-J", "bastion", DEST, f"echo via-balancer-{n}")
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"via-balancer-{n}\n".encode()
    with state_store(cluster.state) as store:
        sessions = [s for s in store.list_sessions() if (s.command or "").startswith("echo via-")]
    assert {s.node for s in sessions} == set(cluster.nodes)  # round robin: both served
    assert all(s.peer and s.peer.startswith("127.0.0.1:") for s in sessions), sessions


def test_a_command_held_on_one_node_is_released_by_an_approval_on_the_other(
    cluster: Cluster,
) -> None:
    command = "uname -s"
    client = subprocess.Popen(
        cluster.agent.ssh("-J", "bastion", DEST, command),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:

        def pending():
            with state_store(cluster.state) as store:
                found = [r for r in store.list_requests() if r.command == command]
            return found[-1] if found else None

        request = wait_until(pending, 20)
        assert request is not None and request.node in cluster.nodes
        other = cluster.nodes[cluster.other(request.node)]
        approve = cluster.reviewer.ssh(
            "-p", str(other.port), "bastion", shlex.join(["approve", str(request.id)])
        )
        done = subprocess.run(approve, capture_output=True, timeout=60)
        decided = time.monotonic()
        assert done.returncode == 0, done.stderr
        assert f"request {request.id} approved".encode() in done.stdout
        line = client.stdout.readline()  # type: ignore[union-attr]
        released = time.monotonic() - decided
        assert line == b"Linux\n"
        assert released < 1.0, f"released {released:.3f}s after the approval on the other node"
        client.communicate(timeout=30)
        assert client.returncode == 0
    finally:
        client.kill()


def test_a_revocation_closes_a_live_connection_on_the_other_node_within_a_second(
    cluster: Cluster, tmp_path: Path
) -> None:
    victim = make_agent(
        tmp_path / "victim",
        cluster.state,
        cluster.balancer.port,
        identity="victim",
        groups=("agents",),
    )
    client = subprocess.Popen(
        victim.ssh("-J", "bastion", DEST, "echo started; sleep 60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert client.stdout.readline() == b"started\n"  # type: ignore[union-attr]
        node = cluster.node_of_session(lambda s: s.identity == "victim")
        with state_store(cluster.state) as store:
            serial = next(c.serial for c in store.list_certificates() if c.identity == "victim")
            store.revoke_serial(serial, by="test")  # a write on neither node: the shared store
            revoked = time.monotonic()
        client.wait(timeout=10)
        closed = time.monotonic() - revoked
        assert closed < 1.0, f"node {node} closed the connection {closed:.3f}s after the revocation"
        assert wait_until(
            lambda: [
                r
                for r in audit_rows(cluster.state)
                if r.kind == "revoked" and r.identity == "victim"
            ]
        )
        again = victim.run("-J", "bastion", DEST, "true")
        assert again.returncode != 0 and b"is revoked" in again.stderr
    finally:
        client.kill()


def test_a_node_killed_mid_session_leaves_the_other_serving_and_ends_its_session_on_restart(
    cluster: Cluster, tmp_path: Path
) -> None:
    client = subprocess.Popen(
        cluster.agent.ssh("-J", "bastion", DEST, "echo long-running; sleep 60"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert client.stdout.readline() == b"long-running\n"  # type: ignore[union-attr]
        name = cluster.node_of_session(lambda s: s.command == "echo long-running; sleep 60")
        victim = cluster.nodes[name]
        victim.stop(signal.SIGKILL)
        client.wait(timeout=30)
        for n in range(6):  # every new connection lands on the survivor
            result = cluster.agent.run("-J", "bastion", DEST, f"echo after-kill-{n}")
            assert result.returncode == 0, result.stderr
        with state_store(cluster.state) as store:
            served = {
                s.node
                for s in store.list_sessions()
                if (s.command or "").startswith("echo after-kill-")
            }
            cut = next(
                s for s in store.list_sessions() if s.command == "echo long-running; sleep 60"
            )
        assert served == {cluster.other(name)}
        assert cut.ended is None  # nobody has ended it yet...
        cluster.nodes[name] = start_bastion(cluster.state, victim.port, node=name)
        with state_store(cluster.state) as store:
            ended = store.get_session(cut.id)
        assert ended.ended is not None and ended.error == "ended: bastion restart"
        with state_store(cluster.state) as store:
            assert store.verify_chain().intact
    finally:
        client.kill()
