"""The projection: what a terminal shows of a line, and the raw bytes behind each character."""

from __future__ import annotations

from masking import projection


def test_stripped_view_maps_spans_back_over_the_escapes_inside() -> None:
    raw = b"key AKIA\x1b[1mIOSF\xe2\x80\x8bODNN7EXAMPLE\x1b[m ok"
    view = projection.stripped(raw, 0, len(raw))
    assert view.text == b"key AKIAIOSFODNN7EXAMPLE ok"
    start = view.text.index(b"AKIA")
    assert view.origin(start, start + 20) == (4, raw.index(b"\x1b[m"))


def test_rendered_view_applies_backspace_carriage_return_and_moves() -> None:
    cases = {
        b"AKIAIOSFX\x08ODNN7EXAMPLE": b"AKIAIOSFODNN7EXAMPLE",
        b"XXXXXXXXODNN7EXAMPLE\rAKIAIOSF": b"AKIAIOSFODNN7EXAMPLE",
        b"AKIAIOSFQQ\x1b[2DODNN7EXAMPLE": b"AKIAIOSFODNN7EXAMPLE",
        b"ODNN7EXAMPLE\x1b[1GAKIAIOSF\x1b[K": b"AKIAIOSF",
        b"AKIA\x1b[1@IOSF": b"AKIAIOSF",
    }
    for raw, shown in cases.items():
        view = projection.rendered(raw, 0, len(raw))
        assert view.text.rstrip() == shown, raw


def test_rendered_view_maps_a_span_to_the_hull_of_its_cells() -> None:
    raw = b"XXXXXXXXODNN7EXAMPLE\rAKIAIOSF"
    view = projection.rendered(raw, 0, len(raw))
    # the X's were overwritten: the characters shown came from bytes 8 to the end
    assert view.origin(0, 20) == (8, len(raw))


def test_controls_reports_the_kinds_present() -> None:
    first, kinds = projection.CONTROLS.find(b"plain text\r\nmore", 0, 16)
    assert first == -1 and not kinds
    first, kinds = projection.CONTROLS.find(b"ab\x1b[31mc\x08d", 0, 10)
    assert first == 0 and {"escape", "bs"} <= kinds
