"""The prompt-mark scanner: this session's marks come out, everything else passes, split or not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.relay.prompt_marks import NONCE_REDACTED, Mark, MarkScanner

NONCE = "f00dfeed1234"
D = f"\x1b]133;D;7;bastion={NONCE}\x07".encode()
A = f"\x1b]133;A;bastion={NONCE};t=tok9\x07".encode()
B = f"\x1b]133;B;bastion={NONCE}\x1b\\".encode()  # ST-terminated
STREAM = b"output\r\n" + D + A + b"user@web1:~$ " + B


def scan_all(scanner: MarkScanner, chunks: list[bytes]) -> list[object]:
    pieces: list[object] = []
    for chunk in chunks:
        pieces += scanner.feed(chunk)
    tail = scanner.flush()
    if tail:
        pieces.append(tail)
    return merge(pieces)


def merge(pieces: list[object]) -> list[object]:
    merged: list[object] = []
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += piece
        elif piece != b"":
            merged.append(piece)
    return merged


EXPECTED = [b"output\r\n", Mark("D", 7), Mark("A", token="tok9"), b"user@web1:~$ ", Mark("B")]


def test_marks_come_out_in_order_with_their_fields() -> None:
    assert scan_all(MarkScanner(NONCE), [STREAM]) == EXPECTED


def test_split_at_every_byte() -> None:
    assert scan_all(MarkScanner(NONCE), [STREAM[i : i + 1] for i in range(len(STREAM))]) == EXPECTED


@settings(max_examples=300, deadline=None)
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_result(cuts: list[int]) -> None:
    points = sorted(set(cuts) | {0, len(STREAM)})
    chunks = [STREAM[a:b] for a, b in zip(points, points[1:], strict=False)]
    assert scan_all(MarkScanner(NONCE), chunks) == EXPECTED


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=300), cut=st.integers(min_value=0, max_value=300))
def test_output_without_our_marks_passes_unchanged(data: bytes, cut: int) -> None:
    if NONCE.encode() in data:
        return
    scanner = MarkScanner(NONCE)
    out = merge(scanner.feed(data[:cut]) + scanner.feed(data[cut:]) + [scanner.flush()])
    assert out == ([data] if data else [])


def test_marks_with_another_nonce_or_none_pass_through_untouched() -> None:
    foreign = b"\x1b]133;A;bastion=deadbeef\x07\x1b]133;D;0\x07\x1b]133;C\x1b\\"
    assert scan_all(MarkScanner(NONCE), [foreign]) == [foreign]


def test_the_nonce_is_cut_out_of_any_output_even_split() -> None:
    leak = f"printf '\\033]133;D;%s;bastion={NONCE}\\007'".encode()
    out = scan_all(MarkScanner(NONCE), [leak[:30], leak[30:40], leak[40:]])
    assert out == [leak.replace(NONCE.encode(), NONCE_REDACTED)]


def test_a_long_osc_is_not_ours_and_is_passed() -> None:
    long = b"\x1b]133;A;" + b"x" * 400 + f";bastion={NONCE}\x07".encode()
    out = scan_all(MarkScanner(NONCE), [long])
    assert all(isinstance(p, bytes) for p in out)
    assert b"".join(out) == long.replace(NONCE.encode(), NONCE_REDACTED)


def test_a_held_tail_is_released_by_flush() -> None:
    scanner = MarkScanner(NONCE)
    assert scanner.feed(b"abc\x1b]13") == [b"abc"]
    assert scanner.pending
    assert scanner.flush() == b"\x1b]13" and not scanner.pending


def test_bad_status_and_unknown_kinds() -> None:
    scanner = MarkScanner(NONCE)
    odd = f"\x1b]133;D;x;bastion={NONCE}\x07\x1b]133;Z;bastion={NONCE}\x07".encode()
    assert scanner.feed(odd) == [Mark("D", None), Mark("Z")]  # ours, never output
