"""An agent that goes away while its command is held cancels the request, cleanly."""

from __future__ import annotations

import subprocess

from harness import (
    TARGET_NAME,
    TEST_LOGIN,
    Agent,
    BastionProcess,
    audit_rows,
    state_store,
    wait_until,
)

DEST = f"{TEST_LOGIN}@{TARGET_NAME}"


def test_a_disconnect_while_held_cancels_the_request_without_an_error(
    agent: Agent, bastion: BastionProcess
) -> None:
    command = "uname -m"  # held for review by the test policy
    log_before = len(bastion.log())
    client = subprocess.Popen(
        agent.ssh("-J", "bastion", DEST, command), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )

    def pending() -> int | None:
        with state_store(bastion.state) as store:
            rows = [
                r for r in store.list_requests() if r.command == command and r.state == "pending"
            ]
        return rows[-1].id if rows else None

    request_id = wait_until(pending, 20)
    assert request_id
    client.kill()  # the agent vanishes: no EOF, no exit
    client.communicate(timeout=10)

    def state() -> str:
        with state_store(bastion.state) as store:
            return store.get_request(request_id).state

    assert wait_until(lambda: state() == "cancelled", 15), state()
    rows = wait_until(
        lambda: [
            r
            for r in audit_rows(bastion.state)
            if r.kind == "review-cancelled" and f"request {request_id}" in (r.detail or "")
        ]
    )
    assert rows and "the agent disconnected" in rows[0].detail
    log = bastion.log()[log_before:]
    assert "Traceback" not in log and "internal error" not in log
    assert not any(
        r.kind == "error" and r.session_id == rows[0].session_id for r in audit_rows(bastion.state)
    )
