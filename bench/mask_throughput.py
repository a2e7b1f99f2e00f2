"""MB/s of the output masker alone, fed in relay-sized reads, against the previous masker.

  applog   typical log text (web access, syslog, JSON and app lines) with a few secrets
  log      the one log line bench/jump_vs_openssh.py serves, repeated
  prose    English text with a few addresses and URLs (this README)
  source   this repository's Python sources
  digits   number-dense text: tables of sizes, ids, timestamps, amounts
  secrets  log lines with a planted secret every 20 lines
  colour   terminal output with colour escapes on every line (ls --color, grep --color)
  binary   random bytes

The baseline is the masker this one replaced (rules/masking at BASELINE), read
from git into a temporary package, so both run in the same process on the same
bytes, alternately, best of --repeat runs each (the machine may be shared).
Run: python bench/mask_throughput.py [--megabytes 20] [--read 32768] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from masking import BUILTIN, ENGINE, Masker  # noqa: E402
from masking.samples import sample  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "9d3d28d"  # the last commit with the old masker (rules/masking)
_OLD_FILES = ("__init__.py", "detectors.py", "keyblock.py", "stream.py", "validators.py")


def baseline_masker() -> Any:
    """The old Masker class, from git, or None where the history is not there."""
    target = Path(tempfile.mkdtemp(prefix="mask-bench-")) / "old_masking"
    target.mkdir()
    for name in _OLD_FILES:
        shown = subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{BASELINE}:rules/masking/{name}"],
            capture_output=True,
        )
        if shown.returncode != 0:
            return None
        text = shown.stdout.decode().replace("rules.masking", "old_masking")
        (target / name).write_text(text)
    sys.path.insert(0, str(target.parent))
    from old_masking import Masker as OldMasker  # type: ignore[import-not-found]

    return OldMasker


def _applog(rng: random.Random, lines: int) -> bytes:
    """Access, syslog, JSON and application lines; a secret in about one line in 200."""
    paths = [
        "/api/v1/items",
        "/api/v1/users/42",
        "/healthz",
        "/static/app.js",
        "/login",
        "/metrics",
    ]
    agents = [
        "curl/7.88.1",
        "Mozilla/5.0 (X11; Linux x86_64)",
        "kube-probe/1.29",
        "python-requests/2.31",
    ]
    words = "request handled cache miss retry scheduled job finished worker started connection reset".split()
    rows = []
    fakes = [sample(d, rng)[0].strip() for d in BUILTIN[:60]]
    for i in range(lines):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(1.7e9 + i * 3))
        kind = rng.randrange(5)
        ip = f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
        if kind == 0:
            rows.append(
                f'{ip} - - [{stamp}Z] "GET {rng.choice(paths)}?page={rng.randrange(100)} HTTP/1.1" '
                f'{rng.choice([200, 200, 200, 304, 404, 500])} {rng.randrange(100000)} "-" "{rng.choice(agents)}"'
            )
        elif kind == 1:
            rows.append(
                f"{stamp} web-{rng.randrange(9)} systemd[1]: Started session-{rng.randrange(9999)}.scope "
                f"- Session {rng.randrange(9999)} of User deploy."
            )
        elif kind == 2:
            rows.append(
                f'{{"ts":"{stamp}.{rng.randrange(999):03d}Z","level":"info","msg":"{rng.choice(words)} '
                f'{rng.choice(words)}","duration_ms":{rng.random() * 500:.2f},"trace_id":"{rng.getrandbits(64):016x}"}}'
            )
        elif kind == 3:
            rows.append(
                f"{stamp} INFO  [worker-{rng.randrange(32)}] app.jobs: {rng.choice(words)} "
                f"id={rng.randrange(10**6)} attempt={rng.randrange(5)} elapsed={rng.random():.3f}s"
            )
        else:
            rows.append(
                f"{stamp} kernel: [{rng.random() * 1e5:.6f}] eth0: link up, 1000Mbps, full-duplex"
            )
        if rng.randrange(200) == 0:
            rows.append(f"{stamp} DEBUG config loaded: {rng.choice(fakes).decode('latin-1')}")
    return ("\n".join(rows) + "\n").encode("latin-1")


def _colour(rng: random.Random, lines: int) -> bytes:
    rows = []
    for i in range(lines):
        name = f"file-{rng.getrandbits(24):06x}.{rng.choice(['py', 'txt', 'log', 'so'])}"
        colour = rng.choice([b"01;34", b"01;32", b"00", b"01;36"])
        rows.append(b"-rw-r--r-- 1 deploy deploy %6d Nov 24 10:%02d \x1b[%sm%s\x1b[0m"
                    % (rng.randrange(10**6), i % 60, colour, name.encode()))  # fmt: skip
    return b"\r\n".join(rows) + b"\r\n"


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
    fakes = [sample(d, rng)[0].strip() for d in BUILTIN if "private-key" not in d.name]
    planted = b"".join(
        log * 19 + b"config: " + fakes[i % len(fakes)].replace(b"\n", b" ") + b"\n"
        for i in range(200)
    )
    return {
        "applog": _repeat(_applog(rng, 20000), size),
        "log": _repeat(log, size),
        "prose": _repeat(prose, size),
        "source": _repeat(source, size),
        "digits": _repeat(digits, size),
        "secrets": _repeat(planted, size),
        "colour": _repeat(_colour(rng, 5000), size),
        "binary": os.urandom(size),
    }


def _repeat(block: bytes, size: int) -> bytes:
    return (block * (size // len(block) + 1))[:size]


def measure(make: Any, data: bytes, read: int) -> tuple[float, int]:
    """MB per CPU second of this process (what one core does; waits for the CPU excluded)."""
    masker = make()
    start = time.process_time()
    for offset in range(0, len(data), read):
        masker.feed(data[offset : offset + read])
    masker.flush()
    elapsed = time.process_time() - start
    return len(data) / elapsed / 1e6, sum(masker.counts.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=20)
    parser.add_argument("--read", type=int, default=32768, help="bytes per feed() call")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each; the best is shown")
    args = parser.parse_args()
    size = args.megabytes * 1_000_000
    old = baseline_masker()
    print(
        f"{args.megabytes} MB per corpus, {args.read}-byte reads, Python {sys.version.split()[0]}, "
        f"prefilter: {ENGINE}, {len(BUILTIN)} detectors; MB per CPU second, machine shared\n"
    )
    print(f"{'corpus':<10}{'new MB/s':>10}{'masked':>8}{'old MB/s':>10}{'masked':>8}")
    for name, data in corpora(size).items():
        new_runs, old_runs = [], []
        for _ in range(args.repeat):  # alternate, so that load from others hits both alike
            new_runs.append(measure(Masker, data, args.read))
            if old is not None:
                old_runs.append(measure(lambda: old(binary="pass"), data, args.read))
        rate, masked = max(new_runs)
        if old_runs:
            old_rate, old_masked = max(old_runs)
            print(f"{name:<10}{rate:>10.0f}{masked:>8}{old_rate:>10.0f}{old_masked:>8}")
        else:
            print(f"{name:<10}{rate:>10.0f}{masked:>8}{'-':>10}{'-':>8}")


if __name__ == "__main__":
    main()
