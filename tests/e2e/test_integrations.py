"""The tools agents really use, end to end through the bastion to a real sshd.

OpenSSH ssh, scp (SFTP and legacy protocol), sftp batches, rsync, git over
ssh, Ansible (ping, command, copy), paramiko, Fabric and asyncssh. Each test
checks behaviour (the file arrived, the module ran, the output is right),
that the ordinary run raised no alert, and leaves in the audit table the
commands the tool sent, which `test_every_integration_left_its_commands`
prints (pytest -s) for whoever tunes the command rules for them.

This bastion's policy is explicit: not the default pack (whose decisions on
these commands are tested elsewhere), only a rule that a credential read is
denied, so every tool also shows what a denial looks like to it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncssh
import pytest
from harness import (
    TARGET_NAME,
    Agent,
    BastionProcess,
    bastion_with_target,
    make_agent,
    state_store,
    wait_until,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "paramiko_through_bastion.py"

POLICY = """
[[rule]]
name = "integration-no-shadow"
action = "deny"
message = "credential reads are denied in the integration tests"
program = ["cat"]
args = ["/etc/shadow"]
"""
TOOLS = ("ssh", "scp", "sftp", "rsync", "git", "ansible", "paramiko", "fabric", "asyncssh")


@pytest.fixture(scope="module")
def bastion(tmp_path_factory: pytest.TempPathFactory, test_login: str) -> Iterator[BastionProcess]:
    def only_our_policy(text: str) -> str:
        return text.replace(
            'policy = ["default", "test-policy.toml"]', 'policy = ["integrations.toml"]'
        )

    with bastion_with_target(
        tmp_path_factory.mktemp("integrations"),
        test_login,
        edit=only_our_policy,
        files={"integrations.toml": POLICY},
    ) as process:
        yield process


@pytest.fixture(scope="module")
def agents(bastion: BastionProcess, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Agent]:
    root = tmp_path_factory.mktemp("integration-agents")
    return {
        tool: make_agent(root / tool, bastion.state, bastion.port, identity=f"tool-{tool}")
        for tool in TOOLS
    }


@pytest.fixture
def target_dir(test_login: str) -> Iterator[Path]:
    """A directory on the target (this machine) that the target login owns.

    Outside pytest's own temporary root, which only root may enter."""
    path = Path(tempfile.mkdtemp(prefix="bastion-integration-", dir="/tmp"))
    os.chmod(path, 0o755)
    shutil.chown(path, test_login, test_login)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _rows(bastion: BastionProcess, identity: str):
    with state_store(bastion.state) as store:
        return [r for r in store.list_audit(limit=100000) if r.identity == identity]


def _alerts(bastion: BastionProcess, identity: str) -> list:
    with state_store(bastion.state) as store:
        return store.list_alerts(identity=identity)


def _no_alerts(bastion: BastionProcess, tool: str) -> None:
    time.sleep(0.5)  # alerts are raised as audit rows are queued; give them time to land
    assert _alerts(bastion, f"tool-{tool}") == []


def _ssh_command(agent: Agent) -> str:
    return f"ssh -F {agent.config} -J bastion"


def _dest(login: str) -> str:
    return f"{login}@{TARGET_NAME}"


def test_openssh_exec_and_denial(bastion, agents, test_login) -> None:
    agent = agents["ssh"]
    result = agent.run("-J", "bastion", _dest(test_login), "echo via-ssh; id -un")
    assert result.returncode == 0 and result.stdout == f"via-ssh\n{test_login}\n".encode()
    denied = agent.run("-J", "bastion", _dest(test_login), "cat /etc/shadow")
    assert denied.returncode == 126
    assert b"credential reads are denied in the integration tests" in denied.stderr


def test_a_denial_without_a_terminal_ends_in_a_plain_newline(bastion, agents, test_login) -> None:
    denied = agents["ssh"].run("-J", "bastion", _dest(test_login), "cat /etc/shadow")
    assert denied.returncode == 126
    assert denied.stderr.endswith(b"integration tests\n") and not denied.stderr.endswith(b"\r\n")


@pytest.mark.parametrize("legacy", [False, True], ids=["sftp-protocol", "scp-protocol"])
def test_scp_both_ways(bastion, agents, test_login, target_dir, tmp_path, legacy) -> None:
    agent = agents["scp"]
    payload = os.urandom(300_000)  # binary: a masker would corrupt it
    local = tmp_path / "up.bin"
    local.write_bytes(payload)
    options = ["-O"] if legacy else []
    up = subprocess.run(
        [
            "scp",
            *options,
            "-F",
            str(agent.config),
            "-J",
            "bastion",
            str(local),
            f"{_dest(test_login)}:{target_dir}/up.bin",
        ],
        capture_output=True,
        timeout=60,
    )
    assert up.returncode == 0, up.stderr
    assert (target_dir / "up.bin").read_bytes() == payload
    down = subprocess.run(
        [
            "scp",
            *options,
            "-F",
            str(agent.config),
            "-J",
            "bastion",
            f"{_dest(test_login)}:{target_dir}/up.bin",
            str(tmp_path / "down.bin"),
        ],
        capture_output=True,
        timeout=60,
    )
    assert down.returncode == 0, down.stderr
    assert (tmp_path / "down.bin").read_bytes() == payload
    _no_alerts(bastion, "scp")
    if legacy:
        kinds = {r.kind for r in _rows(bastion, "tool-scp")}
        assert "masking-off" in kinds or "transfer" in kinds  # named in the audit, not alerted


def test_sftp_batch_of_many_files(bastion, agents, test_login, target_dir, tmp_path) -> None:
    agent = agents["sftp"]
    for n in range(60):
        (tmp_path / f"f{n:02d}.txt").write_text(f"file {n}\n")
    batch = tmp_path / "batch"
    lines = [f"mkdir {target_dir}/batch", f"cd {target_dir}/batch"]
    lines += [f"put {tmp_path}/f{n:02d}.txt" for n in range(60)]
    lines += ["ls", f"get f07.txt {tmp_path}/back.txt", "rm f00.txt"]
    batch.write_text("\n".join(lines) + "\n")
    result = subprocess.run(
        ["sftp", "-F", str(agent.config), "-J", "bastion", "-b", str(batch), _dest(test_login)],
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "back.txt").read_text() == "file 7\n"
    assert len(list((target_dir / "batch").iterdir())) == 59
    _no_alerts(bastion, "sftp")


def test_rsync_both_ways(bastion, agents, test_login, target_dir, tmp_path) -> None:
    agent = agents["rsync"]
    source = tmp_path / "tree"
    (source / "sub").mkdir(parents=True)
    for n in range(20):
        (source / "sub" / f"{n}.bin").write_bytes(os.urandom(5000 + n))
    shell = _ssh_command(agent)
    up = subprocess.run(
        ["rsync", "-a", "-e", shell, f"{source}/", f"{_dest(test_login)}:{target_dir}/tree/"],
        capture_output=True,
        timeout=120,
    )
    assert up.returncode == 0, up.stderr
    back = tmp_path / "back"
    down = subprocess.run(
        ["rsync", "-a", "-e", shell, f"{_dest(test_login)}:{target_dir}/tree/", f"{back}/"],
        capture_output=True,
        timeout=120,
    )
    assert down.returncode == 0, down.stderr
    for n in range(20):
        assert (back / "sub" / f"{n}.bin").read_bytes() == (
            source / "sub" / f"{n}.bin"
        ).read_bytes()
    _no_alerts(bastion, "rsync")


def test_git_clone_and_push(bastion, agents, test_login, target_dir, tmp_path) -> None:
    agent = agents["git"]
    repo = target_dir / "repo.git"
    subprocess.run(["git", "init", "-q", "--bare", str(repo)], check=True)
    subprocess.run(["chown", "-R", f"{test_login}:{test_login}", str(repo)], check=True)
    env = dict(os.environ, GIT_SSH_COMMAND=_ssh_command(agent))
    git = [
        "git",
        "-c",
        "user.email=agent@example.com",
        "-c",
        "user.name=agent",
        "-c",
        "init.defaultBranch=main",
        "-c",
        f"safe.directory={repo}",
    ]
    clone = tmp_path / "clone"
    subprocess.run(
        [*git, "clone", "-q", f"{_dest(test_login)}:{repo}", str(clone)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (clone / "README").write_text("through the bastion\n")
    subprocess.run([*git, "-C", str(clone), "add", "README"], check=True)
    subprocess.run([*git, "-C", str(clone), "commit", "-q", "-m", "first"], check=True)
    push = subprocess.run(
        [*git, "-C", str(clone), "push", "-q", "origin", "HEAD:main"],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert push.returncode == 0, push.stderr
    again = tmp_path / "again"
    subprocess.run(
        [*git, "clone", "-q", "-b", "main", f"{_dest(test_login)}:{repo}", str(again)],
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert (again / "README").read_text() == "through the bastion\n"
    _no_alerts(bastion, "git")


def test_ansible_ping_command_and_copy(bastion, agents, test_login, target_dir, tmp_path) -> None:
    agent = agents["ansible"]
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"{TARGET_NAME} ansible_user={test_login} ansible_python_interpreter=/usr/bin/python3\n"
    )
    source = tmp_path / "motd"
    source.write_text("copied by ansible through the bastion\n")
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(tmp_path / "none.cfg"),
        ANSIBLE_HOME=str(tmp_path / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-local"),
        ANSIBLE_SSH_ARGS=f"-F {agent.config} -J bastion -o ControlMaster=auto -o ControlPersist=5s",
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(tmp_path / "cp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
    )
    ansible = str(Path(sys.executable).parent / "ansible")

    def run(*args: str) -> str:
        result = subprocess.run(
            [ansible, TARGET_NAME, "-i", str(inventory), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,  # ansible refuses a non-blocking stdin
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    assert '"ping": "pong"' in run("-m", "ping")
    assert "via-ansible" in run("-m", "command", "-a", "echo via-ansible")
    run("-m", "copy", "-a", f"src={source} dest={target_dir}/motd mode=0644")
    assert (target_dir / "motd").read_text() == source.read_text()
    _no_alerts(bastion, "ansible")


def test_paramiko_through_the_bastion(bastion, agents, test_login) -> None:
    agent = agents["paramiko"]
    host_key = bastion.state.keys / "host_key.pub"
    argv = [
        "--bastion",
        f"127.0.0.1:{bastion.port}",
        "--key",
        str(agent.key),
        "--host-key",
        str(host_key),
        _dest(test_login),
    ]
    status, out, err = _example(argv + ["echo via-paramiko"])
    assert (status, out) == (0, b"via-paramiko\n"), err
    status, _, err = _example(argv + ["cat /etc/shadow"])
    assert status == 126 and b"denied by rule integration-no-shadow" in err


def test_fabric_through_the_bastion(bastion, agents, test_login) -> None:
    agent = agents["fabric"]
    host_key = bastion.state.keys / "host_key.pub"
    argv = [
        "--fabric",
        "--bastion",
        f"127.0.0.1:{bastion.port}",
        "--key",
        str(agent.key),
        "--host-key",
        str(host_key),
        _dest(test_login),
        "echo via-fabric; uname -s",
    ]
    status, out, err = _example(argv)
    assert (status, out) == (0, b"via-fabric\nLinux\n"), err


def test_paramiko_refuses_a_bastion_it_does_not_know(bastion, agents, test_login, tmp_path) -> None:
    other = tmp_path / "other.pub"
    other.write_bytes(asyncssh.generate_private_key("ssh-ed25519").export_public_key())
    status, _, err = _example(
        [
            "--bastion",
            f"127.0.0.1:{bastion.port}",
            "--key",
            str(agents["paramiko"].key),
            "--host-key",
            str(other),
            _dest(test_login),
            "true",
        ]
    )
    assert status == 255 and b"does not match" in err and b"Traceback" not in err


def _example(argv: list[str]) -> tuple[int, bytes, bytes]:
    """The documented example, run as its docstring says: a script."""
    result = subprocess.run([sys.executable, str(EXAMPLE), *argv], capture_output=True, timeout=60)
    return result.returncode, result.stdout, result.stderr


def test_asyncssh_through_the_bastion(bastion, agents, test_login) -> None:
    agent = agents["asyncssh"]

    async def go() -> asyncssh.SSHCompletedProcess:
        key = asyncssh.read_private_key(agent.key)
        cert = asyncssh.read_certificate(str(agent.key) + "-cert.pub")
        known = str(agent.dir / "known_hosts")  # the @cert-authority line: asyncssh reads it
        options = {
            "client_keys": [(key, cert)],
            "known_hosts": known,
            "agent_path": None,
            "config": None,
        }
        async with asyncssh.connect("127.0.0.1", bastion.port, username="agent", **options) as jump:
            async with asyncssh.connect(
                TARGET_NAME, tunnel=jump, username=test_login, **options
            ) as conn:
                return await conn.run("echo via-asyncssh", check=False, timeout=30)

    result = asyncio.run(go())
    assert result.exit_status == 0 and result.stdout == "via-asyncssh\n"
    _no_alerts(bastion, "asyncssh")


def test_every_integration_left_its_commands(bastion) -> None:
    """What each tool sent, as the audit recorded it (printed with pytest -s)."""
    seen = wait_until(lambda: all(_rows(bastion, f"tool-{t}") for t in TOOLS), 10)
    for tool in TOOLS:
        rows = _rows(bastion, f"tool-{tool}")
        print(f"\n== {tool}: {len(rows)} audit rows")
        for row in rows:
            if row.kind in ("exec", "sftp", "subsystem", "line", "masking-off", "transfer"):
                print(f"   {row.kind:<12} {row.decision or '-':<6} {(row.command or '')[:150]}")
    assert seen, {t: len(_rows(bastion, f"tool-{t}")) for t in TOOLS}
