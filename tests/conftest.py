"""Shared fixtures: a real sshd target, a bastion process, and an agent's ssh config.

Everything listens on 127.0.0.1 only and stops at the end of the session.
The target login is an unprivileged account the fixtures create, so a
command wrongly let through can do little harm.
"""

from __future__ import annotations

import os

import pytest
from harness import (
    TARGET_NAME,
    TEST_LOGIN,
    Agent,
    BastionProcess,
    make_agent,
    make_state,
    start_bastion,
    state_store,
)
from postgres import available as postgres_missing
from postgres import start_postgres

from bastion.localsshd import LocalSshd, ensure_unprivileged_user, start_sshd
from bastion.statedir import StateDir
from bastion.targets import Target


@pytest.fixture(scope="session")
def ceph_rgw(tmp_path_factory: pytest.TempPathFactory):
    """A real S3-compatible server (Ceph RGW: one monitor, one in-memory OSD) on 127.0.0.1,
    with one bucket, `bastion-test`, for the whole run. Installed by .ci/run; where it is
    not installed the tests that need it are skipped, except under CI, where they fail."""
    from ceph_rgw import CephUnavailable, create_bucket, missing_binaries, start_ceph_rgw

    missing = missing_binaries()
    if missing:
        message = f"Ceph RGW is not installed ({', '.join(missing)}); .ci/run installs it"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    try:
        with start_ceph_rgw(tmp_path_factory.mktemp("ceph")) as rgw:
            create_bucket(rgw, S3_BUCKET)
            print(f"\nCeph RGW ready in {rgw.started_in:.1f} s at {rgw.endpoint}")
            yield rgw
    except CephUnavailable as exc:
        pytest.fail(f"Ceph RGW did not start: {exc}")


S3_BUCKET = "bastion-test"


@pytest.fixture(scope="session")
def test_login() -> str:
    if os.geteuid() != 0:
        pytest.fail("the e2e fixtures create an unprivileged login and need root (CI runs as root)")
    return ensure_unprivileged_user(TEST_LOGIN)


@pytest.fixture(scope="session")
def postgres_server():
    reason = postgres_missing()
    if reason is not None:
        pytest.fail(reason)  # CI installs it (.ci/run); a missing server is a failure, not a skip
    server = start_postgres()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def state(tmp_path_factory: pytest.TempPathFactory) -> StateDir:
    root = tmp_path_factory.mktemp("bastion-state")
    return make_state(root / "state")


@pytest.fixture(scope="session")
def target_sshd(state: StateDir, test_login: str, tmp_path_factory: pytest.TempPathFactory):
    ca = (state.keys / "target_ca.pub").read_text()
    sshd = start_sshd(tmp_path_factory.mktemp("sshd"), trusted_user_ca=ca, allow_user=test_login)
    with state_store(state) as store:
        store.add_target(Target(TARGET_NAME, "127.0.0.1", sshd.port, host_key=sshd.host_key_pub))
    yield sshd
    sshd.stop()


@pytest.fixture(scope="session")
def bastion(state: StateDir, target_sshd: LocalSshd):
    proc = start_bastion(state)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def agent(bastion: BastionProcess, tmp_path_factory: pytest.TempPathFactory) -> Agent:
    # The whole suite shares this agent: its certificate must outlive the run (CI machines vary).
    return make_agent(tmp_path_factory.mktemp("agent"), bastion.state, bastion.port, ttl=12 * 3600)
