"""The per-channel API the relay calls: feed, deadline, release, flush, events, the screen."""

from __future__ import annotations

import pyte

from masking import BinaryOutput, ChannelMasker, EncodedSecret, Found, ScreenMasked, Stopped
from masking.screen import ScreenMasker

KEY = b"AKIAIOSFODNN7EXAMPLE"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_streams_are_masked_apart_and_a_held_tail_is_due_at_its_deadline() -> None:
    clock = Clock()
    cm = ChannelMasker(clock=clock, hold=0.040, echo=0.005)
    assert cm.feed("stdout", b"out " + KEY[:8]) == b"out "
    assert cm.feed("stderr", b"err " + KEY + b"\n") == b"err [MASKED:aws-access-key]\n"
    assert cm.deadline() == 1000.040
    assert cm.release(1000.039) == {}
    assert cm.release(1000.040) == {"stdout": KEY[:8]}  # released as it was, when due
    assert cm.deadline() is None
    assert cm.feed("stdout", KEY[8:] + b" done\n") == b"[MASKED:aws-access-key] done\n"


def test_flush_releases_every_stream_at_the_end() -> None:
    cm = ChannelMasker(clock=Clock())
    cm.feed("stdout", b"partial")
    cm.feed("stderr", b"also partial")
    assert cm.flush() == {"stdout": b"partial", "stderr": b"also partial"}
    assert not cm.pending


def test_events_merge_repeats_with_a_count_and_name_the_stream() -> None:
    cm = ChannelMasker(clock=Clock())
    cm.feed("stdout", (b"id " + KEY + b"\n") * 3 + b"mail jane@example.com\n")
    cm.feed("stderr", b"id " + KEY + b"\n")
    events = cm.events()
    found = {(e.stream, e.detector): e.count for e in events if isinstance(e, Found)}
    assert found == {
        ("stdout", "aws-access-key"): 3,
        ("stdout", "email"): 1,
        ("stderr", "aws-access-key"): 1,
    }
    assert cm.events() == []  # drained
    assert cm.counts() == {"aws-access-key": 4, "email": 1}


def test_binary_switch_encoded_secrets_and_stops_are_events() -> None:
    cm = ChannelMasker(binary="stop", clock=Clock())
    out = cm.feed("stdout", b"QUtJQUlPU0ZPRE5ON0VYQU1QTEUK\n\x01\x02 " + KEY + b" tail")
    out += cm.flush().get("stdout", b"")
    assert out == b"QUtJQUlPU0ZPRE5ON0VYQU1QTEUK\n\x01\x02 "
    kinds = {type(e) for e in cm.events()}
    assert {EncodedSecret, BinaryOutput, Found, Stopped} <= kinds
    assert cm.stopped and cm.feed("stdout", b"more") == b""


def test_a_file_transfer_channel_is_never_changed_but_reports() -> None:
    cm = ChannelMasker(modify=False, clock=Clock())
    data = b"key=" + KEY + b"\n" + bytes(range(256))
    assert cm.feed("stdout", data) + cm.flush().get("stdout", b"") == data
    assert any(isinstance(e, Found) and not e.masked for e in cm.events())


def test_typed_echo_in_a_terminal_is_not_held_when_echo_is_zero() -> None:
    cm = ChannelMasker(terminal=True, echo=0.0, clock=Clock())
    assert cm.feed("stdout", b"deploy@web1:~$ ") == b"deploy@web1:~$ "
    assert cm.feed("stdout", b"l") == b"l" and cm.feed("stdout", b"s") == b"s"
    assert cm.deadline() is None


def render(data: bytes, cols: int = 60, rows: int = 10) -> str:
    screen = pyte.Screen(cols, rows)
    pyte.ByteStream(screen).feed(data)
    return "\n".join(screen.display)


def test_a_secret_assembled_on_the_screen_by_cursor_moves_is_overwritten() -> None:
    clock = Clock()
    cm = ChannelMasker(terminal=True, screen=(60, 10), clock=clock, hold=0.040, echo=0.0)
    pieces = b"\x1b[2J\x1b[3;9HODNN7EXA\x1b[6;1Hx\x1b[3;17HMPLE\x1b[3;1HAKIAIOSF\x1b[8;1H$ "
    sent = cm.feed("stdout", pieces)
    assert KEY.decode() in render(sent)  # no stream view holds the key: the screen does
    assert cm.deadline() == 1000.040
    clock.now += 0.040
    fix = cm.release()["stdout"]
    shown = render(sent + fix)
    assert KEY.decode() not in shown and shown.splitlines()[2].startswith("*" * 20)
    assert shown.splitlines()[7].startswith("$")  # the cursor went back where it was
    assert any(isinstance(e, ScreenMasked) for e in cm.events())


def test_a_secret_wrapped_at_the_screen_edge_is_overwritten_on_both_rows() -> None:
    screen = ScreenMasker(cols=30, rows=5)
    data = b"\x1b[1;21HAKIAIOSFOD" + b"\x1b[2;1HNN7EXAMPLE"
    screen.feed(data)
    fix, found = screen.corrections()
    assert found and {row for _, row in found} == {0, 1}
    assert KEY.decode() not in render(data + fix, 30, 5).replace("\n", "")


def test_plain_scrolling_output_needs_no_screen_check() -> None:
    screen = ScreenMasker(cols=40, rows=5)
    assert not screen.feed(b"line one\r\nline two\r\n")
    assert screen.corrections() == (b"", [])
