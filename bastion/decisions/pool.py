"""Decisions off the event loop: a pool of worker processes, fair between identities.

Parsing a hostile line can cost far more than relaying bytes, so no rule is
ever evaluated in the server's own process: each decision goes to a worker
(bastion/decisions/worker.py, one per core by default) over a pipe, and the
event loop only waits. Three things keep one agent from stalling the rest:

- a budget of CPU time per decision, kept by the worker itself (a
  profiling timer): a line over it is not understood (the roles'
  unknown_action: held for review by default); a worker that does not
  answer long past its budget is killed and replaced;
- fairness: waiting decisions are served round-robin by identity, and one
  identity never holds every worker at once (with two or more workers);
- a cache of exec and SFTP verdicts (bounded in bytes): the same command
  for the same identity, target and login is answered without a worker.

Workers run at a lower CPU priority than the relay process.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import pickle
import struct
import sys
import time
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bastion import metrics
from bastion.decide import Decider, Verdict
from bastion.decisions.worker import MAX_FRAME, config_digest
from bastion.identity.model import Identity
from bastion.targets import Target
from rules import Context

log = logging.getLogger("bastion.decisions")

DEFAULT_BUDGET = 0.5  # CPU seconds a decision may take in a worker
# A worker that has not answered this long (wall time) after its budget is stuck: killed.
HARD_MARGIN = 10.0
START_TIMEOUT = 60.0
CACHE_BYTES = 8 * 1024 * 1024
CACHEABLE_COMMAND = 4096  # longer commands are decided afresh every time

OVER_BUDGET = Verdict(
    "deny", "decision-budget", "the bastion could not decide this command in time; not run"
)
FAILED = Verdict("deny", "internal-error", "the bastion could not evaluate this command")


class DecisionWorkerError(Exception):
    """A worker could not start or answer."""


class _Worker:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.busy = False

    @classmethod
    async def start(cls, root: Path, digest: str) -> _Worker:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bastion.decisions.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = cls(proc)
        try:
            status, detail = await asyncio.wait_for(worker.ask((str(root), digest)), START_TIMEOUT)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            await worker.stop()
            raise DecisionWorkerError(f"a decision worker did not start: {exc!r}") from None
        if status != "ok":
            await worker.stop()
            raise DecisionWorkerError(str(detail))
        return worker

    async def ask(self, value: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        self.proc.stdin.write(struct.pack(">I", len(body)) + body)
        await self.proc.stdin.drain()
        (size,) = struct.unpack(">I", await self.proc.stdout.readexactly(4))
        if size > MAX_FRAME:
            raise DecisionWorkerError(f"a worker sent a frame of {size} bytes")
        return pickle.loads(await self.proc.stdout.readexactly(size))

    def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass

    async def stop(self) -> None:
        self.kill()
        await self.proc.wait()


@dataclass
class _Job:
    owner: str
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    future: asyncio.Future[Verdict] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class VerdictCache:
    """Least recently used verdicts, bounded by the bytes of their keys."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: collections.OrderedDict[Hashable, tuple[Verdict, int]] = (
            collections.OrderedDict()
        )

    def get(self, key: Hashable) -> Verdict | None:
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: Hashable, verdict: Verdict, size: int) -> None:
        if key in self._items or size > self.max_bytes // 16:
            return
        self._items[key] = (verdict, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped

    def __len__(self) -> int:
        return len(self._items)


class FairQueue:
    """Waiting work, handed out round-robin by owner, each owner limited in what it runs at once.

    >>> q = FairQueue(limit=1)
    >>> for item in ("a1", "a2", "a3"): q.push("alice", item)
    >>> q.push("bob", "b1")
    >>> q.pop(), q.pop(), q.pop()  # alice is at her limit until a1 is done
    ('a1', 'b1', None)
    >>> q.done("alice"); q.pop()
    'a2'
    """

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._queues: dict[str, collections.deque[Any]] = {}
        self._turns: collections.deque[str] = collections.deque()  # owners with work, in turn
        self._running: collections.Counter[str] = collections.Counter()
        self._owner_of: dict[int, str] = {}

    def push(self, owner: str, item: Any) -> None:
        queue = self._queues.get(owner)
        if queue is None:
            queue = self._queues[owner] = collections.deque()
            self._turns.append(owner)
        queue.append(item)

    def pop(self) -> Any | None:
        for _ in range(len(self._turns)):
            owner = self._turns.popleft()
            if self._running[owner] >= self.limit:
                self._turns.append(owner)  # its turn comes again when one of its items is done
                continue
            queue = self._queues[owner]
            item = queue.popleft()
            if queue:
                self._turns.append(owner)
            else:
                del self._queues[owner]
            self._running[owner] += 1
            return item
        return None

    def done(self, owner: str) -> None:
        self._running[owner] -= 1
        if self._running[owner] <= 0:
            del self._running[owner]

    def drain(self) -> list[Any]:
        items = [item for queue in self._queues.values() for item in queue]
        self._queues.clear()
        self._turns.clear()
        return items


class DecisionPool:
    def __init__(
        self,
        state_root: Path,
        *,
        workers: int,
        budget: float = DEFAULT_BUDGET,
        hard_margin: float = HARD_MARGIN,
        cache_bytes: int = CACHE_BYTES,
        decider: Decider | None = None,
    ) -> None:
        self._root = state_root
        # The parent's own Decider (no rules run here): what a line past its budget gets,
        # the unknown_action of the identity's roles. Without one, past budget denies.
        self._decider = decider
        self._digest = config_digest(state_root / "bastion.toml")
        self._size = max(1, workers)
        self.budget = budget
        self.hard_margin = hard_margin
        self.cache = VerdictCache(cache_bytes)
        self._workers: list[_Worker] = []
        # One identity never holds every worker at once (when there are two or more).
        self._waiting = FairQueue(limit=max(1, self._size - 1))
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    async def start(self) -> None:
        started = await asyncio.gather(
            *(_Worker.start(self._root, self._digest) for _ in range(self._size)),
            return_exceptions=True,
        )
        self._workers = [w for w in started if isinstance(w, _Worker)]
        failures = [w for w in started if isinstance(w, BaseException)]
        if failures:
            await self.close()
            raise failures[0]
        log.info("%d decision workers started", len(self._workers))

    async def close(self) -> None:
        self._closed = True
        for worker in self._workers:
            await worker.stop()
        for job in self._waiting.drain():
            if not job.future.done():
                job.future.set_result(FAILED)

    # --- what callers ask --------------------------------------------------------------

    async def command(
        self,
        identity: Identity,
        target: Target,
        login: str,
        command: str,
        *,
        source: str,
        context: Context | None = None,
    ) -> Verdict:
        """Decide a command; with `context` (what earlier lines of a shell set up) the
        verdict is never cached: it depends on that context too."""
        started = time.perf_counter()
        if context is not None:
            verdict = await self._submit(
                identity.name,
                "command",
                (identity, target, login, command),
                {"source": source, "context": context},
            )
        else:
            verdict = await self._command(identity, target, login, command, source)
        metrics.decision(source, verdict.action, verdict.rule, time.perf_counter() - started)
        return verdict

    async def _command(
        self, identity: Identity, target: Target, login: str, command: str, source: str
    ) -> Verdict:
        key = None
        if len(command) <= CACHEABLE_COMMAND:
            key = _cache_key(identity, target, login, command, source)
            cached = self.cache.get(key)
            if cached is not None:
                return cached
        verdict = await self._submit(
            identity.name, "command", (identity, target, login, command), {"source": source}
        )
        if key is not None and verdict.rule not in ("decision-budget", "internal-error"):
            self.cache.put(key, verdict, len(command) + 256)
        return verdict

    async def line(
        self,
        identity: Identity,
        target: Target,
        login: str,
        line: str,
        *,
        certain: bool,
        reason: str | None,
        context: Context | None = None,
    ) -> Verdict:
        started = time.perf_counter()
        verdict = await self._submit(
            identity.name,
            "line",
            (identity, target, login, line),
            {"certain": certain, "reason": reason, "context": context},
        )
        metrics.decision("line", verdict.action, verdict.rule, time.perf_counter() - started)
        return verdict

    async def carried(
        self,
        identity: Identity,
        target: Target,
        login: str,
        command: str,
        record: Any,
        env: dict[str, str],
        pipelined: str | None = None,
        payload: str | None = None,
    ) -> Verdict:
        """Decider.carried in a worker: a CarriedVerdict, or a denying Verdict on failure."""
        return await self._submit(
            identity.name,
            "carried",
            (identity, target, login, command, record, env, pipelined, payload),
            {},
        )

    # --- scheduling ----------------------------------------------------------------------

    async def _submit(
        self, owner: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Verdict:
        if self._closed or not self._workers:
            return FAILED
        job = _Job(owner, method, args, kwargs)
        self._waiting.push(owner, job)
        self._dispatch()
        return await job.future

    def _dispatch(self) -> None:
        for worker in self._workers:
            if worker.busy:
                continue
            job = self._waiting.pop()
            if job is None:
                return
            worker.busy = True
            task = asyncio.ensure_future(self._run(worker, job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _run(self, worker: _Worker, job: _Job) -> None:
        verdict = FAILED
        replace = False
        try:
            status, value = await asyncio.wait_for(
                worker.ask((job.method, job.args, job.kwargs, self.budget)),
                self.budget + self.hard_margin,
            )
            if status == "ok" and isinstance(value, Verdict):
                verdict = value
            elif status == "over-budget":
                verdict = self._past_budget(job)
                log.warning(
                    "a decision for %s ran past its %.2f s budget: %s",
                    job.owner,
                    value,
                    verdict.action,
                )
            else:
                log.error("decision worker error: %s", value)
        except TimeoutError:
            log.warning(
                "a decision worker for %s did not answer within %.1f s; replaced, denied",
                job.owner,
                self.budget + self.hard_margin,
            )
            verdict, replace = self._past_budget(job), True
        except Exception as exc:  # the worker died or broke the protocol: fail closed
            log.error("decision worker failed: %r", exc)
            replace = True
        finally:
            self._waiting.done(job.owner)
            if not job.future.done():
                job.future.set_result(verdict)
        if replace:
            await self._replace(worker)
        else:
            worker.busy = False
        self._dispatch()

    def _past_budget(self, job: _Job) -> Verdict:
        """A line past its budget is not understood (SPEC 4): the roles' unknown_action."""
        if self._decider is None:
            return OVER_BUDGET
        identity, target, login = job.args[:3]
        return self._decider.not_understood(
            identity, target, login, f"not read within its {self.budget:g} s budget"
        )

    async def _replace(self, worker: _Worker) -> None:
        await worker.stop()
        if self._closed:
            return
        index = self._workers.index(worker)
        try:
            self._workers[index] = await _Worker.start(self._root, self._digest)
        except DecisionWorkerError as exc:
            log.error("%s; %d workers left", exc, len(self._workers) - 1)
            del self._workers[index]


def _cache_key(
    identity: Identity, target: Target, login: str, command: str, source: str
) -> Hashable:
    roles = tuple(role.name for role in identity.grants.roles) if identity.grants else None
    labels = tuple(sorted(target.labels.items()))
    return (identity.name, identity.groups, roles, target.name, labels, login, source, command)
