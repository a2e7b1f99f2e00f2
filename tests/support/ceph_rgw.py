"""A real S3-compatible server for tests: Ceph RGW with one monitor and one in-memory OSD.

Debian's `ceph-mon ceph-osd radosgw ceph-common` (installed by .ci/run). Everything
lives in a temporary directory and listens on 127.0.0.1 with random ports; no
authentication inside the cluster (it is private to the test run), S3 keys for
one user made with radosgw-admin. Start to first answered S3 request takes
about 15 s here, so the fixture using this is session-scoped.

    with start_ceph_rgw(Path(tmp)) as rgw:
        rgw.endpoint, rgw.access_key, rgw.secret_key
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BINARIES = (
    "monmaptool",
    "ceph-mon",
    "ceph-osd",
    "radosgw",
    "radosgw-admin",
    "ceph",
    "ceph-authtool",
)
ACCESS_KEY = "BASTIONTESTACCESSKEY"
SECRET_KEY = "bastion-test-secret-key-0123456789abcdef"


class CephUnavailable(RuntimeError):
    """Ceph is not installed here, or did not come up."""


@dataclass(frozen=True)
class CephRgw:
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    region: str
    root: Path
    started_in: float  # seconds from nothing to a working S3 endpoint

    def env(self) -> dict[str, str]:
        """The standard AWS variables a client reads."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": self.region,
            "AWS_ENDPOINT_URL": self.endpoint,
        }


def missing_binaries() -> list[str]:
    return [name for name in BINARIES if shutil.which(name) is None]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(root: Path, fsid: str, mon_port: int, rgw_port: int) -> str:
    return f"""[global]
fsid = {fsid}
mon host = v1:127.0.0.1:{mon_port}
mon initial members = a
public network = 127.0.0.0/8
auth cluster required = none
auth service required = none
auth client required = none
auth supported = none
ms bind msgr2 = false
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon max pg per osd = 1000
osd crush chooseleaf type = 0
osd crush update on start = false
osd class update on start = false
osd objectstore = memstore
memstore device bytes = 1073741824
osd data = {root}/osd-$id
osd journal size = 0
mon data = {root}/mon-$id
run dir = {root}/run
admin socket = {root}/run/$name.asok
log file = {root}/log/$name.log
pid file = {root}/run/$name.pid
keyring = {root}/keyring
mon warn on pool no redundancy = false
osd max object name len = 460
osd max object namespace len = 64
debug ms = 0

[client.rgw]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {root}/rgw
rgw dns name = 127.0.0.1
rgw thread pool size = 64
rgw enable usage log = false
"""


def _run(argv: list[str], conf: Path, timeout: float = 60) -> str:
    result = subprocess.run(
        [argv[0], "-c", str(conf), *argv[1:]], capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise CephUnavailable(f"{' '.join(argv)} failed: {result.stderr.strip()[-2000:]}")
    return result.stdout


def _wait_http(url: str, deadline: float, process: subprocess.Popen[bytes]) -> None:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CephUnavailable(f"radosgw exited with {process.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # any S3 answer (403 for anonymous) means it serves
        except OSError:
            time.sleep(0.2)
    raise CephUnavailable("radosgw did not answer in time")


@contextmanager
def start_ceph_rgw(root: Path, timeout: float = 90) -> Iterator[CephRgw]:
    """Run a one-node Ceph with RGW under `root` until the block ends."""
    missing = missing_binaries()
    if missing:
        raise CephUnavailable(f"not installed: {', '.join(missing)}")
    begun = time.monotonic()
    deadline = begun + timeout
    for sub in ("mon-a", "osd-0", "run", "log", "rgw"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    mon_port, rgw_port = _free_port(), _free_port()
    conf = root / "ceph.conf"
    fsid = str(uuid.uuid4())
    conf.write_text(_config(root, fsid, mon_port, rgw_port))
    monmap = root / "monmap"
    subprocess.run(
        [
            "monmaptool",
            "--create",
            "--fsid",
            fsid,
            "--addv",
            "a",
            f"[v1:127.0.0.1:{mon_port}]",
            str(monmap),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    keyring = root / "keyring"
    subprocess.run(
        ["ceph-authtool", "--create-keyring", str(keyring), "--gen-key", "-n", "mon."],
        check=True,
        capture_output=True,
        timeout=30,
    )
    processes: list[subprocess.Popen[bytes]] = []
    log = (root / "log" / "daemons.out").open("ab")

    def daemon(argv: list[str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [argv[0], "-c", str(conf), "-f", *argv[1:]],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        processes.append(process)
        return process

    try:
        _run(
            ["ceph-mon", "--mkfs", "-i", "a", "--monmap", str(monmap), "--keyring", str(keyring)],
            conf,
        )
        daemon(["ceph-mon", "-i", "a"])
        osd_uuid = str(uuid.uuid4())
        osd_id = _run(["ceph", "osd", "create", osd_uuid], conf).strip()
        _run(["ceph-osd", "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid], conf)
        _run(
            [
                "ceph",
                "osd",
                "crush",
                "add",
                f"osd.{osd_id}",
                "1.0",
                "host=localhost",
                "root=default",
            ],
            conf,
        )
        daemon(["ceph-osd", "-i", osd_id])
        gateway = daemon(["radosgw", "-n", "client.rgw"])
        _run(
            [
                "radosgw-admin",
                "user",
                "create",
                "--uid",
                "bastion-test",
                "--display-name",
                "bastion tests",
                "--access-key",
                ACCESS_KEY,
                "--secret",
                SECRET_KEY,
            ],
            conf,
            timeout=max(5.0, deadline - time.monotonic()),
        )
        endpoint = f"http://127.0.0.1:{rgw_port}"
        _wait_http(endpoint + "/", deadline, gateway)
        yield CephRgw(
            endpoint=endpoint,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region="us-east-1",
            root=root,
            started_in=time.monotonic() - begun,
        )
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        log.close()


def create_bucket(rgw: CephRgw, bucket: str) -> None:
    """CreateBucket, as a presigned PUT (the bastion itself never creates buckets)."""
    from datetime import timedelta

    import obstore
    from obstore.store import S3Store

    store = S3Store(
        bucket,
        endpoint=rgw.endpoint,
        access_key_id=rgw.access_key,
        secret_access_key=rgw.secret_key,
        region=rgw.region,
        client_options={"allow_http": True},
    )
    url = obstore.sign(store, "PUT", "", timedelta(minutes=5))
    request = urllib.request.Request(url, method="PUT", data=b"")
    with urllib.request.urlopen(request, timeout=60) as answer:
        if answer.status != 200:
            raise CephUnavailable(f"creating bucket {bucket} answered {answer.status}")


def cluster_status(rgw: CephRgw) -> dict[str, object]:
    """`ceph status` as JSON, for a failing test's message."""
    out = _run(["ceph", "status", "--format", "json"], rgw.root / "ceph.conf")
    return dict(json.loads(out))
