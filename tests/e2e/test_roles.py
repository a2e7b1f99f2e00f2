"""Roles decide who reaches which target, as which login, with or without a shell, and which forwards."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from harness import (
    TEST_LOGIN,
    BastionProcess,
    bastion_with_target,
    make_agent,
)

ROLES = """
[[role]]
name = "statusbots"
match = {{ groups = ["statusbots"] }}
targets = ["web1"]
logins = ["{login}"]
policy = ["status-only.toml"]
default_action = "deny"                  # an allow-list role: only what status-only.toml allows

[[role]]
name = "deployers"
match = {{ groups = ["deployers"] }}
targets = ["web1"]
logins = ["{login}"]
shell = false
forward = ["127.0.0.1:{echo_port}"]
"""


@pytest.fixture(scope="module")
def echo_port() -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(60)

    def serve() -> None:
        for _ in range(8):
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.sendall(conn.recv(1024).upper())

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.fixture(scope="module")
def roles_bastion(tmp_path_factory: pytest.TempPathFactory, test_login: str, echo_port: int):
    with bastion_with_target(
        tmp_path_factory.mktemp("roles"),
        test_login,
        config=ROLES.format(login=test_login, echo_port=echo_port),
        files={
            "status-only.toml": '[[rule]]\nname = "status-commands"\naction = "allow"\n'
            'message = "status"\nprogram = ["uptime", "df"]\n'
        },
        targets=("web1", "web2"),
    ) as bastion:
        yield bastion


def test_role_grants_exec_on_its_target(roles_bastion: BastionProcess, tmp_path: Path) -> None:
    agent = make_agent(tmp_path, roles_bastion.state, roles_bastion.port, groups=("deployers",))
    result = agent.run("-J", "bastion", f"{TEST_LOGIN}@web1", "echo granted")
    assert result.returncode == 0 and result.stdout == b"granted\n", result.stderr


def test_target_outside_the_role_is_refused(roles_bastion: BastionProcess, tmp_path: Path) -> None:
    agent = make_agent(tmp_path, roles_bastion.state, roles_bastion.port, groups=("deployers",))
    result = agent.run("-J", "bastion", f"{TEST_LOGIN}@web2", "echo should-not-run")
    assert result.returncode == 255
    assert b"target 'web2' is not allowed for your roles" in result.stderr


def test_login_outside_the_role_is_refused(roles_bastion: BastionProcess, tmp_path: Path) -> None:
    agent = make_agent(
        tmp_path,
        roles_bastion.state,
        roles_bastion.port,
        groups=("deployers",),
        principals=(TEST_LOGIN, "nobody"),
    )
    result = agent.run("-J", "bastion", "nobody@web1", "echo should-not-run")
    assert result.returncode == 255
    assert b"login 'nobody' on web1 is not allowed for your roles" in result.stderr


def test_shell_false_means_exec_only(roles_bastion: BastionProcess, tmp_path: Path) -> None:
    agent = make_agent(tmp_path, roles_bastion.state, roles_bastion.port, groups=("deployers",))
    result = agent.run("-tt", "-J", "bastion", f"{TEST_LOGIN}@web1", input=b"exit\n")
    assert result.returncode == 126
    assert b"denied by rule shell-not-allowed" in result.stdout + result.stderr
    # An exec with a terminal is a shell by another name (`less` then `!sh`).
    paged = agent.run("-tt", "-J", "bastion", f"{TEST_LOGIN}@web1", "less /etc/hostname")
    assert paged.returncode == 126
    assert b"denied by rule terminal-not-allowed" in paged.stdout + paged.stderr
    plain = agent.run("-J", "bastion", f"{TEST_LOGIN}@web1", "echo exec-still-works")
    assert plain.returncode == 0 and plain.stdout == b"exec-still-works\n", plain.stderr


def test_no_role_no_access(roles_bastion: BastionProcess, tmp_path: Path) -> None:
    agent = make_agent(tmp_path, roles_bastion.state, roles_bastion.port, groups=("interns",))
    result = agent.run("-J", "bastion", f"{TEST_LOGIN}@web1", "echo should-not-run")
    assert result.returncode == 255
    assert b"no role grants 'test-agent' access" in result.stderr


def test_forward_opened_by_a_role_and_others_closed(
    roles_bastion: BastionProcess, tmp_path: Path, echo_port: int
) -> None:
    agent = make_agent(tmp_path, roles_bastion.state, roles_bastion.port, groups=("deployers",))
    opened = agent.run("-W", f"127.0.0.1:{echo_port}", "bastion", input=b"hello\n")
    assert opened.stdout == b"HELLO\n", opened.stderr
    closed = agent.run("-W", "127.0.0.1:9", "bastion", input=b"hello\n")
    assert closed.returncode != 0 and b"unknown target '127.0.0.1'" in closed.stderr


def test_an_allow_list_role_runs_only_what_it_lists(
    roles_bastion: BastionProcess, tmp_path: Path
) -> None:
    agent = make_agent(tmp_path, roles_bastion.state, roles_bastion.port, groups=("statusbots",))
    listed = agent.run("-J", "bastion", f"{TEST_LOGIN}@web1", "uptime")
    assert listed.returncode == 0 and b"load average" in listed.stdout, listed.stderr
    other = agent.run("-J", "bastion", f"{TEST_LOGIN}@web1", "echo not-listed")
    assert other.returncode == 126 and other.stdout == b""
    assert b"denied by rule default-action: no rule allows this command" in other.stderr
    # The same identity with a broader role too: roles are a union of grants.
    both = make_agent(
        tmp_path / "both",
        roles_bastion.state,
        roles_bastion.port,
        groups=("statusbots", "deployers"),
    )
    result = both.run("-J", "bastion", f"{TEST_LOGIN}@web1", "echo listed-by-deployers")
    assert result.returncode == 0 and result.stdout == b"listed-by-deployers\n", result.stderr
