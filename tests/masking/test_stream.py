"""The stream masker: any split of the input gives the same output; flushes; binary; memory."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.masking import WINDOW, Masker, describe
from rules.masking.stream import marker

EVERYDAY = Path(__file__).parent / "everyday"
SECRETS = [example for _, _, example in describe()]
LINES = [
    line + b"\n"
    for path in sorted(EVERYDAY.glob("*.txt"))
    for line in path.read_bytes().splitlines()[:40]
]

fragments = st.one_of(
    st.sampled_from(LINES),
    st.sampled_from(SECRETS).map(lambda s: b" " + s + b" "),
    st.sampled_from(
        [b"\n", b"\r\n", b" ", b"\t", b"-", b"+", b"@", b":", b"0", b"12345 ", b"\x1b[0m"]
    ),
    st.binary(max_size=40).map(lambda b: b.replace(b"\0\0", b"\0")),
)
texts = st.lists(fragments, max_size=30).map(b"".join)


def masked_whole(data: bytes, **kwargs) -> bytes:
    masker = Masker(**kwargs)
    return masker.feed(data) + masker.flush()


def masked_in_pieces(data: bytes, cuts: list[int], **kwargs) -> tuple[bytes, Masker]:
    masker = Masker(**kwargs)
    out, last = [], 0
    for cut in sorted(set(cuts)) + [len(data)]:
        out.append(masker.feed(data[last:cut]))
        last = cut
    out.append(masker.flush())
    return b"".join(out), masker


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=texts, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
def test_any_split_gives_the_same_output_as_one_read(data: bytes, cuts: list[int]) -> None:
    cuts = [c % (len(data) + 1) for c in cuts]
    whole = masked_whole(data)
    pieces, _ = masked_in_pieces(data, cuts)
    assert pieces == whole


@settings(max_examples=200, deadline=None)
@given(data=texts, cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=12))
def test_split_invariance_holds_for_binary_policies_too(data: bytes, cuts: list[int]) -> None:
    cuts = [c % (len(data) + 1) for c in cuts]
    for policy in ("mask", "stop"):
        assert masked_in_pieces(data, cuts, binary=policy)[0] == masked_whole(data, binary=policy)


planted_texts = st.lists(
    st.one_of(
        st.sampled_from(LINES),
        st.sampled_from(SECRETS).map(lambda s: b" " + s + b" \n"),
    ),
    min_size=1,
    max_size=25,
).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(data=planted_texts, cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=15))
def test_a_planted_secret_never_comes_out(data: bytes, cuts: list[int]) -> None:
    cuts = [c % (len(data) + 1) for c in cuts]
    out, masker = masked_in_pieces(data, cuts, binary="mask")
    for secret in SECRETS:
        for line in secret.split(b"\n"):
            if len(line) > 12 and b"-----" not in line:
                assert line not in out
    assert sum(masker.counts.values()) >= sum(data.count(s) for s in SECRETS if b"\n" not in s)


@settings(max_examples=300, deadline=None)
@given(
    chunks=st.lists(st.binary(max_size=300), max_size=20),
    flushes=st.lists(st.booleans(), max_size=20),
    policy=st.sampled_from(["pass", "mask", "stop"]),
)
def test_masker_never_raises_on_any_bytes(
    chunks: list[bytes], flushes: list[bool], policy: str
) -> None:
    masker = Masker(binary=policy)
    for chunk, flush in zip(chunks, flushes + [False] * len(chunks), strict=False):
        masker.feed(chunk)
        if flush:
            masker.flush()
    masker.flush()


def test_secret_split_across_two_reads_is_masked() -> None:
    for secret in SECRETS:
        line = b"value: " + secret + b" end\n"
        for cut in range(1, len(line)):
            masker = Masker()
            out = masker.feed(line[:cut]) + masker.feed(line[cut:]) + masker.flush()
            assert out == masked_whole(line), (secret, cut)
            assert b"[MASKED:" in out and sum(masker.counts.values()) == 1


def test_a_partial_line_is_held_until_the_next_read_or_a_flush() -> None:
    masker = Masker()
    assert masker.feed(b"ok\nuser@host:~$ ") == b"ok\n"
    assert masker.pending == len(b"user@host:~$ ")
    assert masker.flush() == b"user@host:~$ "
    assert masker.pending == 0


def test_after_a_flush_the_rest_of_a_recognisable_secret_is_still_masked() -> None:
    masker = Masker()
    out = masker.feed(b"key AKIAIOSF")
    out += masker.flush()  # the idle timer fired mid-secret
    assert out == b"key AKIAIOSF"
    rest = masker.feed(b"ODNN7EXAMPLE done\n")
    assert rest == b"[MASKED:aws-access-key] done\n"


def test_private_key_masked_from_begin_before_end_arrives() -> None:
    masker = Masker()
    out = masker.feed(b"-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAu1SU1Lf\nVLPHCozMxH2Mo")
    assert out == b"[MASKED:private-key]"
    assert masker.flush() == b""  # a partial base64 line is key material
    assert masker.feed(b"4gHQ\n" * 1000) == b""  # however many reads it spans
    assert masker.feed(b"-----END RSA PRIVATE KEY-----\nnext\n") == b"\nnext\n"
    assert masker.counts == {"private-key": 1}


def test_long_lines_are_released_beyond_the_window_and_memory_stays_bounded() -> None:
    masker = Masker()
    sent = 0
    for _ in range(200):
        sent += len(masker.feed(b"x" * 10_000))  # 2 MB, never a newline
        assert masker.pending <= WINDOW + 10_000
        assert len(masker._buf) <= 2 * WINDOW + 10_000
    assert sent >= 2_000_000 - WINDOW - 10_000


def test_secret_across_the_window_cut_in_a_long_line_is_masked() -> None:
    data = b"y" * (WINDOW + 5000) + b" AKIAIOSFODNN7EXAMPLE " + b"y" * (3 * WINDOW)
    for step in (997, 4096, 65536):
        masker = Masker()
        out = b"".join(masker.feed(data[i : i + step]) for i in range(0, len(data), step))
        out += masker.flush()
        assert b"AKIAIOSFODNN7EXAMPLE" not in out and marker("aws-access-key") in out


def test_text_with_single_nuls_is_still_masked() -> None:
    environ = b"HOME=/root\0AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\0PATH=/usr/bin\0"
    masker = Masker()
    out = masker.feed(environ) + masker.flush()
    assert b"AKIAIOSFODNN7EXAMPLE" not in out
    assert masker.binary_at is None


def test_binary_passes_through_byte_identical_and_is_reported() -> None:
    payload = os.urandom(200_000) + b" AKIAIOSFODNN7EXAMPLE " + os.urandom(1000)
    masker = Masker()
    out = b"".join(masker.feed(payload[i : i + 32768]) for i in range(0, len(payload), 32768))
    out += masker.flush()
    assert out == payload
    assert masker.binary_at is not None and masker.binary_at < 64


def test_text_then_binary_masks_the_text_part_only() -> None:
    data = b"mail jane@example.com\n" + b"\x1f\x8b\x08\x00" + b"jane@example.com"
    masker = Masker()
    out = masker.feed(data) + masker.flush()
    assert out == b"mail [MASKED:email]\n" + b"\x1f\x8b\x08\x00" + b"jane@example.com"
    assert masker.binary_at == len(b"mail jane@example.com\n")  # at the 0x1f


def test_binary_stop_policy_sends_nothing_after_the_switch() -> None:
    masker = Masker(binary="stop")
    assert masker.feed(b"text\n\0\0more") == b"text\n"
    assert masker.feed(b"anything") == b""
    assert masker.binary_at == 5


def test_binary_mask_policy_never_switches() -> None:
    masker = Masker(binary="mask")
    out = masker.feed(b"\x01\x02 AKIAIOSFODNN7EXAMPLE \0\0\n") + masker.flush()
    assert out == b"\x01\x02 [MASKED:aws-access-key] \0\0\n"
    assert masker.binary_at is None
