"""Helpers the fixtures and tests share: bastion processes and agents' ssh files."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from bastion.identity.authorities import Authorities
from bastion.identity.issuing import sign_user_certificate
from bastion.localsshd import free_port, start_sshd, wait_for_ssh
from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.store import BlockingStore, open_store
from bastion.targets import Target

TEST_LOGIN = "bastiontest"
TARGET_NAME = "web1"


@dataclass
class BastionProcess:
    state: StateDir
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


TEST_POLICY = """
# Test-only rule: the shell signals itself ($$ is a pid the engine cannot know), to prove
# the exit signal is relayed; an allow rule lets that one line pass.
[[rule]]
name = "allow-self-signal"
action = "allow"
message = "the exit-signal test"
line = ["kill -TERM $$"]

# Test-only rule: a harmless command held for review, with a short timeout.
[[rule]]
name = "hold-hostname"
action = "review"
message = "hostname is held for review in tests"
program = ["hostname"]
timeout = "2s"

[[rule]]
name = "alert-uptime"
action = "alert"
message = "uptime raises an alert in tests"
program = ["uptime"]

[[rule]]
name = "end-on-tac"
action = "deny"
message = "tac ends the session in tests"
program = ["tac"]
end_session = true

[[rule]]
name = "hold-uname"
action = "review"
message = "uname is held for review in tests"
program = ["uname"]
timeout = "60s"

[[rule]]
name = "hold-sftp-mkdir"
action = "review"
message = "this directory is held for review in tests"
program = ["mkdir"]
args = ["*held-by-review*"]
timeout = "60s"
"""


def make_state(root: Path) -> StateDir:
    state = StateDir(root)
    initialise(state)
    text = state.config_file.read_text().replace(
        'host_names = ["localhost", "127.0.0.1"]',
        'host_names = ["bastion", "localhost", "127.0.0.1"]',
    )
    text = text.replace('policy = ["default"]', 'policy = ["default", "test-policy.toml"]')
    state.config_file.write_text(text)
    (state.root / "test-policy.toml").write_text(TEST_POLICY)
    return state


@contextmanager
def state_store(state: StateDir) -> Iterator[BlockingStore]:
    """The state dir's store (as its bastion.toml says), opened for a test's checks."""
    from bastion.config import load_config

    url = state.store_url(load_config(state.config_file).store.url)
    with BlockingStore(open_store(url, node="test")) as store:
        yield store


def start_bastion(
    state: StateDir,
    port: int | None = None,
    *,
    node: str | None = None,
    args: tuple[str, ...] = (),
) -> BastionProcess:
    """A `bastion serve` on 127.0.0.1:PORT; its node is named after the port unless given
    (bastions started on one state dir at once are different nodes)."""
    port = port or free_port()
    log_path = state.root / f"serve-{port}.log"
    log = log_path.open("ab")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bastion",
            "serve",
            "--state-dir",
            str(state.root),
            "--listen",
            f"127.0.0.1:{port}",
            "--log-level",
            "debug",
            "--node",
            node or f"test-{port}",
            *args,
        ],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    if not wait_for_ssh(port, timeout=15, process=process):
        process.kill()
        raise RuntimeError(
            "bastion did not start:\n" + log_path.read_text(errors="replace")
        ) from None
    return BastionProcess(state, port, process, log_path)


@contextmanager
def bastion_with_target(
    root: Path,
    login: str,
    *,
    config: str = "",
    files: dict[str, str] | None = None,
    edit: Callable[[str], str] | None = None,
    targets: tuple[str, ...] = (TARGET_NAME,),
    serve_args: tuple[str, ...] = (),
) -> Iterator[BastionProcess]:
    """A bastion of its own (extra bastion.toml text, files beside it) and a real sshd
    registered under each of `targets`; both stop when the block ends."""
    state = make_state(root / "state")
    text = state.config_file.read_text()
    state.config_file.write_text((edit(text) if edit else text) + config)
    for name, content in (files or {}).items():
        with (state.root / name).open("a") as handle:
            handle.write(content)
    sshd = start_sshd(
        root / "sshd", trusted_user_ca=(state.keys / "target_ca.pub").read_text(), allow_user=login
    )
    try:
        with state_store(state) as store:
            for name in targets:
                store.add_target(Target(name, "127.0.0.1", sshd.port, host_key=sshd.host_key_pub))
        bastion = start_bastion(state, args=serve_args)
        try:
            yield bastion
        finally:
            bastion.stop()
    finally:
        sshd.stop()


@dataclass
class Agent:
    """An agent's files: key, certificate, known_hosts, and an ssh_config using them."""

    dir: Path
    config: Path
    key: Path

    def ssh(self, *args: str) -> list[str]:
        return ["ssh", "-F", str(self.config), *args]

    def run(
        self, *args: str, input: bytes | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(self.ssh(*args), input=input, capture_output=True, timeout=timeout)


def make_agent(
    directory: Path,
    state: StateDir,
    bastion_port: int,
    *,
    identity: str = "test-agent",
    principals: tuple[str, ...] = (TEST_LOGIN,),
    groups: tuple[str, ...] = (),
    ttl: int = 3 * 3600,  # the session-scoped agent must outlive the whole suite (18 min here)
    cert: bytes | None = None,
) -> Agent:
    directory.mkdir(parents=True, exist_ok=True)
    key_path = directory / "id_ed25519"
    if not key_path.exists():
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_path)], check=True
        )
    cert_path = directory / "id_ed25519-cert.pub"
    if cert is None:
        certificate, record = sign_user_certificate(
            Authorities(state.keys),
            asyncssh.read_public_key(str(key_path) + ".pub"),
            identity=identity,
            principals=list(principals),
            groups=list(groups),
            ttl=ttl,
            source="test",
        )
        with state_store(state) as store:
            store.record_certificate(record)
        cert = certificate.export_certificate()
    cert_path.write_bytes(cert)
    host_ca = (state.keys / "host_ca.pub").read_text().strip()
    known_hosts = directory / "known_hosts"
    known_hosts.write_text(f"@cert-authority * {host_ca}\n")
    config = directory / "ssh_config"
    config.write_text(
        f"""Host bastion
  HostName 127.0.0.1
  Port {bastion_port}
  User {identity}

Host *
  IdentityFile {key_path}
  CertificateFile {cert_path}
  IdentitiesOnly yes
  IdentityAgent none
  UserKnownHostsFile {known_hosts}
  GlobalKnownHostsFile /dev/null
  StrictHostKeyChecking yes
  BatchMode yes
  LogLevel INFO
  ConnectTimeout 15
  ServerAliveInterval 0
"""
    )
    return Agent(directory, config, key_path)


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05):
    """Poll `predicate` until it returns something truthy; state writes are asynchronous."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def bastion_cli(bastion: BastionProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """`bastion ARGS --state-dir` on this bastion's state, as an operator on its host runs it."""
    return subprocess.run(
        [sys.executable, "-m", "bastion", *args, "--state-dir", str(bastion.state.root)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def recording_row(state: StateDir, session_id: str, timeout: float = 10.0):
    """The store's record of a session's recording (written asynchronously: waited for)."""

    def lookup():
        with state_store(state) as store:
            return store.get_recording(session_id)

    return wait_until(lookup, timeout)


def recording_path(state: StateDir, session_id: str) -> Path:
    """Where the local store keeps a session's recording (its location is a path)."""
    row = recording_row(state, session_id)
    assert row is not None and row.location, f"no recording row for session {session_id}"
    return Path(row.location)


def audit_rows(state: StateDir):
    with state_store(state) as store:
        return store.list_audit()


def token_login(bastion: BastionProcess, token: str, out: Path) -> subprocess.CompletedProcess[str]:
    """`bastion login --token-file` against this bastion, writing into `out`."""
    token_file = out.parent / f"{out.name}.token"
    token_file.write_text(token)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "bastion",
            "login",
            "--bastion",
            f"127.0.0.1:{bastion.port}",
            "--token-file",
            str(token_file),
            "--out",
            str(out),
            "--host-ca",
            str(bastion.state.keys / "host_ca.pub"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
