"""Rule evaluation speed, old engine against new, in one run: cold lines per second per
core, and per-line latency on lines never seen before.

    python bench/rules_eval.py [--lines N]

The old engine is the one issue 10 replaced: its rules/ package is taken from the
commit before the rewrite (BASELINE) with `git archive` into a temporary directory,
so the baseline is exactly what shipped, with no second copy kept in the tree. Each
engine runs in a child process of its own (both packages are called `rules`), one
core, on the same lines: the dangerous and everyday corpora (tests/rules/corpus/)
with every line made unique so no cache has seen it (a number appended to one word).
Half the lines warm the interpreter up; the other half are measured once each, by the
thread's CPU time (a busy machine inflates wall time, not this). Then one pathological
line per engine: how long it takes, and what it decides.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "rules" / "corpus"
BASELINE = "9d3d28d"  # the last commit of the engine issue 10 replaced
# Nested code past every budget: 200 `sh -c` lines, each parsed again.
PATHOLOGICAL = "; ".join(["bash -c 'ls | sh -c \"cat x\"'"] * 200)


def corpus() -> list[str]:
    dangerous = [
        row.split("\t", 2)[2] for row in (CORPUS / "dangerous.tsv").read_text().splitlines() if row
    ]
    everyday = [row for row in (CORPUS / "everyday.txt").read_text().splitlines() if row.strip()]
    return dangerous + everyday


def unique(lines: list[str]) -> list[str]:
    """Each line once more, with a number in its last plain word, so no cache knows it."""
    out = []
    for number, line in enumerate(lines):
        words = line.split(" ")
        for position in range(len(words) - 1, 0, -1):
            if words[position].isalnum():
                words[position] += str(number)
                break
        out.append(" ".join(words))
    return out


def worker(engine: str, lines: list[str]) -> dict[str, object]:
    """Runs in the child: import the engine, warm up, measure."""
    import gc
    import time

    from rules import Request, default_policy, evaluate

    policy = [default_policy()]
    if engine == "new":  # a server compiles the catalog once, before the first line
        from rules.catalog import CATALOG

        for name in CATALOG.names():
            CATALOG.program(name)
    half = len(lines) // 2
    for line in lines[:half]:
        evaluate(policy, Request(line, login="deploy"))
    gc.collect()
    gc.freeze()  # what a server does after loading: the catalog is never garbage
    times = []
    started = time.process_time()
    for line in lines[half:]:
        before = time.thread_time()
        evaluate(policy, Request(line, login="deploy"))
        times.append(time.thread_time() - before)
    total = time.process_time() - started
    typical = sorted(t for t, line in zip(times, lines[half:], strict=True) if len(line) <= 200)
    before = time.thread_time()
    decision = evaluate(policy, Request(PATHOLOGICAL, login="deploy"))
    pathological = time.thread_time() - before
    times.sort()
    return {
        "engine": engine,
        "lines": len(times),
        "rate": len(times) / total,
        "p50": statistics.median(times),
        "p99": times[int(len(times) * 0.99)],
        "p99_typical": typical[int(len(typical) * 0.99)],
        "max": times[-1],
        "pathological_ms": pathological * 1e3,
        "pathological": f"{decision.action.value}/{decision.rule}",
    }


def extract_baseline(into: Path) -> Path:
    archive = into / "old.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), BASELINE, "rules"],
        check=True,
    )
    with tarfile.open(archive) as tar:
        tar.extractall(into / "old", filter="data")
    return into / "old"


def run_child(engine: str, path: Path, lines: list[str]) -> dict[str, object]:
    env = dict(os.environ, PYTHONPATH=str(path))
    result = subprocess.run(
        [sys.executable, __file__, "--child", engine],
        input=json.dumps(lines),
        capture_output=True,
        text=True,
        env=env,
        cwd=path,
        timeout=3600,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{engine} engine failed: {result.stderr.strip()[-500:]}")
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--lines", type=int, default=0, help="use only the first N lines")
    args = parser.parse_args()
    if args.child:
        lines = json.loads(sys.stdin.read())
        print(json.dumps(worker(args.child, lines)))
        return
    lines = unique(corpus())
    if args.lines:
        lines = lines[: args.lines]
    with tempfile.TemporaryDirectory() as scratch:
        old = extract_baseline(Path(scratch))
        results = [run_child("old", old, lines), run_child("new", ROOT, lines)]
    print(f"{len(lines)} lines (half warm-up, half measured once each), one core, CPU time\n")
    header = f"{'engine':<8}{'lines/s':>9}{'p50':>10}{'p99':>10}{'p99<=200c':>11}{'max':>10}"
    print(header + f"{'pathological line':>30}")
    for r in results:
        print(
            f"{r['engine']:<8}{r['rate']:>9.0f}{r['p50'] * 1e3:>8.3f}ms{r['p99'] * 1e3:>8.3f}ms"
            f"{r['p99_typical'] * 1e3:>9.3f}ms{r['max'] * 1e3:>8.2f}ms"
            f"{r['pathological_ms']:>12.1f}ms {r['pathological']}"
        )


if __name__ == "__main__":
    main()
