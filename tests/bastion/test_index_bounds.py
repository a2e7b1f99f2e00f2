"""Indexing an ended session is bounded: in what it reads, and in the CPU it takes."""

from __future__ import annotations

import time
from pathlib import Path

from bastion.search import CpuShare, extract
from recorder import AsciicastWriter


def test_output_past_the_budget_is_counted_not_read(tmp_path: Path) -> None:
    path = tmp_path / "big.cast"
    writer = AsciicastWriter.create(path, width=80, height=24, title="big")
    line = b"x" * 79 + b"\n"
    for _ in range(32):  # 2 MiB
        writer.output(line * (64 * 1024 // len(line)))
        writer.flush()
    writer.close()
    with path.open("ab") as handle:  # garbage after the budget: reading it would raise
        handle.write(b"not json at all\n")
    found = extract(path, "exec", max_chars=256 * 1024)
    assert found.lines and found.skipped_chars > (1 << 20)


def test_cpu_share_keeps_a_busy_loop_to_its_share() -> None:
    pace = CpuShare(0.25)
    wall, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - wall < 1.0:
        sum(range(20000))  # busy
        pace.pace()
    used = (time.process_time() - cpu) / (time.monotonic() - wall)
    assert used < 0.25 + 0.1
