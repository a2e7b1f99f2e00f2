"""The AnsiballZ decoder: real payloads of the installed ansible-core are read back to their
module and arguments; edited, truncated or hostile ones are refused with a reason."""

from __future__ import annotations

import ast
import base64
import io
import json
import zipfile
from pathlib import Path

import pytest

from bastion.ansible import ansiballz
from bastion.ansible.ansiballz import NotAnsiballz, decode, looks_like_ansiballz
from bastion.ansible.known import known_releases, parse_release
from bastion.ansible.manifest import build_manifest

TAIL = '\nif __name__ == "__main__":\n'


@pytest.fixture
def payloads(ansible_payloads: dict[str, str]) -> dict[str, str]:
    return ansible_payloads


def parts(text: str) -> tuple[str, dict[str, object], str]:
    """(the code before the entry point, its literal arguments, date_time's source)."""
    code, _, tail = text.rpartition(TAIL)
    call = ast.parse(TAIL[1:] + tail).body[0].body[0].value  # type: ignore[attr-defined]
    values: dict[str, object] = {}
    date_time = ""
    for keyword in call.keywords:
        if keyword.arg == "date_time":
            date_time = ast.unparse(keyword.value)
        else:
            values[keyword.arg] = ast.literal_eval(keyword.value)
    return code, values, date_time


def rebuild(
    text: str, *, code: str | None = None, date_time: str | None = None, **changes: object
) -> str:
    """The payload with some entry point arguments (or the code) replaced, as Ansible writes it."""
    old_code, values, old_date = parts(text)
    values.update(changes)
    lines = [f"{key}={value!r}," for key, value in values.items()]
    lines.insert(3, f"date_time={date_time or old_date},")
    body = "\n".join(lines)
    return f"{code if code is not None else old_code}{TAIL}    _ansiballz_main(\n{body}\n)\n"


def members(text: str) -> dict[str, bytes]:
    raw = base64.b64decode(parts(text)[1]["zip_data"])  # type: ignore[arg-type]
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def zipped(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> str:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=method) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return base64.b64encode(out.getvalue()).decode()


def params(text: str) -> dict:
    return json.loads(parts(text)[1]["params"])  # type: ignore[arg-type]


# --- what real payloads decode to --------------------------------------------------------


def test_real_payloads_decode_to_their_module_and_arguments(payloads: dict[str, str]) -> None:
    assert set(payloads) >= {"ping", "command", "file", "copy", "stat"}
    assert decode(payloads["ping"]).name == "ping"
    command = decode(payloads["command"])
    assert command.name == "command" and command.args["_raw_params"] == "uptime"
    made = decode(payloads["file"])
    assert made.args["state"] == "directory" and made.args["mode"] == "0700"
    copy = decode(payloads["copy"])
    assert (
        copy.args["dest"].endswith("/copied.txt")
        and copy.args["_original_basename"] == "source.txt"
    )
    stat = decode(payloads["stat"])
    assert stat.ignores_unknown_args  # the copy action's own stat call
    assert command.version in known_releases()


def test_the_comment_free_form_ansible_sends_by_default_decodes_too(
    payloads: dict[str, str],
) -> None:
    from ansible.executor.module_common import _strip_comments  # the transformation Ansible uses

    code, _, _ = parts(payloads["command"])
    shebang, _, wrapper = code.partition("\n")  # Ansible strips before it puts the shebang in
    stripped = rebuild(payloads["command"], code=f"{shebang}\n{_strip_comments(wrapper)}")
    assert len(stripped) < len(payloads["command"])
    assert decode(stripped).args["_raw_params"] == "uptime"


def test_the_shipped_manifest_is_the_installed_ansible_cores(payloads: dict[str, str]) -> None:
    import ansible

    built = build_manifest(Path(ansible.__file__).parent)
    release = parse_release(json.dumps(built))
    shipped = known_releases()[release.version]
    assert shipped == release


def test_looks_like_ansiballz(payloads: dict[str, str]) -> None:
    assert looks_like_ansiballz(payloads["ping"])
    assert not looks_like_ansiballz("#!/usr/bin/python3\nprint('hello')\n")


# --- refused: the code that would run is not ansible-core's ----------------------------


def refused(text: str, fragment: str) -> None:
    with pytest.raises(NotAnsiballz) as caught:
        decode(text)
    assert fragment in str(caught.value), str(caught.value)


def test_edited_wrapper_is_refused(payloads: dict[str, str]) -> None:
    code, _, _ = parts(payloads["ping"])
    edited = code.replace("import os\n", "import os\n    os.system('id')\n", 1)
    refused(rebuild(payloads["ping"], code=edited), "wrapper code is not")


def test_other_comments_are_harmless_but_an_encoding_cookie_is_refused(
    payloads: dict[str, str],
) -> None:
    code, _, _ = parts(payloads["ping"])
    first, _, rest = code.partition("\n")
    assert rest.startswith("\n")  # line 2 is blank: where a cookie would go
    edited = code.replace("# Copyright (c), James Cammarata, 2016", "# edited")
    assert edited != code and decode(rebuild(payloads["ping"], code=edited)).name == "ping"
    cookie = f"{first}\n# -*- coding: utf-7 -*-{rest}"
    refused(rebuild(payloads["ping"], code=cookie), "encoding")
    refused(rebuild(payloads["ping"], code=f"{first}\n\n{rest}"), "wrapper code")  # a line more


def test_carriage_returns_and_nul_are_refused(payloads: dict[str, str]) -> None:
    code, _, _ = parts(payloads["ping"])
    refused(rebuild(payloads["ping"], code=code.replace("\n", "\r\n", 3)), "characters")
    refused(payloads["ping"] + "\0", "characters")


def test_not_a_python_shebang_is_refused(payloads: dict[str, str]) -> None:
    refused("#!/bin/sh" + payloads["ping"][payloads["ping"].index("\n") :], "shebang")


def test_code_after_the_entry_point_is_refused(payloads: dict[str, str]) -> None:
    refused(payloads["ping"] + "import os; os.system('id')\n", "after the entry point")
    more = payloads["ping"].rstrip().removesuffix(")") + ")\n    print(1)\n"
    with pytest.raises(NotAnsiballz):
        decode(more)


def test_a_computed_argument_is_refused(payloads: dict[str, str]) -> None:
    refused(rebuild(payloads["ping"], date_time="__import__('os').system('id')"), "date_time")
    text = payloads["ping"].replace("rlimit_nofile=0,", "rlimit_nofile=len('x'),")
    refused(text, "not a literal")


def test_extensions_debugger_or_coverage_are_refused(payloads: dict[str, str]) -> None:
    refused(rebuild(payloads["ping"], extensions={"_debugpy": {"host": "x"}}), "extensions")


def test_a_module_from_elsewhere_is_refused(payloads: dict[str, str]) -> None:
    refused(
        rebuild(payloads["ping"], module_fqn="ansible_collections.x.y.plugins.modules.ping"),
        "not one of ansible-core's",
    )
    refused(rebuild(payloads["ping"], ansible_module="../../tmp/x"), "does not match")
    refused(rebuild(payloads["ping"], profile="../evil"), "profile")


def test_an_unknown_ansible_version_is_refused(payloads: dict[str, str]) -> None:
    args = params(payloads["ping"])
    args["ANSIBLE_MODULE_ARGS"]["_ansible_version"] = "2.99.0"
    refused(rebuild(payloads["ping"], params=json.dumps(args)), "2.99.0 is not one")


def test_tagged_values_and_unknown_internal_arguments_are_refused(payloads: dict[str, str]) -> None:
    args = params(payloads["command"])
    args["ANSIBLE_MODULE_ARGS"]["_raw_params"] = {"__ansible_type": "x", "value": "id"}
    refused(rebuild(payloads["command"], params=json.dumps(args)), "tagged value")
    args = params(payloads["command"])
    args["ANSIBLE_MODULE_ARGS"]["_ansible_surprise"] = True
    refused(rebuild(payloads["command"], params=json.dumps(args)), "unknown internal")
    args = params(payloads["command"])
    args["ANSIBLE_MODULE_ARGS"]["_ansible_shell_executable"] = "/tmp/evil"
    refused(rebuild(payloads["command"], params=json.dumps(args)), "not a known shell")


def test_an_edited_module_in_the_zip_is_refused(payloads: dict[str, str]) -> None:
    files = members(payloads["command"])
    files["ansible/modules/command.py"] += b"\nimport os; os.system('id')\n"
    refused(rebuild(payloads["command"], zip_data=zipped(files)), "differs from ansible-core")


def test_a_member_ansible_core_does_not_ship_is_refused(payloads: dict[str, str]) -> None:
    files = members(payloads["ping"])
    files["ansible/module_utils/evil.py"] = b"import os\n"
    refused(rebuild(payloads["ping"], zip_data=zipped(files)), "not part of ansible-core")
    files = members(payloads["ping"])
    files["sitecustomize.py"] = b"import os\n"
    refused(rebuild(payloads["ping"], zip_data=zipped(files)), "not part of ansible-core")


def test_the_module_named_must_be_in_the_zip(payloads: dict[str, str]) -> None:
    files = members(payloads["ping"])
    del files["ansible/modules/ping.py"]
    refused(rebuild(payloads["ping"], zip_data=zipped(files)), "does not hold")


def test_the_real_payload_zip_stored_is_accepted(payloads: dict[str, str]) -> None:
    files = members(payloads["ping"])
    text = rebuild(payloads["ping"], zip_data=zipped(files, zipfile.ZIP_STORED))
    assert decode(text).name == "ping"


# --- refused: the zip itself is hostile ----------------------------------------------------


def test_a_zip_bomb_is_refused_before_it_is_inflated(payloads: dict[str, str]) -> None:
    files = members(payloads["ping"])
    files["ansible/modules/ping.py"] = b"\0" * (ansiballz.MAX_MEMBER + 1)
    refused(rebuild(payloads["ping"], zip_data=zipped(files)), "larger than")
    files["ansible/modules/ping.py"] = b"#" * (1 << 20)  # 1 MiB of one byte: ratio ~1000
    refused(rebuild(payloads["ping"], zip_data=zipped(files)), "compressed more than")


def test_a_truncated_payload_or_zip_is_refused(payloads: dict[str, str]) -> None:
    with pytest.raises(NotAnsiballz):
        decode(payloads["ping"][: len(payloads["ping"]) // 2])
    zip_data = parts(payloads["ping"])[1]["zip_data"]
    assert isinstance(zip_data, str)
    raw = base64.b64decode(zip_data)
    refused(
        rebuild(payloads["ping"], zip_data=base64.b64encode(raw[: len(raw) - 100]).decode()),
        "zip",
    )


def test_bytes_around_the_zip_are_refused(payloads: dict[str, str]) -> None:
    zip_data = parts(payloads["ping"])[1]["zip_data"]
    assert isinstance(zip_data, str)
    raw = base64.b64decode(zip_data)
    prepended = base64.b64encode(b"#!/bin/sh\nid\n" + raw).decode()
    refused(rebuild(payloads["ping"], zip_data=prepended), "zip")
    commented = bytearray(raw)
    commented[-2:] = (5).to_bytes(2, "little")
    refused(
        rebuild(payloads["ping"], zip_data=base64.b64encode(bytes(commented) + b"hello").decode()),
        "end record",
    )


def test_duplicate_members_are_refused(payloads: dict[str, str]) -> None:
    files = members(payloads["ping"])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        with pytest.warns(UserWarning):
            archive.writestr("ansible/modules/ping.py", b"import os\n")
    text = rebuild(payloads["ping"], zip_data=base64.b64encode(out.getvalue()).decode())
    refused(text, "twice")


def test_a_member_whose_size_lies_is_refused(payloads: dict[str, str]) -> None:
    zip_data = parts(payloads["ping"])[1]["zip_data"]
    assert isinstance(zip_data, str)
    raw = bytearray(base64.b64decode(zip_data))
    # the first local header's and central entry's uncompressed size, both made smaller
    size = int.from_bytes(raw[22:26], "little")
    raw[22:26] = (size - 1).to_bytes(4, "little")
    central = raw.rfind(b"PK\x01\x02", 0, len(raw))
    first_central = raw.find(b"PK\x01\x02")
    assert central >= first_central > 0
    raw[first_central + 24 : first_central + 28] = (size - 1).to_bytes(4, "little")
    refused(rebuild(payloads["ping"], zip_data=base64.b64encode(bytes(raw)).decode()), "size")


def test_size_limits_are_checked_first() -> None:
    refused("#!/usr/bin/python3\n" + "x" * ansiballz.MAX_PAYLOAD, "larger than")
    refused("#!/usr/bin/python3\nprint(1)\n", "entry point")
