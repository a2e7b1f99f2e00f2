"""Alert detection without SSH: rules, denial streaks, bursts, volume, cooldowns, config."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.alerts import COOLDOWN, AlertDetector, AlertThresholds
from bastion.config import load_config
from bastion.errors import ConfigError
from bastion.setup_state import initialise
from bastion.statedir import StateDir


def decided(
    detector: AlertDetector,
    decision: str,
    t: float,
    identity: str = "ci",
    rule=None,
    kind: str = "exec",
):
    return detector.audited(
        {
            "kind": kind,
            "identity": identity,
            "decision": decision,
            "rule": rule,
            "command": "x",
            "time": t,
            "session_id": "s1",
            "target": "web1",
        }
    )


def test_an_alert_rule_raises_one_alert_per_match() -> None:
    detector = AlertDetector()
    alerts = decided(detector, "alert", 1.0, rule="base64-of-secrets")
    assert [(a.kind, a.rule, a.session_id) for a in alerts] == [("rule", "base64-of-secrets", "s1")]
    assert [a.kind for a in decided(detector, "alert", 2.0, rule="x")] == ["rule"]
    assert decided(detector, "allow", 3.0) == []


def test_a_denial_streak_alerts_once_and_an_allow_resets_it() -> None:
    detector = AlertDetector(AlertThresholds(denied_streak=3))
    assert decided(detector, "deny", 1.0) == [] and decided(detector, "deny", 2.0) == []
    decided(detector, "allow", 3.0)
    assert decided(detector, "deny", 4.0) == [] and decided(detector, "deny", 5.0) == []
    assert [a.kind for a in decided(detector, "deny", 6.0)] == ["denied-streak"]
    for t in (7.0, 8.0, 9.0):  # within the cooldown: not again
        assert decided(detector, "deny", t) == []
    assert decided(detector, "deny", 6.0 + COOLDOWN + 1, identity="other") == []
    later = [decided(detector, "deny", 6.0 + COOLDOWN + n) for n in (1, 2, 3)]
    assert [a.kind for batch in later for a in batch] == ["denied-streak"]


def test_a_burst_of_commands_alerts() -> None:
    detector = AlertDetector(AlertThresholds(burst_exec=5, burst_seconds=10))
    assert all(decided(detector, "allow", float(t)) == [] for t in range(5))
    [alert] = decided(detector, "allow", 5.0)
    assert alert.kind == "burst" and alert.detail == "more than 5 exec commands within 10 s"
    slow = AlertDetector(AlertThresholds(burst_exec=5, burst_seconds=10))
    assert all(decided(slow, "allow", t * 3.0) == [] for t in range(20))  # spread out: fine


def test_bursts_are_counted_per_kind_with_defaults_an_ansible_run_stays_under() -> None:
    detector = AlertDetector()
    # 90 execs and 900 SFTP requests in 9 s (a busy playbook, an sftp batch): no alert.
    for n in range(900):
        t = n / 100
        assert decided(detector, "allow", t, kind="sftp") == []
        if n % 10 == 0:
            assert decided(detector, "allow", t) == []
    # Lines typed in a shell keep the tight threshold: 31 in a few seconds is a burst.
    lines = [decided(detector, "allow", 10 + n / 10, kind="line") for n in range(31)]
    assert [a.kind for batch in lines for a in batch] == ["burst"]
    assert "shell lines" in lines[-1][0].detail


def test_file_transfers_are_audited_not_alerted_unless_asked() -> None:
    row = {"kind": "masking-off", "identity": "ci", "command": "scp -f /tmp/x", "time": 1.0}
    row["detail"] = "scp file transfer: output not masked"
    assert AlertDetector().audited(row) == []
    assert AlertDetector().audited({**row, "kind": "transfer"}) == []
    loud = AlertDetector(AlertThresholds(alert_on_transfers=True))
    assert [a.kind for a in loud.audited(row)] == ["masking-off"]
    binary = {**row, "command": "cat /bin/ls", "detail": "binary output on stdout from byte 0"}
    assert [a.kind for a in AlertDetector().audited(binary)] == ["masking-off"]


def test_output_volume_and_forward_refusals() -> None:
    detector = AlertDetector(AlertThresholds(output_bytes=1000))
    assert detector.output("ci", "s1", "web1", "the session", 1000) == []
    alert = detector.output("ci", "s1", "web1", "the session", 1001)
    assert alert and alert[0].kind == "output-volume" and "1001 bytes" in alert[0].detail
    refused = detector.forward_refused("ci", "db9:5432", "unknown target 'db9'")
    assert refused and refused[0].kind == "forward-refused" and refused[0].target == "db9:5432"


def test_events_without_a_decision_raise_nothing() -> None:
    detector = AlertDetector(AlertThresholds(denied_streak=2))
    for _ in range(5):
        assert detector.audited({"kind": "refused", "identity": "ci", "detail": "x"}) == []


def test_alert_thresholds_are_validated(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    initialise(state)
    base = state.config_file.read_text()
    state.config_file.write_text(base.replace("# denied_streak = 5", "denied_streak = 3"))
    assert load_config(state.config_file).alerts.thresholds.denied_streak == 3
    for bad in ("denied_streak = 0", 'denied_streak = "5"', "output_bytes = 10"):
        state.config_file.write_text(base.replace("# denied_streak = 5", bad))
        with pytest.raises(ConfigError, match="alerts."):
            load_config(state.config_file)


def test_masking_switched_off_is_an_alert() -> None:
    detector = AlertDetector()
    fields = {
        "kind": "masking-off",
        "identity": "ci",
        "session_id": "s1",
        "time": 5.0,
        "detail": "binary output on stdout at byte 12: passed through unmasked",
    }
    alerts = detector.audited(fields)
    assert [(a.kind, a.session_id) for a in alerts] == [("masking-off", "s1")]
    assert "binary output on stdout" in alerts[0].detail
    assert detector.audited(fields | {"time": 6.0}) == []  # cooldown


def test_counts_from_the_store_decide_streaks_and_bursts() -> None:
    from bastion.store.records import CommandCounts

    # exec commands have their own burst threshold (burst_exec; burst_commands is shell lines)
    detector = AlertDetector(AlertThresholds(denied_streak=3, burst_exec=5, burst_seconds=10))
    row = {"kind": "exec", "identity": "ci", "decision": "deny", "time": 1000.0}
    assert detector.outcome(row) == "deny"
    assert detector.outcome({"kind": "refused", "identity": "ci"}) is None
    # streaks 1 and 2 (seen on other nodes too) raise nothing; the third does
    assert detector.audited(row, CommandCounts(2, 2)) == []
    kinds = [a.kind for a in detector.audited(row, CommandCounts(3, 3))]
    assert kinds == ["denied-streak"]
    burst = [a.kind for a in detector.audited(dict(row, decision="allow"), CommandCounts(0, 6))]
    assert burst == ["burst"]
