"""MB/s of the output masker alone, fed in relay-sized reads, on several kinds of text.

  log      the log line bench/jump_vs_openssh.py serves (timestamps, paths, numbers)
  prose    English text with a few addresses and URLs
  source   this repository's Python sources
  digits   number-dense text: tables of sizes, ids, timestamps, amounts
  secrets  log lines with a planted secret every 20 lines
  binary   random bytes (pass-through after the first control byte)

Run: python bench/mask_throughput.py [--megabytes 20] [--read 32768]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rules.masking import Masker  # noqa: E402
from rules.masking.detectors import describe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def corpora(size: int) -> dict[str, bytes]:
    rng = random.Random(7)
    log = b"2026-11-24T10:00:00Z app[1234]: GET /api/v1/items?page=42 200 12ms user=agent-7\n"
    prose = (ROOT / "README.md").read_bytes()
    source = b"".join(p.read_bytes() for p in sorted((ROOT / "bastion").rglob("*.py")))
    rows = []
    for i in range(4000):
        rows.append(
            b"%8d  %10d  %s  %7.2f  %5d  %012d\n"
            % (
                rng.randrange(10**8),
                rng.randrange(10**10),
                time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(1.7e9 + i * 37)).encode(),
                rng.random() * 1e4,
                rng.randrange(65536),
                rng.randrange(10**12),
            )
        )
    digits = b"".join(rows)
    examples = [example for _, _, example in describe()]
    planted = b"".join(
        log * 19 + b"config: " + examples[i % len(examples)].replace(b"\n", b" ") + b"\n"
        for i in range(200)
    )
    return {
        "log": _repeat(log, size),
        "prose": _repeat(prose, size),
        "source": _repeat(source, size),
        "digits": _repeat(digits, size),
        "secrets": _repeat(planted, size),
        "binary": os.urandom(size),
    }


def _repeat(block: bytes, size: int) -> bytes:
    return (block * (size // len(block) + 1))[:size]


def measure(data: bytes, read: int) -> tuple[float, int]:
    masker = Masker()
    start = time.perf_counter()
    out = 0
    for offset in range(0, len(data), read):
        out += len(masker.feed(data[offset : offset + read]))
    out += len(masker.flush())
    elapsed = time.perf_counter() - start
    return len(data) / elapsed / 1e6, sum(masker.counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=20)
    parser.add_argument("--read", type=int, default=32768, help="bytes per feed() call")
    args = parser.parse_args()
    size = args.megabytes * 1_000_000
    print(
        f"{args.megabytes} MB per corpus, {args.read}-byte reads, Python {sys.version.split()[0]}\n"
    )
    print(f"{'corpus':<10}{'MB/s':>10}{'masked':>10}")
    for name, data in corpora(size).items():
        rate, masked = measure(data, args.read)
        print(f"{name:<10}{rate:>10.0f}{masked:>10}")


if __name__ == "__main__":
    main()
