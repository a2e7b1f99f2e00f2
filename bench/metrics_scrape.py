"""Does serving /metrics and /readyz hold the bastion's event loop? Prints a table.

An event-loop ticker (asyncio.sleep(0.001) in a loop, as the relay's own
callbacks would run) measures how late each tick wakes, first with nothing
else running (the baseline, same run), then while a client scrapes /metrics
and /readyz as fast as it can. The registry holds what a busy bastion's
would: 40 rules x 4 actions x 4 sources of decisions, every alert kind,
histograms with observations. The client is another process (urllib in a
loop over loopback), so its own work is not counted as the loop's lag.
`render() on the loop` is what each scrape would cost the loop if /metrics
rendered inline instead of in a thread (the comparison, in the same run).

    python bench/metrics_scrape.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bastion import metrics
from bastion.ops_http import OpsServer, Probes
from bastion.readiness import recordings_problem, store_problem
from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.store import open_store


def fill_registry() -> None:
    for rule in range(40):
        for action in ("allow", "alert", "review", "deny"):
            for source in ("exec", "line", "sftp", "subsystem"):
                metrics.decision(source, action, f"rule-{rule}", 0.001 * (rule % 7))
    for kind in (
        "rule",
        "burst",
        "denied-streak",
        "forward-refused",
        "output-volume",
        "masking-off",
    ):
        metrics.alert_raised(kind)
    for n in range(1000):
        metrics.upstream_connected(0.01 * (n % 50))
        metrics.session_started(f"s{n}", "exec")


async def ticker(seconds: float) -> list[float]:
    """How late (ms) each 1 ms sleep wakes up."""
    lags = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        start = time.perf_counter()
        await asyncio.sleep(0.001)
        lags.append((time.perf_counter() - start - 0.001) * 1000)
    return lags


CLIENT = """
import sys, time, urllib.request
port, seconds = int(sys.argv[1]), float(sys.argv[2])
end = time.perf_counter() + seconds
while time.perf_counter() < end:
    for path in ("/metrics", "/readyz"):
        start = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as reply:
            reply.read()
        print(path, (time.perf_counter() - start) * 1000, flush=True)
"""


async def main(seconds: float) -> None:
    fill_registry()
    root = Path(tempfile.mkdtemp(prefix="bench-metrics-"))
    state = StateDir(root / "state")
    initialise(state)
    store = open_store(state.store_url(), node="bench")
    await store.open()

    async def ready() -> dict[str, str | None]:
        db, rec = await asyncio.gather(
            store_problem(store),
            asyncio.to_thread(recordings_problem, state.root / "recordings"),
        )
        return {"database": db, "recordings": rec}

    async def nothing() -> None:
        return None

    server = await OpsServer(Probes(ready=ready, before_scrape=nothing)).start("127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    render = []
    for _ in range(200):
        start = time.perf_counter()
        body = metrics.render()
        render.append((time.perf_counter() - start) * 1000)
    baseline = await ticker(seconds)
    client = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLIENT, str(port), str(seconds), stdout=asyncio.subprocess.PIPE
    )
    loaded, (out, _) = await asyncio.gather(ticker(seconds), client.communicate())
    server.close()
    await store.close()
    counts: dict[str, list[float]] = {"/metrics": [], "/readyz": []}
    for line in out.decode().splitlines():
        path, ms = line.split()
        counts[path].append(float(ms))

    def row(name: str, values: list[float]) -> str:
        ordered = sorted(values)
        p99 = ordered[int(len(ordered) * 0.99) - 1]
        return (
            f"{name:<34}{len(values):>8}{statistics.median(values):>10.3f}"
            f"{p99:>10.3f}{max(values):>10.3f}"
        )

    print(f"registry: {len(body)} bytes of exposition; {seconds:g} s per phase; ms")
    print(f"{'':<34}{'count':>8}{'median':>10}{'p99':>10}{'max':>10}")
    print(row("render() on the loop (not done)", render))
    print(row("loop tick lag, idle (baseline)", baseline))
    print(row("loop tick lag, while scraping", loaded))
    print(row("GET /metrics, client side", counts["/metrics"]))
    print(row("GET /readyz, client side", counts["/readyz"]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    asyncio.run(main(parser.parse_args().seconds))
