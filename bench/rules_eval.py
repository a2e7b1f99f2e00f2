"""Rule evaluation speed with the default pack: lines per second and per-line latency.

Every line of the corpus (dangerous and everyday) is evaluated on one core,
first cold (parser caches empty, every line new), then warm (the analysis
cache holds the line, as for a command an agent repeats).

Run: python bench/rules_eval.py
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from rules import Request, default_policy, evaluate
from rules.engine import _flags, _other_spellings, _positional
from rules.globs import overlaps
from rules.shell import analyse

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "rules" / "corpus"


def lines() -> list[str]:
    dangerous = [
        row.split("\t", 2)[2] for row in (CORPUS / "dangerous.tsv").read_text().splitlines() if row
    ]
    everyday = [row for row in (CORPUS / "everyday.txt").read_text().splitlines() if row]
    return dangerous + everyday


POLICY = [default_policy()]  # loaded once, as `bastion serve` does


def run(corpus: list[str], *, cold: bool) -> list[float]:
    policy = POLICY
    times = []
    for line in corpus:
        if cold:
            analyse.cache_clear()
            _positional.cache_clear()
            _flags.cache_clear()
            _other_spellings.cache_clear()
            overlaps.cache_clear()
        start = time.perf_counter()
        evaluate(policy, Request(line))
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    corpus = lines()
    run(corpus, cold=True)  # import and JIT-free warm-up of the interpreter paths
    print(f"{len(corpus)} lines, default pack ({len(default_policy().rules)} rules), one core\n")
    print(f"{'mode':<8}{'lines/s':>10}{'p50':>10}{'p99':>10}{'max':>10}")
    for name, cold in (("cold", True), ("warm", False)):
        if not cold:
            run(corpus, cold=False)  # fill the caches: the cold runs left them empty
        times = run(corpus, cold=cold) + run(corpus, cold=cold)
        times.sort()
        rate = len(times) / sum(times)
        p50 = statistics.median(times)
        p99 = times[int(len(times) * 0.99)]
        print(
            f"{name:<8}{rate:>10.0f}{p50 * 1e3:>8.3f}ms{p99 * 1e3:>8.3f}ms{times[-1] * 1e3:>8.3f}ms"
        )


if __name__ == "__main__":
    main()
