"""A real PostgreSQL server for tests: Debian's postgresql-15, initdb in a temporary
directory, listening on a random port of 127.0.0.1 only, stopped at the end."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass
class PostgresServer:
    directory: Path
    port: int
    process: subprocess.Popen[bytes]
    _databases: int = 0

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self, prefix: str = "t") -> str:
        """A fresh, empty database; its URL."""
        self._databases += 1
        name = f"{prefix}{self._databases}_{os.getpid()}"
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.url(name)

    def psql(self, sql: str, database: str = "postgres") -> str:
        result = subprocess.run(
            [str(BIN / "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
             "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", database, "-c", sql],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # SIGTERM: smart shutdown; then fast
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.directory, ignore_errors=True)


def available() -> str | None:
    """Why PostgreSQL cannot run here, or None."""
    if not (BIN / "initdb").is_file():
        return f"{BIN}/initdb missing: apt-get install postgresql-15"
    return None


def _as_postgres(argv: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root: run them as the `postgres` user
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_postgres() -> PostgresServer:
    # under /tmp, not a pytest tmp dir below /root: the postgres user must be able to enter it
    directory = Path(tempfile.mkdtemp(prefix="bastion-pg-", dir="/tmp"))
    data = directory / "data"
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    subprocess.run(
        _as_postgres([str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                      "--locale=C.UTF-8", "-E", "UTF8", "--no-sync"]),
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    for _ in range(5):
        port = _free_port()
        process = subprocess.Popen(
            _as_postgres([str(BIN / "postgres"), "-D", str(data), "-h", "127.0.0.1",
                          "-p", str(port), "-k", str(directory), "-c", "fsync=off",
                          "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                          "-c", "max_connections=200"]),
            stdout=subprocess.DEVNULL, stderr=open(directory / "postgres.log", "wb"),
        )  # fmt: skip
        server = PostgresServer(directory, port, process)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            ready = subprocess.run(
                [str(BIN / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)], timeout=10
            )
            if ready.returncode == 0:
                return server
            time.sleep(0.1)
        if process.poll() is None:
            process.kill()
            process.wait()
    log = (directory / "postgres.log").read_text(errors="replace")[-2000:]
    shutil.rmtree(directory, ignore_errors=True)
    raise RuntimeError(f"PostgreSQL did not start: {log}")
