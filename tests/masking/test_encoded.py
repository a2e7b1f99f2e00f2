"""Secrets through encoders and transformations: masked where their bytes remain, reported where not.

The encoded forms are made by the real tools (base64, xxd, hexdump, od, gzip, rev,
fold, iconv), run on a file of fake secrets.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from masking import BinaryOutput, EncodedSecret, Found, Masker

SECRETS = (
    b"aws_access_key_id=AKIAIOSFODNN7EXAMPLE\n"
    b"token=ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8\n"
    b"2026-11-24 ok\n"
)


def run(*argv: str, data: bytes = SECRETS) -> bytes:
    if shutil.which(argv[0]) is None:
        if os.environ.get("CI"):  # .ci/run: every tool is there; a missing one is a failure
            pytest.fail(f"{argv[0]} is not installed")
        pytest.skip(f"{argv[0]} is not installed")
    return subprocess.run(argv, input=data, capture_output=True, check=True, timeout=30).stdout


def masked(data: bytes, chunk: int = 0) -> tuple[bytes, list]:
    masker = Masker()
    if chunk:
        out = b"".join(masker.feed(data[i : i + chunk]) for i in range(0, len(data), chunk))
    else:
        out = masker.feed(data)
    out += masker.flush()
    return out, masker.take_events()


@pytest.mark.parametrize(
    ("argv", "encoder"),
    [
        (["base64"], "base64"),
        (["base64", "-w0"], "base64"),
        (["xxd"], "hex (xxd)"),
        (["xxd", "-p"], "hex"),
        (["hexdump", "-C"], "hex (hexdump -C)"),
        (["od", "-x"], "hex (od -x)"),
        (["od", "-c"], "od -c"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_encoded_output_raises_an_event_naming_the_encoder(argv: list[str], encoder: str) -> None:
    _, events = masked(run(*argv))
    found = {(e.encoder, e.detector) for e in events if isinstance(e, EncodedSecret)}
    assert (encoder, "aws-access-key") in found and (encoder, "github-pat") in found, found


@pytest.mark.parametrize("tool", ["gzip", "bzip2", "xz"])
def test_a_compressed_stream_is_decompressed_on_the_side_and_reported(tool: str) -> None:
    data = run(tool, "-c", data=SECRETS * 50)
    out, events = masked(data, chunk=97)
    assert out == data  # a compressed file is never changed
    found = {(e.encoder, e.detector) for e in events if isinstance(e, EncodedSecret)}
    assert {(tool, "aws-access-key"), (tool, "github-pat")} <= found
    assert any(isinstance(e, BinaryOutput) for e in events)


@pytest.mark.parametrize("width", ["1", "2", "3", "5", "8", "16", "30"])
def test_folded_secrets_are_masked_piece_by_piece(width: str) -> None:
    out, events = masked(run("fold", "-w", width))
    flat = out.replace(b"\n", b"")
    assert b"AKIAIOSFODNN7EXAMPLE" not in flat and b"a1B2c3D4e5F6g7H8" not in flat
    assert {e.detector for e in events if isinstance(e, Found)} >= {"aws-access-key", "github-pat"}
    assert out.endswith(b"ok\n") or out.endswith(b"k\n")  # what followed is untouched


def test_reversed_secrets_are_masked() -> None:
    out, _ = masked(run("rev"))
    assert (
        out
        == b"[MASKED:aws-access-key]=di_yek_ssecca_swa\n[MASKED:github-pat]=nekot\nko 42-11-6202\n"
    )


def test_iconv_utf16_output_is_masked() -> None:
    out, _ = masked(run("iconv", "-f", "UTF-8", "-t", "UTF-16LE"))
    assert b"AKIAIOSFODNN7EXAMPLE" not in out.replace(b"\0", b"")
    assert b"[MASKED:aws-access-key]" in out


def test_encodings_of_ordinary_bytes_raise_nothing() -> None:
    plain = run("head", "-c", "4096", "/bin/true", data=b"")
    for argv in (
        ["base64"],
        ["xxd"],
        ["xxd", "-p"],
        ["hexdump", "-C"],
        ["od", "-x"],
        ["gzip", "-c"],
    ):
        out, events = masked(run(*argv, data=plain))
        assert not [e for e in events if isinstance(e, (EncodedSecret, Found))], argv
        if argv[0] != "gzip":
            assert out == run(*argv, data=plain), argv


def test_a_jwt_with_a_tab_or_a_zero_width_space_inside_is_masked() -> None:
    jwt = b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    for inserted in (b"\t", b"\xe2\x80\x8b", b"\t\xe2\x80\x8b"):
        for at in (5, 20, 21, 40, 60, 80):
            text = b"Authorization token " + jwt[:at] + inserted + jwt[at:] + b" end\n"
            out, _ = masked(text)
            assert b"[MASKED:jwt]" in out and b"dozjgNryP4J3" not in out, (at, inserted, out)
