"""Operating the bastion: JSON logs, Prometheus metrics, health and readiness, limits.

A bastion of its own with `[server] metrics` on a free port, JSON logs, and a
cap of two connections per identity; everything is scraped with a real
HTTP client (urllib) and driven with the real ssh client.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import (
    TARGET_NAME,
    BastionProcess,
    audit_rows,
    bastion_with_target,
    make_agent,
    wait_until,
)
from prometheus_client.parser import text_string_to_metric_families

from bastion.localsshd import free_port


@pytest.fixture(scope="module")
def ops(
    tmp_path_factory: pytest.TempPathFactory, test_login: str
) -> Iterator[tuple[BastionProcess, int]]:
    port = free_port()

    def configure(text: str) -> str:
        return text.replace(
            "max_connections_per_identity = 100",
            f'max_connections_per_identity = 2\nmetrics = "127.0.0.1:{port}"',
        )

    with bastion_with_target(
        tmp_path_factory.mktemp("ops"),
        test_login,
        edit=configure,
        serve_args=("--log-format", "json"),
    ) as bastion:
        assert wait_until(lambda: _get(port, "/healthz")[0] == 200, 10)
        yield bastion, port


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _samples(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, text = _get(port, "/metrics")
    assert status == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


def test_health_and_readiness(ops, tmp_path: Path) -> None:
    bastion, port = ops
    assert _get(port, "/healthz") == (200, "ok\n")
    status, body = _get(port, "/readyz")
    assert status == 200, body
    assert json.loads(body) == {
        "ready": True,
        "checks": {"database": "ok", "recordings": "ok", "keys": "ok"},
    }
    assert _get(port, "/nowhere")[0] == 404
    recordings = bastion.state.root / "recordings"  # the default local store's spool
    moved = recordings.with_name("recordings.moved")
    recordings.rename(moved)
    recordings.write_text("not a directory")  # root ignores permissions; a file does not
    try:
        status, body = _get(port, "/readyz")
        assert status == 503 and "recordings directory" in json.loads(body)["checks"]["recordings"]
    finally:
        recordings.unlink()
        moved.rename(recordings)
    assert _get(port, "/readyz")[0] == 200


def test_metrics_count_sessions_decisions_refusals_and_bytes(
    ops, tmp_path: Path, test_login: str
) -> None:
    bastion, port = ops
    before = _samples(port)
    agent = make_agent(tmp_path / "agent", bastion.state, bastion.port, identity="metrics-agent")
    dest = f"{test_login}@{TARGET_NAME}"
    assert agent.run("-J", "bastion", dest, "echo counted").returncode == 0
    assert agent.run("-J", "bastion", dest, "cat /etc/shadow").returncode == 126
    assert agent.run("-J", "bastion", f"{test_login}@nowhere", "true").returncode == 255
    after = wait_until(
        lambda: (
            (s := _samples(port))
            and _value(s, "bastion_relayed_bytes_total", direction="out")
            > _value(before, "bastion_relayed_bytes_total", direction="out")
            and s
        ),
        10,
    )
    assert after, "bytes relayed never showed up in /metrics"

    def grew(name: str, by: float = 1, **labels: str) -> bool:
        return _value(after, name, **labels) - _value(before, name, **labels) >= by

    assert grew("bastion_sessions_started_total", 2, kind="exec")
    assert grew("bastion_decisions_total", 1, source="exec", action="allow")
    assert grew("bastion_decisions_total", 1, source="exec", action="deny", rule="credential-read")
    assert grew("bastion_decision_seconds_count", 2, source="exec")
    assert grew("bastion_refusals_total")
    assert grew("bastion_alerts_total", 1, kind="forward-refused")
    assert grew("bastion_upstream_connect_seconds_count")
    assert _value(after, "bastion_sessions_open") == 0
    assert ("bastion_requests_pending", ()) in after
    assert _value(after, "bastion_build_info") == 1


def test_connections_per_identity_are_capped(ops, tmp_path: Path, test_login: str) -> None:
    bastion, port = ops
    agent = make_agent(tmp_path / "agent", bastion.state, bastion.port, identity="greedy-agent")
    dest = f"{test_login}@{TARGET_NAME}"
    held = [
        subprocess.Popen(agent.ssh("-J", "bastion", dest, "sleep 20"), stdin=subprocess.DEVNULL)
        for _ in range(2)
    ]
    try:
        assert wait_until(lambda: _value(_samples(port), "bastion_connections_open") >= 2, 15), (
            "the two held connections never opened"
        )
        third = agent.run("-J", "bastion", dest, "true")
        assert third.returncode == 255
        assert b"too many connections for greedy-agent (2 open, at most 2)" in third.stderr

        def refused() -> bool:  # the refusal's row is queued, not awaited
            rows = [r for r in audit_rows(bastion.state) if r.identity == "greedy-agent"]
            return any(r.kind == "refused" and "too many" in (r.detail or "") for r in rows)

        assert wait_until(refused, 10)
        assert wait_until(  # /metrics renders at most once a second
            lambda: (
                _value(
                    _samples(port), "bastion_connections_refused_total", reason="per-identity-limit"
                )
                >= 1
            ),
            5,
        )
    finally:
        for process in held:
            process.kill()
            process.wait(timeout=10)
    other = make_agent(tmp_path / "other", bastion.state, bastion.port, identity="patient-agent")
    assert other.run("-J", "bastion", dest, "true").returncode == 0  # the cap is per identity


def test_the_json_log_has_one_object_per_line_with_refusals_and_a_clean_stop(
    tmp_path: Path, test_login: str
) -> None:
    with bastion_with_target(tmp_path, test_login, serve_args=("--log-format", "json")) as bastion:
        agent = make_agent(tmp_path / "agent", bastion.state, bastion.port, identity="log-agent")
        assert agent.run("-J", "bastion", f"{test_login}@nowhere", "true").returncode == 255
        command = "echo " + "x" * 5000
        assert agent.run("-J", "bastion", f"{test_login}@{TARGET_NAME}", command).returncode == 0
        time.sleep(0.5)
        bastion.stop(signal.SIGTERM)
        assert bastion.process.returncode == 0
    lines = bastion.log().splitlines()
    records = [json.loads(line) for line in lines]  # every line parses
    events = [r["event"] for r in records]
    assert "bastion.start" in events
    assert events[-2:] == ["bastion.stopping", "bastion.stop"]
    assert "SIGTERM" in records[-2]["message"]
    refused = [r for r in records if r["event"] == "refused"]
    assert refused and refused[0]["identity"] == "log-agent" and "nowhere" in refused[0]["message"]
    assert all(len(line) < 4000 for line in lines), max(len(line) for line in lines)
    cut = [r for r in records if "x" * 100 in r["message"]]
    assert cut and all("[cut: " in r["message"] for r in cut)
    assert os.path.getsize(bastion.log_path) < 200_000
