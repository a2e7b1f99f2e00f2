"""Replay timing: scaled by speed, pauses capped by idle_limit, only output shown."""

from __future__ import annotations

import io

import pytest

from recorder import Cast, CastHeader, Event, replay


def make_cast() -> Cast:
    events = [
        Event(0.5, "o", "a"),
        Event(0.6, "i", "typed"),
        Event(10.5, "o", "b"),
        Event(11.0, "r", "80x24"),
        Event(12.5, "o", "c"),
    ]
    return Cast(CastHeader(80, 24), events)


def test_replay_writes_output_only_with_scaled_and_capped_pauses() -> None:
    out, sleeps = io.StringIO(), []
    replay(make_cast(), out, speed=2.0, idle_limit=1.0, sleep=sleeps.append)
    assert out.getvalue() == "abc"
    assert sleeps == pytest.approx([0.25, 0.5, 0.5])


def test_replay_without_limit_keeps_real_gaps() -> None:
    sleeps: list[float] = []
    replay(make_cast(), io.StringIO(), sleep=sleeps.append)
    assert sleeps == pytest.approx([0.5, 10.0, 2.0])


@pytest.mark.parametrize("speed", [0, -1])
def test_replay_refuses_non_positive_speed(speed: float) -> None:
    with pytest.raises(ValueError):
        replay(make_cast(), io.StringIO(), speed=speed, sleep=lambda s: None)
