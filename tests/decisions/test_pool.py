"""The decision pool with real worker processes: answers, budget, replacement, fairness, cache."""

from __future__ import annotations

import asyncio
import doctest
import signal
import time
from pathlib import Path

import pytest
from harness import make_state

import bastion.decisions.pool
from bastion.decide import Verdict
from bastion.decisions.pool import DecisionPool, DecisionWorkerError, FairQueue, VerdictCache
from bastion.identity.model import Identity
from bastion.targets import Target

AGENT = Identity("agent", ("deploy",), (), 1, 2e9)
OTHER = Identity("other", ("deploy",), (), 2, 2e9)
WEB1 = Target("web1", "127.0.0.1", 22, host_key="ssh-ed25519 AAAA")


@pytest.fixture(scope="module")
def state_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_state(tmp_path_factory.mktemp("pool") / "state").root


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def costly(state_root: Path) -> tuple[str, float]:
    """A line that costs the rules at least 50 ms of CPU here, and what it costs.

    Grown until it does, so the budget tests hold however fast the engine gets.
    """
    from bastion.config import load_config
    from bastion.decide import Decider

    config = load_config(state_root / "bastion.toml")
    decider = Decider.from_names(
        config.rules.policy, config.rules.default_action, state_root, config.roles
    )
    count = 50
    while True:
        line = "cat " + " ".join(f"/e*/s*{i}[a-z]?/{i}*" for i in range(count))
        # measured warm: a first call also pays for compiling the pack, which the
        # pool's workers have done before their first line
        decider.command(AGENT, WEB1, "deploy", line, source="exec")
        start = time.process_time()
        decider.command(AGENT, WEB1, "deploy", line, source="exec")
        cost = time.process_time() - start
        if cost >= 0.05 or count >= 200_000:
            return line, cost
        count *= 2


def test_module_examples_hold() -> None:
    assert doctest.testmod(bastion.decisions.pool).failed == 0


def test_workers_decide_as_the_rules_say(state_root: Path) -> None:
    async def go() -> tuple[Verdict, Verdict, Verdict]:
        pool = DecisionPool(state_root, workers=2)
        await pool.start()
        try:
            return (
                await pool.command(AGENT, WEB1, "deploy", "cat /etc/shadow", source="exec"),
                await pool.command(AGENT, WEB1, "deploy", "uptime", source="exec"),
                await pool.line(AGENT, WEB1, "deploy", "rm -rf /", certain=True, reason=None),
            )
        finally:
            await pool.close()

    shadow, uptime, rm = run(go())
    assert shadow.action == "deny" and shadow.rule == "credential-read"
    assert uptime.allowed
    assert rm.action == "deny"


def test_a_decision_over_its_budget_is_denied_and_the_worker_lives_on(
    state_root: Path, costly: tuple[str, float]
) -> None:
    line, cost = costly

    async def go() -> tuple[Verdict, Verdict, bool]:
        pool = DecisionPool(state_root, workers=1, budget=cost / 5)
        await pool.start()
        try:
            first = pool._workers[0]  # noqa: SLF001 - which process answered
            slow = await pool.command(AGENT, WEB1, "deploy", line, source="exec")
            pool.budget = 30.0
            after = await pool.command(AGENT, WEB1, "deploy", "echo two", source="exec")
            return slow, after, first is pool._workers[0]  # noqa: SLF001
        finally:
            await pool.close()

    slow, after, same_worker = run(go())
    assert slow.action == "deny" and slow.rule == "decision-budget"
    assert after.allowed and same_worker


def test_a_worker_that_does_not_answer_is_killed_and_replaced(state_root: Path) -> None:
    async def go() -> tuple[Verdict, Verdict, bool]:
        pool = DecisionPool(state_root, workers=1)
        await pool.start()
        try:
            first = pool._workers[0]  # noqa: SLF001
            first.proc.send_signal(signal.SIGSTOP)  # stuck: neither answers nor dies
            pool.budget, pool.hard_margin = 0.1, 0.5
            stuck = await pool.command(AGENT, WEB1, "deploy", "echo one", source="exec")
            pool.budget = 30.0
            after = await pool.command(AGENT, WEB1, "deploy", "echo two", source="exec")
            return stuck, after, first is not pool._workers[0]  # noqa: SLF001
        finally:
            await pool.close()

    stuck, after, replaced = run(go())
    assert stuck.rule == "decision-budget" and after.allowed and replaced


def test_one_identity_never_holds_every_worker(state_root: Path) -> None:
    """While one agent keeps both workers busy, another's decision is served next."""

    heavy = "cat " + " ".join(f"/e*/s*{i}[a-z]?" for i in range(2000))  # costly to decide

    async def go() -> list[str]:
        pool = DecisionPool(state_root, workers=2, budget=0.3)
        await pool.start()
        order: list[str] = []

        async def decide(identity: Identity, command: str) -> None:
            await pool.command(identity, WEB1, "deploy", command, source="exec")
            order.append(identity.name)

        try:
            flood = [decide(AGENT, f"{heavy} {i}") for i in range(6)]
            tasks = [asyncio.ensure_future(c) for c in flood]
            await asyncio.sleep(0)
            other = asyncio.ensure_future(decide(OTHER, "echo other"))
            await asyncio.gather(*tasks, other)
            return order
        finally:
            await pool.close()

    order = run(go())
    assert order.index("other") == 0  # served beside the flood (one worker left free), not after it


def test_a_changed_config_stops_the_workers_from_starting(tmp_path: Path) -> None:
    state = make_state(tmp_path / "state")
    pool = DecisionPool(state.root, workers=1)
    with state.config_file.open("a") as handle:
        handle.write("\n# edited after the server started\n")

    async def go() -> None:
        await pool.start()

    with pytest.raises(DecisionWorkerError, match="changed since the server started"):
        run(go())


def test_repeated_exec_commands_are_answered_from_the_cache(state_root: Path) -> None:
    async def go() -> tuple[bool, str | None]:
        pool = DecisionPool(state_root, workers=1, hard_margin=0.5)
        await pool.start()
        try:
            await pool.command(AGENT, WEB1, "deploy", "uptime", source="exec")
            pool._workers[0].proc.send_signal(signal.SIGSTOP)  # noqa: SLF001 - no worker answers now
            again = await pool.command(AGENT, WEB1, "deploy", "uptime", source="exec")
            other_login = await pool.command(AGENT, WEB1, "root", "uptime", source="exec")
            return again.allowed, other_login.rule
        finally:
            await pool.close()

    assert run(go()) == (True, "decision-budget")


def test_the_cache_is_bounded_in_bytes() -> None:
    cache = VerdictCache(max_bytes=16_000)
    verdict = Verdict("allow", None, "")
    for i in range(1000):
        cache.put(("k", i), verdict, 500)
    assert cache.bytes <= 16_000 and len(cache) == 32
    cache.put(("huge",), verdict, 5_000)  # one entry may not take more than a sixteenth
    assert cache.get(("huge",)) is None


def test_fair_queue_rotates_owners_and_respects_limits() -> None:
    queue = FairQueue(limit=2)
    for i in range(3):
        queue.push("a", f"a{i}")
    queue.push("b", "b0")
    assert [queue.pop(), queue.pop(), queue.pop(), queue.pop()] == ["a0", "b0", "a1", None]
    queue.done("a")
    assert queue.pop() == "a2"
