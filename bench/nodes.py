"""Several bastion nodes on one store, in one run on 127.0.0.1 (2 cores: the clients,
haproxy, PostgreSQL, sshd and the nodes all share them).

  sessions/s     `ssh -J bastion target true` from C concurrent OpenSSH clients for S
                 seconds: one node direct, one node behind haproxy, two nodes behind
                 haproxy, and `serve --workers 2` (SO_REUSEPORT, and an inherited
                 socket), with how the sessions spread over the nodes
  approval       a command held on node A, approved through node B's store: from the
                 approval's commit to the agent's output (p50/p99), PostgreSQL
                 (LISTEN/NOTIFY) against two nodes on one SQLite file (polling)

Run as root (it creates an unprivileged login): python bench/nodes.py
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from haproxy import start_haproxy  # noqa: E402
from harness import make_agent, make_state, start_bastion, state_store, wait_until  # noqa: E402
from postgres import start_postgres  # noqa: E402

from bastion.localsshd import ensure_unprivileged_user, free_port, start_sshd, wait_for_ssh  # noqa: E402
from bastion.targets import Target  # noqa: E402

LOGIN = "bastionbench"
DEST = f"{LOGIN}@web1"


def configure(state, url: str | None, sshd) -> None:  # type: ignore[no-untyped-def]
    """The state's store (PostgreSQL, else its SQLite file), the balancer, the target."""
    text = state.config_file.read_text()
    if url:
        text = text.replace("[store]\n", f'[store]\nurl = "{url}"\n', 1)
    text = text.replace("[server]\n", '[server]\nproxy_protocol = ["127.0.0.2"]\n', 1)
    state.config_file.write_text(text)
    with state_store(state) as store:
        store.add_target(Target("web1", "127.0.0.1", sshd.port, host_key=sshd.host_key_pub))


def sessions_per_second(agent, port: int, clients: int, seconds: float) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    """(sessions/s, failures) of `clients` loops of `ssh -J bastion target true`."""
    done = [0] * clients
    failed = [0] * clients
    stop = time.monotonic() + seconds
    argv = agent.ssh("-J", f"bastion:{port}", DEST, "true")

    def loop(i: int) -> None:
        while time.monotonic() < stop:
            result = subprocess.run(argv, capture_output=True, timeout=60)
            if result.returncode == 0:
                done[i] += 1
            else:
                failed[i] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started), sum(failed)


def spread(state, since: float) -> str:  # type: ignore[no-untyped-def]
    """Sessions per node since `since`, once the nodes' writes have settled."""
    last: Counter[str | None] = Counter()
    for _ in range(60):
        with state_store(state) as store:
            nodes = Counter(s.node for s in store.list_sessions(100000) if s.started >= since)
        if nodes == last:
            break
        last = nodes
        time.sleep(1)
    return " ".join(f"{n}:{c}" for n, c in sorted(nodes.items()))


def serve_workers(state, port: int, share: str) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    log = (state.root / f"workers-{share}.log").open("ab")
    process = subprocess.Popen(
        [sys.executable, "-m", "bastion", "serve", "--state-dir", str(state.root), "--listen",
         f"127.0.0.1:{port}", "--workers", "2", "--share", share, "--node", f"w-{share}",
         "--log-level", "warning"],
        stdout=log, stderr=log, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if not wait_for_ssh(port, timeout=30, process=process):
        raise SystemExit(f"--workers 2 --share {share} did not start")
    time.sleep(2)  # both workers listening
    return process


def throughput(
    state, root: Path, clients: int, seconds: float
) -> list[tuple[str, float, int, str]]:  # type: ignore[no-untyped-def]
    ports = [free_port(), free_port()]
    nodes = [start_bastion(state, p, node=f"n{i}") for i, p in enumerate(ports)]
    agent = make_agent(root / "tput-agent", state, ports[0], principals=(LOGIN,))
    rows = []
    try:
        since = time.time()
        rate, failed = sessions_per_second(agent, ports[0], clients, seconds)
        rows.append(("one node, direct", rate, failed, spread(state, since)))
        for label, backends in (("one node, haproxy", ports[:1]), ("two nodes, haproxy", ports)):
            balancer = start_haproxy(root / f"haproxy-{len(backends)}", backends)
            try:
                since = time.time()
                rate, failed = sessions_per_second(agent, balancer.port, clients, seconds)
                rows.append((label, rate, failed, spread(state, since)))
            finally:
                balancer.stop()
    finally:
        for node in nodes:
            node.stop()
    for share in ("reuseport", "inherit"):
        port = free_port()
        process = serve_workers(state, port, share)
        try:
            since = time.time()
            rate, failed = sessions_per_second(agent, port, clients, seconds)
            rows.append((f"--workers 2 ({share})", rate, failed, spread(state, since)))
        finally:
            process.terminate()
            process.wait(timeout=30)
    return rows


def approval_latencies(state, root: Path, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    name = state.root.name
    a, b = free_port(), free_port()
    node_a = start_bastion(state, a, node="node-a")
    node_b = start_bastion(state, b, node="node-b")
    agent = make_agent(root / f"approve-agent-{name}", state, a, principals=(LOGIN,))
    latencies = []
    try:
        with state_store(state) as reviewer:  # node B's store: the same database
            for _ in range(runs):
                client = subprocess.Popen(
                    agent.ssh("-J", "bastion", DEST, "uname -s"),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                )  # fmt: skip

                def pending(client=client) -> int | None:
                    found = [r for r in reviewer.list_requests() if r.command == "uname -s"]
                    return found[-1].id if found else None

                request_id = wait_until(pending, 30, interval=0.02)
                if not request_id:
                    raise SystemExit("no request appeared")
                reviewer.approve_request(request_id, "bench-reviewer", None, time.time())
                decided = time.monotonic()
                line = client.stdout.readline()  # type: ignore[union-attr]
                latencies.append(time.monotonic() - decided)
                client.communicate(timeout=30)
                if line != b"Linux\n":
                    raise SystemExit(f"unexpected output {line!r}")
    finally:
        node_a.stop()
        node_b.stop()
    return latencies


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def timed(what: str, fn: Callable[[], object]) -> object:
    started = time.monotonic()
    result = fn()
    print(f"# {what}: {time.monotonic() - started:.0f}s", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    ensure_unprivileged_user(LOGIN)
    postgres = start_postgres()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # one state dir per setup, each with its own CAs; the one target trusts them all
        states = {
            name: make_state(root / name) for name in ("tput", "approve-pg", "approve-sqlite")
        }
        cas = "\n".join((s.keys / "target_ca.pub").read_text().strip() for s in states.values())
        sshd = start_sshd(root / "sshd", trusted_user_ca=cas, allow_user=LOGIN)
        try:
            configure(states["tput"], postgres.new_database("tput"), sshd)
            configure(states["approve-pg"], postgres.new_database("approve"), sshd)
            configure(states["approve-sqlite"], None, sshd)
            rows = timed(
                "throughput", lambda: throughput(states["tput"], root, args.clients, args.seconds)
            )
            pg = timed(
                "approval pg", lambda: approval_latencies(states["approve-pg"], root, args.runs)
            )
            lite = timed(
                "approval sqlite",
                lambda: approval_latencies(states["approve-sqlite"], root, args.runs),
            )
        finally:
            sshd.stop()
            postgres.stop()
    print(
        f"sessions/s: {args.clients} concurrent OpenSSH clients, {args.seconds:g} s each, PostgreSQL store"
    )
    print(f"{'setup':<26} {'sessions/s':>10} {'failed':>6}  spread over nodes")
    for label, rate, failed, where in rows:  # type: ignore[union-attr]
        print(f"{label:<26} {rate:>10.1f} {failed:>6}  {where}")
    print()
    print(f"approval on node B -> output on node A, {args.runs} runs")
    print(f"{'store':<26} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, values in (("postgresql (NOTIFY)", pg), ("sqlite file (polling)", lite)):
        ms = [v * 1000 for v in values]  # type: ignore[union-attr]
        print(
            f"{label:<26} {statistics.median(ms):>8.0f} {percentile(ms, 99):>8.0f} {max(ms):>8.0f}"
        )


if __name__ == "__main__":
    main()
