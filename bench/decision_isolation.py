"""One agent's worst-case lines must not stall another agent: latency with and without, one run.

Everything runs on 127.0.0.1: a real sshd as the target and `bastion serve`.
The victim runs `ssh -J bastion target true` again and again; the attacker
keeps several exec channels (over one multiplexed connection) busy with lines that are as expensive to
decide as we know how to make them (long lists of globs the rules must
resolve). Prints the victim's median and p90 latency without the attacker,
then with it, and the ratio.

Run as root (it creates an unprivileged login): python bench/decision_isolation.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from harness import make_agent, make_state, start_bastion, state_store  # noqa: E402

from bastion.localsshd import ensure_unprivileged_user, start_sshd  # noqa: E402
from bastion.targets import Target  # noqa: E402

LOGIN = "bastionbench"


def heavy_line(size: int) -> str:
    """Globs the rules resolve against every path they name: costly to decide."""
    words, i = [], 0
    while sum(len(w) + 1 for w in words) < size:
        words.append(f"/e*/s*{i}[a-z]?")
        i += 1
    return "cat " + " ".join(words)


def latencies(argv: list[str], runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv + ["true"], check=True, capture_output=True, timeout=120)
        out.append(time.perf_counter() - start)
    return out


def attack(argv: list[str], line: str, stop: threading.Event, sent: list[int]) -> None:
    while not stop.is_set():
        subprocess.run(argv + [line], capture_output=True, timeout=300)
        sent[0] += 1


def p90(values: list[float]) -> float:
    return sorted(values)[max(0, int(len(values) * 0.9) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--attackers", type=int, default=4, help="parallel attacking channels")
    parser.add_argument("--line-bytes", type=int, default=16000)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: the benchmark creates an unprivileged login")
    ensure_unprivileged_user(LOGIN)
    work = Path(tempfile.mkdtemp(prefix="bastion-bench-"))
    os.chmod(work, 0o755)
    state = make_state(work / "state")
    target = start_sshd(
        work / "target",
        trusted_user_ca=(state.keys / "target_ca.pub").read_text().strip(),
        allow_user=LOGIN,
    )
    with state_store(state) as store:
        store.add_target(Target("target", "127.0.0.1", target.port, host_key=target.host_key_pub))
    bastion = start_bastion(state)
    try:
        victim = make_agent(
            work / "victim", state, bastion.port, identity="victim", principals=(LOGIN,)
        )
        attacker = make_agent(
            work / "attacker", state, bastion.port, identity="attacker", principals=(LOGIN,)
        )
        jump = ("-o", "LogLevel=ERROR", "-J", "bastion", f"{LOGIN}@target")
        victim_argv = victim.ssh(*jump)
        # The attacker multiplexes its channels over one connection: what is measured is the
        # cost of deciding its lines, not of its handshakes.
        control = (
            "-o",
            "ControlMaster=auto",
            "-o",
            f"ControlPath={work}/attacker.sock",
            "-o",
            "ControlPersist=120",
        )
        attacker_argv = attacker.ssh(*control, *jump)
        line = heavy_line(args.line_bytes) if args.line_bytes else "cat /etc/shadow"
        latencies(victim_argv, 3)  # warm up
        quiet = latencies(victim_argv, args.runs)
        stop, sent = threading.Event(), [0]
        threads = [
            threading.Thread(target=attack, args=(attacker_argv, line, stop, sent), daemon=True)
            for _ in range(args.attackers)
        ]
        for thread in threads:
            thread.start()
        time.sleep(3)  # the attack is under way
        loaded = latencies(victim_argv, args.runs)
        stop.set()
        for thread in threads:
            thread.join(timeout=300)
        q, loaded_median = statistics.median(quiet), statistics.median(loaded)
        print(
            f"\n{args.runs} runs of `ssh -J bastion target true` by the victim; attacker: "
            f"{args.attackers} channels of {len(line)}-byte lines, {sent[0]} sent\n"
        )
        print(f"{'':<18}{'median':>10}{'p90':>10}")
        print(f"{'without attacker':<18}{q * 1000:>8.0f} ms{p90(quiet) * 1000:>8.0f} ms")
        print(f"{'with attacker':<18}{loaded_median * 1000:>8.0f} ms{p90(loaded) * 1000:>8.0f} ms")
        print(f"\nlatency ratio (median): {loaded_median / q:.2f}")
    finally:
        bastion.stop()
        target.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
