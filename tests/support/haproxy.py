"""A real haproxy (Debian's 2.6) in `mode tcp` in front of bastion nodes, on 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bastion.localsshd import free_port, wait_for_ssh

CONFIG = """\
global
    maxconn 4096
defaults
    mode tcp
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    option redispatch
    retries 2
frontend ssh
    bind 127.0.0.1:{port}
    default_backend nodes
backend nodes
    balance {balance}
{servers}
"""


@dataclass
class Haproxy:
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def available() -> str | None:
    return None if shutil.which("haproxy") else "haproxy missing: apt-get install haproxy"


def start_haproxy(
    directory: Path,
    backends: list[int],
    *,
    source: str = "127.0.0.2",
    balance: str = "roundrobin",
    proxy: bool = True,
) -> Haproxy:
    """Balance over the bastions on `backends` ports, connecting to them from `source`
    (another loopback address, so a node tells the balancer from the agent) and sending
    PROXY v2 headers unless `proxy` is False."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    extra = " send-proxy-v2" if proxy else ""
    servers = "\n".join(
        f"    server n{i} 127.0.0.1:{p} source {source} check inter 200ms fall 1 rise 2{extra}"
        for i, p in enumerate(backends)
    )
    config = directory / "haproxy.cfg"
    config.write_text(CONFIG.format(port=port, balance=balance, servers=servers))
    log = directory / "haproxy.log"
    process = subprocess.Popen(
        ["haproxy", "-db", "-f", str(config)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    if not wait_for_ssh(port, timeout=15, process=process):
        process.kill()
        raise RuntimeError("haproxy did not start:\n" + log.read_text(errors="replace"))
    time.sleep(0.5)  # the first health checks mark the nodes up
    return Haproxy(port, process, log)
