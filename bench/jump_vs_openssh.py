"""The bastion against a plain OpenSSH sshd used as the jump host, in one run.

Everything runs on 127.0.0.1: one real sshd as the target, a second real
sshd as the OpenSSH jump host, and `bastion serve`. The agent is the stock
OpenSSH client in both cases. Prints a table:

  latency     median wall time of `ssh -J JUMP TARGET true` (20 runs)
  throughput  MB/s of a 500 MB text file read from the target with `cat`
  idle RSS    memory of the jump side with 100 idle interactive shells

Run as root (it creates an unprivileged login): python bench/jump_vs_openssh.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import asyncssh

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from harness import make_agent, make_state, start_bastion, state_store  # noqa: E402

from bastion.localsshd import ensure_unprivileged_user, start_sshd  # noqa: E402
from bastion.targets import Target  # noqa: E402

LOGIN = "bastionbench"


def rss_kb(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


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


def latency(argv: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def make_text_file(path: Path, size: int) -> None:
    """Log-like text: what agents mostly read, and what recordings are made for."""
    line = b"2026-11-24T10:00:00Z app[1234]: GET /api/v1/items?page=42 200 12ms user=agent-7\n"
    block = line * ((1 << 20) // len(line) + 1)
    with path.open("wb") as handle:
        written = 0
        while written < size:
            chunk = block[: size - written]
            handle.write(chunk)
            written += len(chunk)
    os.chmod(path, 0o644)


def throughput(argv: list[str], size: int, source: Path, *, pty: bool = False) -> float:
    """MB/s of `cat source`; with a pty the target's terminal turns \n into \r\n."""
    flags = ["-tt"] if pty else []
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv[:1] + flags + argv[1:] + [f"cat {source}"],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL if not pty else subprocess.PIPE,
    )
    assert proc.stdout is not None
    received = 0
    while chunk := proc.stdout.read(1 << 20):
        received += len(chunk)
    proc.wait(timeout=300)
    elapsed = time.perf_counter() - start
    if received < size:
        raise RuntimeError(f"received {received} of {size} bytes")
    return size / elapsed / 1e6


def target_shells(target_pid: int) -> int:
    """Interactive sessions the target sshd is serving (`sshd: LOGIN@pts/N`)."""
    found = 0
    for pid in descendants(target_pid):
        try:
            if f"{LOGIN}@pts".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found += 1
        except OSError:
            pass
    return found


def idle_shells(argv: list[str], count: int, measure_pids, ready) -> int:
    procs = []
    try:
        for _ in range(count):
            procs.append(
                subprocess.Popen(
                    argv + ["-tt"],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            time.sleep(0.05)
        deadline = time.monotonic() + 180
        while ready() < count and time.monotonic() < deadline:
            time.sleep(0.5)
        if ready() < count:
            raise RuntimeError(f"only {ready()} of {count} shells reached the target")
        time.sleep(2)
        alive = sum(p.poll() is None for p in procs)
        if alive != count:
            raise RuntimeError(f"only {alive} of {count} shells stayed up")
        return rss_kb(measure_pids())
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--megabytes", type=int, default=500)
    parser.add_argument("--shells", type=int, default=100)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates an unprivileged login")
    ensure_unprivileged_user(LOGIN)
    work = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    os.chmod(work, 0o755)
    state = make_state(work / "state")
    user_ca = (state.keys / "user_ca.pub").read_text().strip()
    target_ca = (state.keys / "target_ca.pub").read_text().strip()
    # The target trusts the bastion's target CA and, for the OpenSSH path, the user CA.
    target = start_sshd(
        work / "target", trusted_user_ca=f"{target_ca}\n{user_ca}", allow_user=LOGIN
    )
    jump = start_sshd(work / "jump", trusted_user_ca=user_ca, allow_user=LOGIN)
    with state_store(state) as store:
        store.add_target(Target("target", "127.0.0.1", target.port, host_key=target.host_key_pub))
    bastion = start_bastion(state)
    try:
        agent = make_agent(work / "agent", state, bastion.port, identity=LOGIN, principals=(LOGIN,))
        with (agent.dir / "known_hosts").open("a") as kh:
            kh.write(f"[127.0.0.1]:{target.port} {target.host_key_pub}\n")
            kh.write(f"[127.0.0.1]:{jump.port} {jump.host_key_pub}\n")
        with agent.config.open("r+") as cfg:
            text = cfg.read()
            cfg.seek(0)
            cfg.write(
                f"Host openssh-jump\n  HostName 127.0.0.1\n  Port {jump.port}\n  User {LOGIN}\n\n"
                f"Host target-direct\n  HostName 127.0.0.1\n  Port {target.port}\n\n" + text
            )
        via_bastion = agent.ssh("-o", "LogLevel=ERROR", "-J", "bastion", f"{LOGIN}@target")
        via_openssh = agent.ssh(
            "-o", "LogLevel=ERROR", "-J", "openssh-jump", f"{LOGIN}@target-direct"
        )
        size = args.megabytes * 1_000_000
        source = work / "read-me.txt"
        make_text_file(source, size)
        subprocess.run(["cat", str(source)], stdout=subprocess.DEVNULL, check=True)  # page cache
        # Memory first, while both jump sides are fresh (no heap grown by bulk transfers).
        jump_pid = jump.process.pid
        shells_up = lambda: target_shells(target.process.pid)  # noqa: E731
        rss_openssh = idle_shells(
            via_openssh, args.shells, lambda: descendants(jump_pid), shells_up
        )
        while shells_up():
            time.sleep(0.5)
        base_bastion = rss_kb([bastion.process.pid])
        rss_bastion = idle_shells(
            via_bastion, args.shells, lambda: [bastion.process.pid], shells_up
        )
        rows = []
        for name, argv in (("OpenSSH jump host", via_openssh), ("bastion", via_bastion)):
            subprocess.run(argv + ["true"], check=True, capture_output=True, timeout=60)  # warm up
            lat = latency(argv + ["true"], args.runs)
            thr = throughput(argv, size, source)
            thr_pty = throughput(argv, size, source, pty=True)
            rows.append([name, lat, thr, thr_pty])
        rows[0].append(rss_openssh)
        rows[1].append(rss_bastion)
        print(
            f"\n{args.runs} runs of `true`, {args.megabytes} MB read, {args.shells} idle shells;"
            f" asyncssh {asyncssh.__version__}, Python {sys.version.split()[0]}\n"
        )
        print(
            f"{'jump side':<20}{'latency (median)':>18}{'exec cat':>14}{'pty cat':>14}{'idle RSS':>22}"
        )
        for name, lat, thr, thr_pty, rss in rows:
            print(
                f"{name:<20}{lat * 1000:>15.0f} ms{thr:>9.0f} MB/s{thr_pty:>9.0f} MB/s"
                f"{rss / 1024:>14.1f} MiB total"
            )
        print(
            f"\nbastion RSS before the shells: {base_bastion / 1024:.1f} MiB;"
            f" per idle shell: {(rss_bastion - base_bastion) / args.shells:.0f} KiB"
        )
        ratio = rows[1][2] / rows[0][2]
        print(
            f"throughput ratio bastion/OpenSSH: {ratio:.2f}; latency ratio: {rows[1][1] / rows[0][1]:.2f}"
        )
    finally:
        bastion.stop()
        target.stop()
        jump.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
