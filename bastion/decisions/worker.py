"""A decision worker: a child process that loads the rules once and answers on stdin/stdout.

Frames both ways are a 4-byte big-endian length and a pickle. The first
frame the parent sends is the state dir and the digest of the bastion.toml
it loaded; the worker loads the same file and refuses to serve a different
one (the operator edited it since the server started: restart to apply).
Then each request is `(method, args, kwargs, budget)` and each reply
`("ok", Verdict)`, `("over-budget", seconds)` or `("error", one line)`. The
budget is CPU time, enforced here with a profiling interval timer, so an
expensive line costs at most its budget and the worker lives on, and a busy
machine (which stretches wall time, not CPU time) does not deny ordinary
lines; the parent kills a worker only if it does not answer long past that
(stuck in C code, or starved). The parent is trusted (it started us); nothing else
writes to these pipes.

Run only by bastion.decisions.pool: `python -m bastion.decisions.worker`.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import struct
import sys
from pathlib import Path
from typing import Any, BinaryIO

MAX_FRAME = 16 * 1024 * 1024


def read_frame(stream: BinaryIO) -> Any | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack(">I", header)
    if size > MAX_FRAME:
        raise ValueError(f"frame of {size} bytes refused")
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)


def write_frame(stream: BinaryIO, value: Any) -> None:
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(struct.pack(">I", len(body)) + body)
    stream.flush()


def config_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _decider(root: Path, digest: str) -> Any:
    from bastion.config import load_config
    from bastion.decide import Decider

    config_file = root / "bastion.toml"
    if config_digest(config_file) != digest:
        raise RuntimeError(f"{config_file} changed since the server started; restart it")
    config = load_config(config_file)
    return Decider.from_config(config, root)


def _warm_up() -> tuple[Any, ...]:
    from bastion.identity.model import Identity
    from bastion.targets import Target

    identity = Identity("warm-up", ("warm-up",), (), 0, 0.0)
    target = Target("warm-up", "127.0.0.1", 22, host_key="ssh-ed25519 AAAA")
    return identity, target, "warm-up", "psql -c 'select 1' | grep -c x; cat ~/.bashrc"


class OverBudget(BaseException):
    """The decision ran past its budget (a BaseException: no `except Exception` swallows it)."""


_deciding = False


def _over_budget(signum: int, frame: object) -> None:
    if _deciding:
        raise OverBudget


def _decide(decider: Any, method: str, args: Any, kwargs: Any, budget: float) -> tuple[str, Any]:
    global _deciding
    try:
        _deciding = True
        signal.setitimer(signal.ITIMER_PROF, budget)
        return "ok", getattr(decider, method)(*args, **kwargs)
    except OverBudget:
        return "over-budget", budget
    except Exception as exc:  # Decider fails closed itself; this is a bug, reported
        return "error", f"{type(exc).__name__}: {exc}"[:500]
    finally:
        _deciding = False
        signal.setitimer(signal.ITIMER_PROF, 0)


def main() -> None:
    try:
        os.nice(10)  # decisions yield to the relay's own process when the cores are busy
    except OSError:
        pass
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write to the reply pipe
    hello = read_frame(stdin)
    if hello is None:
        return
    root, digest = hello
    try:
        decider = _decider(Path(root), digest)
    except Exception as exc:  # the parent logs it and decides nothing with us
        write_frame(stdout, ("error", f"decision worker could not load the rules: {exc}"))
        return
    signal.signal(signal.SIGPROF, _over_budget)
    _decide(decider, "command", _warm_up(), {"source": "exec"}, 30.0)  # lazy imports, first parses
    write_frame(stdout, ("ok", "ready"))
    while (request := read_frame(stdin)) is not None:
        method, args, kwargs, budget = request
        write_frame(stdout, _decide(decider, method, args, kwargs, budget))


if __name__ == "__main__":
    main()
