"""An exec command that is not UTF-8 runs nowhere, and the audit log says it was asked.

asyncssh refuses such a request before the bastion's code sees it; the
bastion's channel passes the bytes on so the refusal is audited.
"""

from __future__ import annotations

import pytest
from harness import TARGET_NAME, TEST_LOGIN, Agent, BastionProcess, audit_rows

COMMAND = b"echo ran-\xff-\xfe"  # what `ssh host $'echo ran-\xff-\xfe'` sends
SHOWN = "b'echo ran-\\xff-\\xfe'"


def refused_rows(bastion: BastionProcess) -> list:
    return [
        r
        for r in audit_rows(bastion.state)
        if r.kind == "refused" and SHOWN in (r.detail or "") and r.identity == "test-agent"
    ]


@pytest.mark.parametrize(
    ("how", "args"),
    [
        ("jump", ("-J", "bastion", f"{TEST_LOGIN}@{TARGET_NAME}")),
        ("direct", (f"{TEST_LOGIN}%{TARGET_NAME}@bastion",)),
        ("on the bastion", ("bastion",)),
    ],
)
def test_a_non_utf8_exec_is_refused_with_126_and_audited(
    agent: Agent, bastion: BastionProcess, how: str, args: tuple[str, ...]
) -> None:
    before = len(refused_rows(bastion))
    result = agent.run(*args, COMMAND)  # type: ignore[arg-type]  # argv may be bytes
    assert result.returncode == 126, (how, result.stderr)
    assert result.stdout == b""  # nothing ran
    message = f"bastion: command is not valid UTF-8, not run: {SHOWN}\n".encode()
    assert message in result.stderr, result.stderr
    rows = refused_rows(bastion)
    assert len(rows) == before + 1  # written before the agent was answered
    if how != "on the bastion":
        assert (rows[-1].target, rows[-1].login) == (TARGET_NAME, TEST_LOGIN)
