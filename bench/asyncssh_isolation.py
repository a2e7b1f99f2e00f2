"""asyncssh alone: CPU per MB of one SSH server sending bulk data, with and without our changes.

No relay, no rules, no recording: an asyncssh server whose exec writes
--megabytes of text to its channel, read by the stock OpenSSH client into
/dev/null on 127.0.0.1. For each variant the server's CPU time per MB is
measured (process CPU, so other load on the machine matters less than for
wall-clock rates), median of --rounds:

  stock          asyncssh.SSHServerConnection as shipped (IGNORE before every packet,
                 one socket write per packet)
  bastion        bastion.ssh.connection.BastionServerConnection (no IGNORE under AEAD,
                 one write per event-loop turn)
  ... on uvloop  the same two on uvloop's event loop, if installed

Run: python bench/asyncssh_isolation.py [--megabytes 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh

CHUNK = b"2026-11-24T10:00:00Z app[1234]: GET /api/v1/items?page=42 200 12ms user=agent-7\n" * 800


class Sender(asyncssh.SSHServerSession[bytes]):
    def __init__(self, size: int) -> None:
        self.size = size
        self.chan: asyncssh.SSHServerChannel[bytes] | None = None
        self.left = size
        self.paused = False
        self.done = False

    def connection_made(self, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        self.chan = chan

    def exec_requested(self, command: str) -> bool:
        return True

    def session_started(self) -> None:
        self.resume_writing()

    def eof_received(self) -> bool:
        return True  # the client's stdin ended; keep sending

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        assert self.chan is not None
        while not self.paused and self.left > 0:
            data = CHUNK[: min(len(CHUNK), self.left)]
            self.left -= len(data)
            self.chan.write(data)
        if self.left <= 0 and not self.paused and not self.done:
            self.done = True
            self.chan.exit(0)


class Server(asyncssh.SSHServer):
    def __init__(self, size: int) -> None:
        self.size = size
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn

    def begin_auth(self, username: str) -> bool:
        return False

    def session_requested(self) -> tuple[asyncssh.SSHServerChannel[bytes], Sender]:
        assert self.conn is not None
        return self.conn.create_server_channel(encoding=None), Sender(self.size)


async def serve(variant: str, port_file: Path, size: int) -> None:
    from bastion.ssh.connection import BastionServerConnection

    key = asyncssh.generate_private_key("ssh-ed25519")
    loop = asyncio.get_running_loop()
    options = await asyncssh.SSHServerConnectionOptions.construct(
        server_factory=lambda: Server(size),
        server_host_keys=[key],
        encryption_algs=["aes128-gcm@openssh.com"],
    )
    cls = BastionServerConnection if variant.startswith("bastion") else asyncssh.SSHServerConnection
    server = await loop.create_server(lambda: cls(loop, options), "127.0.0.1", 0)
    port_file.write_text(str(server.sockets[0].getsockname()[1]))
    await asyncio.Event().wait()


def child(variant: str, port_file: str, size: int) -> None:
    if variant.endswith("uvloop"):
        import uvloop

        uvloop.run(serve(variant, Path(port_file), size))
    else:
        asyncio.run(serve(variant, Path(port_file), size))


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(variant: str, size: int, rounds: int, work: Path) -> float:
    port_file = work / f"{variant}.port"
    port_file.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", variant, str(port_file), str(size)]
    )
    try:
        for _ in range(200):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        port = port_file.read_text()
        argv = [
            "ssh",
            "-p",
            port,
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "BatchMode=yes",
            "-o",
            "Ciphers=aes128-gcm@openssh.com",
            "-o",
            "PreferredAuthentications=none",
            "bench@127.0.0.1",
            "send",
        ]
        per_mb = []
        for _ in range(rounds):
            before = cpu_seconds(proc.pid)
            subprocess.run(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, check=True, timeout=600
            )
            per_mb.append((cpu_seconds(proc.pid) - before) * 1000 / (size / 1e6))
        return statistics.median(per_mb)
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    variants = ["stock", "bastion"]
    try:
        import uvloop  # noqa: F401

        variants += ["stock on uvloop", "bastion on uvloop"]
    except ImportError:
        pass
    work = Path(tempfile.mkdtemp(prefix="asyncssh-bench-"))
    size = args.megabytes * 1_000_000
    print(
        f"\nasyncssh {asyncssh.__version__}: server CPU per MB sent to OpenSSH's client, "
        f"{args.megabytes} MB, median of {args.rounds}\n"
    )
    for variant in variants:
        print(f"{variant:<22}{measure(variant, size, args.rounds, work):>8.2f} ms/MB")


if __name__ == "__main__":
    main()
