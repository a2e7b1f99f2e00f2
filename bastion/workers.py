"""`bastion serve --workers N`: N bastion processes on one machine sharing one port.

Each worker is a node of its own (NAME-w1 ... NAME-wN) on the shared store,
started as `bastion serve` in a child process. The port is shared one of
two ways (`--share`):

- `inherit` (default): this supervisor binds the port once and the workers
  inherit the listening socket and compete to accept from it;
- `reuseport`: every worker binds the port with SO_REUSEPORT and the kernel
  spreads new connections across them by a hash of the address.

bench/nodes.py measures both; the inherited socket spread sessions more
evenly there (48/47 against 39/62). The supervisor restarts a worker
that dies (at most MAX_RESTARTS within RESTART_WINDOW seconds, then it stops
them all and fails) and on SIGTERM or SIGINT stops every worker and exits.
"""

from __future__ import annotations

import logging
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from bastion.config import parse_listen
from bastion.errors import BastionError

log = logging.getLogger("bastion.workers")

MAX_WORKERS = 64
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
STOP_TIMEOUT = 15.0
SHARE_MODES = ("reuseport", "inherit")


@dataclass
class Worker:
    index: int
    node: str
    process: subprocess.Popen[bytes] | None = None
    restarts: deque[float] = field(default_factory=deque)


def worker_argv(
    state_dir: Path, listen: str, node: str, log_level: str, share: str, fd: int | None
) -> list[str]:
    argv = [
        sys.executable, "-m", "bastion", "serve", "--state-dir", str(state_dir),
        "--listen", listen, "--node", node, "--log-level", log_level,
    ]  # fmt: skip
    if share == "inherit":
        argv += ["--listen-fd", str(fd)]
    else:
        argv += ["--reuse-port"]
    return argv


def bound_socket(listen: str) -> socket.socket:
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def run_workers(
    state_dir: Path, listen: str, workers: int, base: str, log_level: str, share: str
) -> int:
    """Supervise `workers` processes until a signal; returns the exit status."""
    if not 1 <= workers <= MAX_WORKERS:
        raise BastionError(f"--workers must be from 1 to {MAX_WORKERS}")
    if share not in SHARE_MODES:
        raise BastionError(f"--share must be {' or '.join(SHARE_MODES)}")
    sock = bound_socket(listen) if share == "inherit" else None
    fd = sock.fileno() if sock is not None else None
    if sock is not None:
        listen = "{}:{}".format(*sock.getsockname()[:2])
    pool = [Worker(i, f"{base}-w{i}") for i in range(1, workers + 1)]
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    def spawn(worker: Worker) -> None:
        argv = worker_argv(state_dir, listen, worker.node, log_level, share, fd)
        worker.process = subprocess.Popen(argv, pass_fds=(fd,) if fd is not None else ())
        log.info("worker %s started (pid %s)", worker.node, worker.process.pid)

    status = 0
    try:
        for worker in pool:
            spawn(worker)
        while not stopping:
            time.sleep(0.2)
            for worker in pool:
                assert worker.process is not None
                code = worker.process.poll()
                if code is None or stopping:
                    continue
                now = time.monotonic()
                worker.restarts.append(now)
                while worker.restarts and worker.restarts[0] < now - RESTART_WINDOW:
                    worker.restarts.popleft()
                if len(worker.restarts) > MAX_RESTARTS:
                    log.error("worker %s keeps dying (status %s); stopping", worker.node, code)
                    stopping, status = True, 1
                    break
                log.warning("worker %s exited with status %s; restarting", worker.node, code)
                spawn(worker)
    finally:
        _stop_all(pool)
        if sock is not None:
            sock.close()
    return status


def _stop_all(pool: list[Worker]) -> None:
    running = [w.process for w in pool if w.process is not None and w.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
