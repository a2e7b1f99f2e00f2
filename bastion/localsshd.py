"""A real OpenSSH sshd on 127.0.0.1, for the demo and the test fixtures.

It trusts the bastion's target CA (TrustedUserCAKeys) and nothing else:
no passwords, no authorized_keys, no PAM. Run as root it logs in an
unprivileged account; run as another user it can only log in that user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from bastion.errors import BastionError

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd")


def find_sshd() -> str | None:
    for path in SSHD_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("sshd")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_ssh(
    port: int, *, timeout: float, process: subprocess.Popen[bytes] | None = None
) -> bool:
    """True once something on 127.0.0.1:port greets with an SSH banner."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                if sock.recv(4).startswith(b"SSH-"):
                    return True
        except OSError:
            time.sleep(0.05)
    return False


def ensure_unprivileged_user(name: str) -> str:
    """Create `name` (no sudo, password field `*` so sshd without PAM accepts it)."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(
            ["useradd", "--create-home", "--shell", "/bin/bash", name],
            check=True,
            capture_output=True,
        )
    subprocess.run(["usermod", "-p", "*", name], check=True, capture_output=True)
    return name


@dataclass
class LocalSshd:
    port: int
    host_key_pub: str
    workdir: Path
    process: subprocess.Popen[bytes]

    @property
    def log_path(self) -> Path:
        return self.workdir / "sshd.log"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def start_sshd(
    workdir: Path,
    *,
    trusted_user_ca: str,
    allow_user: str,
    port: int | None = None,
    host_ca: asyncssh.SSHKey | None = None,
) -> LocalSshd:
    """Start sshd; with `host_ca`, its host key is certified for 127.0.0.1 by that CA."""
    sshd = find_sshd()
    if sshd is None:
        raise BastionError("no sshd found (install openssh-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    host_key = workdir / "ssh_host_ed25519_key"
    if not host_key.exists():
        key = asyncssh.generate_private_key("ssh-ed25519", comment="bastion-test-target")
        key.write_private_key(host_key)
        key.write_public_key(str(host_key) + ".pub")
        os.chmod(host_key, 0o600)
    ca_file = workdir / "trusted_user_ca.pub"
    ca_file.write_text(trusted_user_ca.strip() + "\n")
    os.chmod(ca_file, 0o644)
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    port = port or free_port()
    extra = []
    if host_ca is not None:
        cert = host_ca.generate_host_certificate(
            asyncssh.read_private_key(host_key), "test-target", principals=["127.0.0.1"]
        )
        cert_path = workdir / "ssh_host_ed25519_key-cert.pub"
        cert.write_certificate(cert_path)
        extra.append(f"HostCertificate {cert_path}")
    config = workdir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                f"ListenAddress 127.0.0.1:{port}",
                f"HostKey {host_key}",
                *extra,
                f"TrustedUserCAKeys {ca_file}",
                "AuthorizedKeysFile none",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                f"AllowUsers {allow_user}",
                "PermitRootLogin no",
                f"PidFile {workdir / 'sshd.pid'}",
                "StrictModes no",
                # As broad as a careless target: the bastion, not sshd, must filter.
                "AcceptEnv *",
                "Subsystem sftp internal-sftp",
                "LogLevel VERBOSE",
                "MaxStartups 200:30:300",
                "MaxSessions 100",
                "X11Forwarding no",
                "AllowAgentForwarding no",
                "",
            ]
        )
    )
    log = (workdir / "sshd.log").open("ab")
    process = subprocess.Popen(
        [sshd, "-D", "-e", "-f", str(config)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    if not wait_for_ssh(port, timeout=10, process=process):
        process.kill()
        log_text = (workdir / "sshd.log").read_text(errors="replace")[-500:]
        raise BastionError(f"sshd did not start on 127.0.0.1:{port}: {log_text}")
    host_key_pub = Path(str(host_key) + ".pub").read_text().strip()
    return LocalSshd(port=port, host_key_pub=host_key_pub, workdir=workdir, process=process)
