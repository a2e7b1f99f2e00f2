"""Event-loop lag while uploading to S3: which client can share a loop with the relay?

The bastion's data path runs on one asyncio loop; the recording uploader runs
on the same loop. A client that does its HTTP, signing or hashing on the loop
thread (or holds the GIL for long) delays every session's bytes. This bench
starts a real S3-compatible server (Ceph RGW, tests/support/ceph_rgw.py), or
uses `--endpoint` with the standard AWS variables, and for each client uploads
the same objects (create-only PUTs, as the uploader does) while a ticker on
the loop measures how late `asyncio.sleep(0.005)` wakes up.

  idle          the ticker alone (the baseline)
  obstore       obstore.put_async (Rust, its own tokio runtime)
  aiobotocore   aiobotocore on the loop (aiohttp)
  boto3-thread  boto3 put_object in asyncio.to_thread

Needs the bench extra: pip install -e '.[bench]'. Run: python bench/s3_loop_lag.py
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from ceph_rgw import start_ceph_rgw  # noqa: E402

TICK = 0.005
Uploader = Callable[[str, bytes], Awaitable[None]]


async def measure(
    upload: Uploader | None, count: int, size: int, parallel: int
) -> dict[str, float]:
    """Run `count` uploads of `size` bytes, `parallel` at a time, while ticking."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(TICK)
            lags.append(time.perf_counter() - before - TICK)

    tick = asyncio.create_task(ticker())
    body = os.urandom(size)
    started = time.perf_counter()
    if upload is None:
        await asyncio.sleep(2.0)
    else:
        run = uuid.uuid4().hex
        gate = asyncio.Semaphore(parallel)

        async def one(index: int) -> None:
            async with gate:
                await upload(f"bench/{run}/{index:06d}", body)

        await asyncio.gather(*(one(i) for i in range(count)))
    elapsed = time.perf_counter() - started
    stop.set()
    await tick
    lags.sort()
    return {
        "p50": statistics.median(lags) * 1000,
        "p99": lags[int(len(lags) * 0.99) - 1] * 1000,
        "max": lags[-1] * 1000,
        "mbps": 0.0 if upload is None else count * size / elapsed / 1e6,
    }


async def obstore_client(env: dict[str, str], bucket: str) -> Uploader:
    import obstore
    from obstore.store import S3Store

    store = S3Store(
        bucket,
        endpoint=env["AWS_ENDPOINT_URL"],
        access_key_id=env["AWS_ACCESS_KEY_ID"],
        secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region=env["AWS_REGION"],
        client_options={"allow_http": True},
    )

    async def upload(key: str, body: bytes) -> None:
        await obstore.put_async(store, key, body, mode="create", use_multipart=False)

    return upload


async def aiobotocore_client(env: dict[str, str], bucket: str) -> Uploader:
    from aiobotocore.session import get_session

    session = get_session()
    context = session.create_client("s3", **botocore_args(env))
    client = await context.__aenter__()

    async def upload(key: str, body: bytes) -> None:
        await client.put_object(Bucket=bucket, Key=key, Body=body, IfNoneMatch="*")

    upload.close = lambda: context.__aexit__(None, None, None)  # type: ignore[attr-defined]
    return upload


def botocore_args(env: dict[str, str]) -> dict[str, str]:
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "region_name": env["AWS_REGION"],
    }


def boto3_client(env: dict[str, str], bucket: str) -> Uploader:
    import boto3
    from botocore.config import Config

    client = boto3.client("s3", config=Config(max_pool_connections=32), **botocore_args(env))

    async def upload(key: str, body: bytes) -> None:
        await asyncio.to_thread(
            client.put_object, Bucket=bucket, Key=key, Body=body, IfNoneMatch="*"
        )

    return upload


async def make_bucket(env: dict[str, str], bucket: str) -> None:
    import boto3

    client = boto3.client("s3", **botocore_args(env))
    await asyncio.to_thread(client.create_bucket, Bucket=bucket)


async def bench(env: dict[str, str], args: argparse.Namespace) -> None:
    bucket = f"lag-{uuid.uuid4().hex[:12]}"
    await make_bucket(env, bucket)
    clients: list[tuple[str, Uploader | None]] = [
        ("idle", None),
        ("obstore", await obstore_client(env, bucket)),
        ("aiobotocore", await aiobotocore_client(env, bucket)),
        ("boto3-thread", boto3_client(env, bucket)),
    ]
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _ in clients}
    for _ in range(args.rounds):  # interleaved rounds: load on the machine hits all alike
        for name, upload in clients:
            results[name].append(await measure(upload, args.count, args.size, args.parallel))
    for _, upload in clients:
        close = getattr(upload, "close", None)
        if close is not None:
            await close()
    print(
        f"\n{args.count} create-only PUTs of {args.size // 1024} KiB, {args.parallel} in flight,"
        f" ticker every {TICK * 1000:.0f} ms; median of {args.rounds} rounds"
    )
    print(f"{'client':<14}{'lag p50 ms':>12}{'lag p99 ms':>12}{'lag max ms':>12}{'MB/s':>8}")
    for name, rows in results.items():
        row = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        print(
            f"{name:<14}{row['p50']:>12.2f}{row['p99']:>12.2f}{row['max']:>12.1f}{row['mbps']:>8.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--size", type=int, default=256 * 1024)
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--endpoint", help="use this S3 endpoint (AWS_* variables) instead of starting Ceph"
    )
    args = parser.parse_args()
    if args.endpoint:
        env = {key: os.environ[key] for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
        env["AWS_ENDPOINT_URL"] = args.endpoint
        env["AWS_REGION"] = os.environ.get("AWS_REGION", "us-east-1")
        asyncio.run(bench(env, args))
        return
    with tempfile.TemporaryDirectory() as tmp, start_ceph_rgw(Path(tmp)) as rgw:
        print(f"Ceph RGW ready in {rgw.started_in:.1f} s at {rgw.endpoint}")
        asyncio.run(bench(rgw.env(), args))


if __name__ == "__main__":
    main()
