"""When the target cannot be used, the agent gets one line and exit status 255."""

from __future__ import annotations

import asyncssh
from harness import TEST_LOGIN, Agent, BastionProcess, audit_rows, state_store, wait_until

from bastion.localsshd import LocalSshd, free_port
from bastion.targets import Target


def _add_target(bastion: BastionProcess, target: Target) -> None:
    with state_store(bastion.state) as store:
        if store.get_target(target.name) is None:
            store.add_target(target)


def _audited(bastion: BastionProcess, target: str, text: str) -> bool:
    return wait_until(
        lambda: any(
            r.kind == "upstream-error" and r.target == target and text in (r.detail or "")
            for r in audit_rows(bastion.state)
        )
    )


def test_host_key_mismatch_is_refused(
    agent: Agent, bastion: BastionProcess, target_sshd: LocalSshd
) -> None:
    wrong = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    _add_target(bastion, Target("web1-wrongkey", "127.0.0.1", target_sshd.port, host_key=wrong))
    result = agent.run("-J", "bastion", f"{TEST_LOGIN}@web1-wrongkey", "echo should-not-run")
    assert result.returncode == 255
    assert b"should-not-run" not in result.stdout
    assert b"bastion: host key verification failed for target web1-wrongkey" in result.stderr
    assert _audited(bastion, "web1-wrongkey", "host key verification failed")


def test_target_down_is_reported(agent: Agent, bastion: BastionProcess) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
    _add_target(bastion, Target("down1", "127.0.0.1", free_port(), host_key=key))
    result = agent.run("-J", "bastion", f"{TEST_LOGIN}@down1", "true")
    assert result.returncode == 255
    assert b"bastion: cannot reach target down1" in result.stderr
    assert _audited(bastion, "down1", "cannot reach target")


def test_target_refusing_login_is_reported(agent: Agent, bastion: BastionProcess, tmp_path) -> None:
    """A cert whose principal the target does not allow (AllowUsers) fails upstream."""
    from harness import make_agent

    other = make_agent(tmp_path, bastion.state, bastion.port, principals=("nobody",))
    result = other.run("-J", "bastion", "nobody@web1", "true")
    assert result.returncode == 255
    assert b"bastion: target web1 refused login 'nobody'" in result.stderr
    assert _audited(bastion, "web1", "refused login")


def test_target_verified_by_host_ca(
    agent: Agent, bastion: BastionProcess, test_login: str, tmp_path
) -> None:
    """`targets add --host-ca`: the bastion accepts a target whose host certificate that CA signed."""
    from bastion.localsshd import start_sshd

    ca = asyncssh.generate_private_key("ssh-ed25519")
    target_ca = (bastion.state.keys / "target_ca.pub").read_text()
    sshd = start_sshd(
        tmp_path / "sshd", trusted_user_ca=target_ca, allow_user=test_login, host_ca=ca
    )
    try:
        ca_line = ca.export_public_key().decode()
        _add_target(bastion, Target("web-ca", "127.0.0.1", sshd.port, host_ca=ca_line))
        result = agent.run("-J", "bastion", f"{TEST_LOGIN}@web-ca", "echo via-host-ca")
        assert result.returncode == 0, result.stderr
        assert result.stdout == b"via-host-ca\n"
        other_ca = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        _add_target(bastion, Target("web-otherca", "127.0.0.1", sshd.port, host_ca=other_ca))
        refused = agent.run("-J", "bastion", f"{TEST_LOGIN}@web-otherca", "echo should-not-run")
        assert refused.returncode == 255
        assert b"host key verification failed for target web-otherca" in refused.stderr
    finally:
        sshd.stop()
