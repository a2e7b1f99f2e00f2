"""Many interactive sessions at once, through the bastion and through an OpenSSH jump host.

The load generator is one asyncssh client process (bounded in sessions,
concurrency and time); the targets and the OpenSSH jump host are real sshds
on 127.0.0.1. Two measures, each for both jump sides in the same run:

  idle    N interactive shells held open: the jump side's RSS (and PSS), and
          the latency of a new `ssh -J ... true` (stock OpenSSH client) while
          they are open, against the same with none open;
  typing  M shells each typing a key every 100 ms for --seconds: the time
          from a key leaving the client to its echo arriving (p50, p99).

Run as root (it creates an unprivileged login):

  python bench/load.py [--idle 1000] [--typists 200] [--seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from harness import make_agent, make_state, start_bastion, state_store  # noqa: E402

from bastion.localsshd import ensure_unprivileged_user, start_sshd  # noqa: E402
from bastion.targets import Target  # noqa: E402

LOGIN = "bastionbench"
OPEN_CONCURRENCY = 16
OPEN_TIMEOUT = 60.0
PROMPT = b"$ "


@dataclass
class Route:
    """How the load generator reaches the target: through `jump_port` as `jump_user`."""

    name: str
    jump_port: int
    jump_user: str
    target_host: str
    target_port: int
    known_hosts: str
    key: asyncssh.SSHKey
    cert: asyncssh.SSHCertificate
    pids: list[int] = field(default_factory=list)  # the jump side's processes, for memory

    async def shell(
        self,
    ) -> tuple[asyncssh.SSHClientConnection, asyncssh.SSHClientConnection, Shell]:
        keys = [(self.key, self.cert)]
        known = asyncssh.import_known_hosts(self.known_hosts)
        outer = await asyncssh.connect(
            "127.0.0.1",
            self.jump_port,
            username=self.jump_user,
            client_keys=keys,
            known_hosts=known,
            agent_path=None,
            config=None,
            kex_algs=["curve25519-sha256"],
            encryption_algs=["aes128-gcm@openssh.com"],
        )
        inner = await asyncssh.connect(
            self.target_host,
            self.target_port,
            tunnel=outer,
            username=LOGIN,
            client_keys=keys,
            known_hosts=known,
            agent_path=None,
            config=None,
            kex_algs=["curve25519-sha256"],
            encryption_algs=["aes128-gcm@openssh.com"],
        )
        shell = Shell()
        await inner.create_session(
            lambda: shell, term_type="xterm", term_size=(80, 24), encoding=None
        )
        return outer, inner, shell


class Shell(asyncssh.SSHClientSession[bytes]):
    """Counts output and wakes whoever waits for a byte to come back."""

    def __init__(self) -> None:
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None
        self.seen = bytearray()
        self.changed = asyncio.Event()

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        self.chan = chan

    def data_received(self, data: bytes, datatype: int | None) -> None:
        self.seen += data
        if len(self.seen) > 65536:
            del self.seen[:-4096]
        self.changed.set()

    async def wait_for(self, needle: bytes, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.seen:
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {needle!r} within {timeout} s")
            try:
                await asyncio.wait_for(self.changed.wait(), left)
            except TimeoutError:
                pass


async def open_shells(route: Route, count: int) -> list[tuple]:
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one() -> tuple:
        async with gate:
            opened = await asyncio.wait_for(route.shell(), OPEN_TIMEOUT)
            await opened[2].wait_for(b"$", 30)
            return opened

    return list(await asyncio.gather(*(one() for _ in range(count))))


def close_shells(shells: list[tuple]) -> None:
    for outer, inner, _ in shells:
        inner.close()
        outer.close()


def memory_kib(pids: list[int]) -> tuple[int, int]:
    rss = pss = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Rss:"):
                    rss += int(line.split()[1])
                elif line.startswith("Pss:"):
                    pss += int(line.split()[1])
        except OSError:
            pass
    return rss, pss


def descendants(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        child, parent = (int(x) for x in line.split())
        children.setdefault(parent, []).append(child)
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        found.append(current)
        stack.extend(children.get(current, []))
    return found


def true_latency(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv + ["true"], check=True, capture_output=True, timeout=120)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


async def typing(route: Route, count: int, seconds: float) -> list[float]:
    shells = await open_shells(route, count)
    delays: list[float] = []
    try:

        async def type_keys(shell: Shell, index: int) -> None:
            await asyncio.sleep(index * 0.1 / max(1, count))  # spread the keys over each 100 ms
            deadline = time.monotonic() + seconds
            n = 0
            while time.monotonic() < deadline:
                key = b"abcdefghijklmnopqrstuvwxyz"[n % 26 : n % 26 + 1]
                shell.seen.clear()
                sent = time.perf_counter()
                assert shell.chan is not None
                shell.chan.write(key)
                try:
                    await shell.wait_for(key, 5)
                    delays.append(time.perf_counter() - sent)
                except TimeoutError:
                    delays.append(5.0)
                n += 1
                if n % 60 == 0:
                    shell.chan.write(b"\x15")  # Ctrl-U: keep the line short
                await asyncio.sleep(max(0.0, 0.1 - (time.perf_counter() - sent)))

        await asyncio.gather(*(type_keys(s[2], i) for i, s in enumerate(shells)))
    finally:
        close_shells(shells)
    return delays


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def run(
    args: argparse.Namespace, routes: list[Route], ssh_argv: dict[str, list[str]]
) -> None:
    print(
        f"\nidle: {args.idle} shells; typing: {args.typists} typists for {args.seconds:g} s;"
        f" asyncssh {asyncssh.__version__}, {os.cpu_count()} cores\n"
    )
    for route in routes:
        before = memory_kib(route.pids)
        base = true_latency(ssh_argv[route.name], 5)
        started = time.monotonic()
        shells = await open_shells(route, args.idle)
        opened_in = time.monotonic() - started
        await asyncio.sleep(2)
        rss, pss = memory_kib(route.pids if route.name == "bastion" else descendants(route.pids[0]))
        loaded = await asyncio.get_running_loop().run_in_executor(
            None, true_latency, ssh_argv[route.name], 5
        )
        close_shells(shells)
        await asyncio.sleep(3)
        print(
            f"{route.name:<18} {args.idle} idle shells opened in {opened_in:.0f} s: RSS {rss / 1024:.0f} MiB"
            f" (PSS {pss / 1024:.0f} MiB; {before[0] / 1024:.0f} MiB before);"
            f" `ssh true` {base * 1000:.0f} ms idle, {loaded * 1000:.0f} ms with them ({loaded / base:.2f}x)"
        )
    for route in routes:
        delays = await typing(route, args.typists, args.seconds)
        print(
            f"{route.name:<18} {args.typists} typists: echo p50 {pct(delays, 0.5) * 1000:.1f} ms,"
            f" p99 {pct(delays, 0.99) * 1000:.1f} ms ({len(delays)} keys)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=int, default=1000)
    parser.add_argument("--typists", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates an unprivileged login")
    ensure_unprivileged_user(LOGIN)
    work = Path(tempfile.mkdtemp(prefix="bastion-load-"))
    os.chmod(work, 0o755)
    state = make_state(work / "state")
    user_ca = (state.keys / "user_ca.pub").read_text().strip()
    target_ca = (state.keys / "target_ca.pub").read_text().strip()
    target = start_sshd(
        work / "target", trusted_user_ca=f"{target_ca}\n{user_ca}", allow_user=LOGIN
    )
    jump = start_sshd(work / "jump", trusted_user_ca=user_ca, allow_user=LOGIN)
    with state_store(state) as store:
        store.add_target(Target("target", "127.0.0.1", target.port, host_key=target.host_key_pub))
    bastion = start_bastion(state)
    try:
        agent = make_agent(work / "agent", state, bastion.port, identity=LOGIN, principals=(LOGIN,))
        key = asyncssh.read_private_key(str(agent.key))
        cert = asyncssh.read_certificate(str(agent.key) + "-cert.pub")
        host_ca = (state.keys / "host_ca.pub").read_text().strip()
        known = (
            f"@cert-authority * {host_ca}\n[127.0.0.1]:{jump.port} {jump.host_key_pub}\n"
            f"[127.0.0.1]:{target.port} {target.host_key_pub}\n"
        )
        with (agent.dir / "known_hosts").open("a") as kh:
            kh.write(known)
        config = agent.config.read_text()
        agent.config.write_text(
            f"Host openssh-jump\n  HostName 127.0.0.1\n  Port {jump.port}\n  User {LOGIN}\n\n"
            f"Host target-direct\n  HostName 127.0.0.1\n  Port {target.port}\n\n" + config
        )
        kex = ["-o", "KexAlgorithms=curve25519-sha256", "-o", "LogLevel=ERROR"]
        ssh_argv = {
            "bastion": agent.ssh(*kex, "-J", "bastion", f"{LOGIN}@target"),
            "OpenSSH jump host": agent.ssh(*kex, "-J", "openssh-jump", f"{LOGIN}@target-direct"),
        }
        routes = [
            Route(
                "OpenSSH jump host",
                jump.port,
                LOGIN,
                "127.0.0.1",
                target.port,
                known,
                key,
                cert,
                [jump.process.pid],
            ),
            Route(
                "bastion",
                bastion.port,
                LOGIN,
                "target",
                22,
                known,
                key,
                cert,
                [bastion.process.pid],
            ),
        ]
        asyncio.run(run(args, routes, ssh_argv))
    finally:
        bastion.stop()
        target.stop()
        jump.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
