"""Recording upload lag: how far behind what the agent saw is the recording in S3?

Runs the real S3 recording store (bastion/recordings/s3) against a real
S3-compatible server (Ceph RGW started here, tests/support/ceph_rgw.py, or
`--endpoint` with the AWS_* variables) with a real SQLite catalog. N sessions
write a line stamped with the wall-clock time every 50 ms (as an exec's output
reaches the recording sink); a separate client polls the first session's
uploaded chunks every 50 ms and measures, each time, how old the newest line
visible in storage is. That is the lag a node killed at that moment would
leave (SPEC 10: "within about a second"). Also prints the event-loop lag of
the process doing it. Run: python bench/recording_upload_lag.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))
sys.path.insert(0, str(ROOT))

from ceph_rgw import create_bucket, start_ceph_rgw  # noqa: E402

from bastion.recordings import RecordingHeader, open_recording_store  # noqa: E402
from bastion.recordings.config import RecordingsConfig, Secret  # noqa: E402
from bastion.recordings.s3.layout import contiguous_chunks, parts_prefix  # noqa: E402
from bastion.recordings.s3.objects import ObjectStorage  # noqa: E402
from bastion.store import open_store  # noqa: E402
from bastion.store.records import SessionRecord  # noqa: E402

LINE_EVERY = 0.05


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


async def run(config: RecordingsConfig, sessions: int, seconds: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        db = open_store(f"sqlite://{Path(tmp) / 'bastion.db'}", node="bench", create=True)
        await db.open()
        store = open_recording_store(config, Path(tmp), db, "bench")
        await store.start()
        assert config.s3 is not None
        watcher = ObjectStorage(config.s3, config)
        run_id = uuid.uuid4().hex[:8]
        ids = [f"{run_id}-{n}" for n in range(sessions)]
        for session_id in ids:
            await db.start_session(
                SessionRecord(session_id, "bench", 1, "u", "t", "exec", "x", None, time.time())
            )
        sinks = [
            store.open_session(
                RecordingHeader(i, "bench", 80, 24, int(time.time())), on_failure=print
            )
            for i in ids
        ]
        lags: list[float] = []
        loop_lags: list[float] = []
        stop = asyncio.Event()

        async def write() -> None:
            n = 0
            while not stop.is_set():
                stamp = time.time()
                for sink in sinks:
                    sink.output(b"line %d at %.6f\r\n" % (n, stamp))
                n += 1
                await asyncio.sleep(LINE_EVERY)

        async def watch() -> None:
            seen: dict[str, float] = {}
            newest = 0.0
            while not stop.is_set():
                chunks = contiguous_chunks(await watcher.list(parts_prefix(ids[0])))
                for chunk in chunks:
                    if chunk.key not in seen:
                        data = await watcher.get(chunk.key)
                        stamps = [float(m) for m in re.findall(rb" at (\d+\.\d+)", data)]
                        seen[chunk.key] = max(stamps, default=0.0)
                newest = max(seen.values(), default=newest)
                if newest:
                    lags.append(time.time() - newest)
                await asyncio.sleep(0.05)

        async def ticker() -> None:
            while not stop.is_set():
                before = time.perf_counter()
                await asyncio.sleep(0.005)
                loop_lags.append(time.perf_counter() - before - 0.005)

        tasks = [asyncio.create_task(job()) for job in (write, watch, ticker)]
        await asyncio.sleep(2.0)  # warm up: first requests, first chunks
        lags.clear()
        loop_lags.clear()
        await asyncio.sleep(seconds)
        stop.set()
        await asyncio.gather(*tasks)
        for sink in sinks:
            sink.close()
        await store.stop()
        await db.close()
    return {
        "p50": statistics.median(lags),
        "p99": pct(lags, 0.99),
        "max": max(lags),
        "loop_p99": pct(loop_lags, 0.99) * 1000,
    }


async def bench(env: dict[str, str], args: argparse.Namespace) -> None:
    base = RecordingsConfig(
        url=f"s3://{args.bucket}/lag-{uuid.uuid4().hex[:8]}",
        endpoint=env["AWS_ENDPOINT_URL"],
        region=env.get("AWS_REGION", "us-east-1"),
        access_key_id=env["AWS_ACCESS_KEY_ID"],
        secret_access_key=Secret(env["AWS_SECRET_ACCESS_KEY"]),
    )
    rows = []
    for interval in (0.5, 0.2):
        for sessions in (1, 50):
            config = replace(base, upload_interval=interval)
            rows.append((interval, sessions, await run(config, sessions, args.seconds)))
    print(
        f"\nlag of the newest line in S3 behind the agent, a line every {LINE_EVERY * 1000:.0f} ms"
        f" per session, {args.seconds:.0f} s per row (machine shared with other work)"
    )
    print(
        f"{'upload_interval':>16}{'sessions':>10}{'p50 s':>8}{'p99 s':>8}{'max s':>8}{'loop p99 ms':>13}"
    )
    for interval, sessions, r in rows:
        print(
            f"{interval:>16.1f}{sessions:>10}{r['p50']:>8.2f}{r['p99']:>8.2f}{r['max']:>8.2f}"
            f"{r['loop_p99']:>13.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--bucket", default="bench-lag")
    parser.add_argument(
        "--endpoint", help="an existing S3 endpoint (AWS_* variables, bucket exists)"
    )
    args = parser.parse_args()
    if args.endpoint:
        env = dict(os.environ, AWS_ENDPOINT_URL=args.endpoint)
        asyncio.run(bench(env, args))
        return
    with tempfile.TemporaryDirectory() as tmp, start_ceph_rgw(Path(tmp)) as rgw:
        create_bucket(rgw, args.bucket)
        print(f"Ceph RGW ready in {rgw.started_in:.1f} s at {rgw.endpoint}")
        asyncio.run(bench(rgw.env(), args))


if __name__ == "__main__":
    main()
