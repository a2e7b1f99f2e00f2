"""The reviewer's side without SSH: verb parsing, who may decide, and atomic outcomes
(the store's contract suite races them on both backends)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bastion import admin_verbs, approvals
from bastion.admin_verbs import AdminCommand, parse
from bastion.approvals import Reviewer, check_reason, parse_grant
from bastion.config import load_config
from bastion.errors import ConfigError, NotAllowed, NotFound, UsageError
from bastion.identity.roles import Grants, Role
from bastion.notify import check_webhook_url
from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.store import BlockingStore, RequestClosed, open_store
from bastion.store.records import NewRequest
from rules import PolicyError, load_policy

REVIEWERS = Grants((Role("reviewers", {"groups": ("ops",)}, targets=("web*",), approve=True),))
NOT_REVIEWERS = Grants((Role("agents", {"groups": ("ci",)}, targets=("web*",)),))


@pytest.fixture()
def db(tmp_path: Path):
    state = StateDir(tmp_path / "state")
    initialise(state)
    with BlockingStore(open_store(state.store_url(), node="test")) as store:
        yield store


def new_request(
    db: BlockingStore, *, identity: str = "ci-agent", target: str = "web1", needed: int = 1
) -> int:
    now = time.time()
    request = NewRequest(
        identity=identity,
        target=target,
        login="deploy",
        command="psql -c 'DROP TABLE t'",
        rule="drop-needs-review",
        session_id="s1",
        created=now,
        expires=now + 60,
        approvals_needed=needed,
    )
    return db.create_request(request).id


def decide(db: BlockingStore, *args, **kwargs) -> str:
    return db.call(approvals.decide(db.store, *args, **kwargs))


def run(db: BlockingStore, reviewer: Reviewer, command: AdminCommand) -> str:
    return db.call(admin_verbs.run(db.store, reviewer, command))


def state(db: BlockingStore, request_id: int) -> tuple[str, str | None, str | None]:
    found = db.request_state(request_id)
    return found.state, found.reviewer, found.reason


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("requests", AdminCommand("list")),
        ("requests --all --json", AdminCommand("list", include_decided=True, as_json=True)),
        ("requests show 42", AdminCommand("show", 42)),
        ("show 42", AdminCommand("show", 42)),
        (
            "approve 42 --reason 'change 1234' --for 30m",
            AdminCommand("approve", 42, "change 1234", "30m"),
        ),
        ("approve 42 --reason=ok", AdminCommand("approve", 42, "ok")),
        ("deny 7 --reason 'not now'", AdminCommand("deny", 7, "not now")),
    ],
)
def test_verbs_parse(line: str, expected: AdminCommand) -> None:
    assert parse(line) == expected


@pytest.mark.parametrize(
    "line",
    [
        "",
        "rm -rf /",
        "approve",
        "approve x",
        "approve 1 2",
        "deny 1 --for 30m",
        "approve 1 --reason",
        "requests --bogus",
        "approve 1; deny 1",
        "approve '1",
        "a" * 5000,
    ],
)
def test_bad_verbs_are_usage_errors(line: str) -> None:
    with pytest.raises(UsageError):
        parse(line)


def test_a_reviewer_needs_an_approving_role_for_the_target(db: BlockingStore) -> None:
    request_id = new_request(db)
    with pytest.raises(NotAllowed, match="no approving role for target 'web1'"):
        decide(db, Reviewer("mallory", grants=NOT_REVIEWERS), request_id, approve=True)
    with pytest.raises(NotAllowed):
        decide(db, Reviewer("nobody", grants=None), request_id, approve=True)
    other = new_request(db, target="db1")
    with pytest.raises(NotAllowed, match="'db1'"):
        decide(db, Reviewer("alice", grants=REVIEWERS), other, approve=True)
    assert decide(db, Reviewer("alice", grants=REVIEWERS), request_id, approve=True) == (
        f"request {request_id} approved"
    )
    assert state(db, request_id)[:2] == ("approved", "alice")


def test_nobody_decides_their_own_request_and_local_names_are_reserved(db: BlockingStore) -> None:
    request_id = new_request(db, identity="alice")
    with pytest.raises(NotAllowed, match="your own"):
        decide(db, Reviewer("alice", grants=REVIEWERS), request_id, approve=False)
    with pytest.raises(NotAllowed, match="reserved"):
        decide(db, Reviewer("local:root", grants=REVIEWERS), request_id, approve=True)
    assert state(db, request_id)[0] == "pending"
    decide(db, Reviewer("local:op", local=True), request_id, approve=False, reason="no")
    assert state(db, request_id) == ("denied", "local:op", "no")


def test_two_approvers_and_a_grant(db: BlockingStore) -> None:
    request_id = new_request(db, needed=2)
    alice, bob = Reviewer("alice", grants=REVIEWERS), Reviewer("bob", grants=REVIEWERS)
    assert "approval 1 of 2" in decide(db, alice, request_id, approve=True)
    with pytest.raises(RequestClosed, match="already approved"):
        decide(db, alice, request_id, approve=True)
    assert state(db, request_id)[0] == "pending"
    assert "passes for 1800s" in decide(db, bob, request_id, approve=True, grant_seconds=1800)
    grant = db.active_grant(
        identity="ci-agent",
        target="web1",
        login="deploy",
        command="psql -c 'DROP TABLE t'",
        now=time.time(),
    )
    assert grant and grant.request_id == request_id and grant.granted_by == "bob"
    assert (
        db.active_grant(
            identity="ci-agent",
            target="web1",
            login="deploy",
            command="psql -c 'DROP TABLE t'",
            now=time.time() + 1801,
        )
        is None
    )
    assert (
        db.active_grant(
            identity="other",
            target="web1",
            login="deploy",
            command="psql -c 'DROP TABLE t'",
            now=time.time(),
        )
        is None
    )


def test_grant_lengths_and_reasons_are_bounded() -> None:
    assert parse_grant("30m") == 1800
    with pytest.raises(UsageError):
        parse_grant("13h")
    with pytest.raises(UsageError):
        parse_grant("soon")
    assert check_reason("change 1234: approved") == "change 1234: approved"
    for bad in ("x" * 501, "ok\x1b[2J", "ok\x9b2J", "two\nlines"):
        with pytest.raises(UsageError):
            check_reason(bad)


def test_racing_reviewers_in_separate_connections_get_one_outcome(db: BlockingStore) -> None:
    for _ in range(5):
        request_id = new_request(db)
        results: list[str] = []

        def attempt(
            name: str, approve: bool, request_id: int = request_id, results: list[str] = results
        ) -> None:
            with BlockingStore(open_store(db.store.url, node=name)) as own:
                try:
                    decide(own, Reviewer(name, local=True), request_id, approve=approve)
                    results.append(name)
                except RequestClosed:
                    pass

        threads = [
            threading.Thread(target=attempt, args=(f"local:r{i}", i % 2 == 0)) for i in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert len(results) == 1, results
        outcome, reviewer, _ = state(db, request_id)
        assert outcome in ("approved", "denied") and reviewer == results[0]


def test_listing_shows_a_reviewer_only_their_targets(db: BlockingStore) -> None:
    mine, theirs = new_request(db, target="web1"), new_request(db, target="db1")
    text = run(db, Reviewer("alice", grants=REVIEWERS), parse("requests"))
    assert f"\n{mine} " in text and f"\n{theirs} " not in text
    everything = run(db, Reviewer("local:op", local=True), parse("requests"))
    assert f"\n{theirs} " in everything
    with pytest.raises(NotFound):
        run(db, Reviewer("local:op", local=True), parse("show 999999"))


def test_abandoned_and_overdue_requests_expire(db: BlockingStore) -> None:
    alive, abandoned = new_request(db), new_request(db)
    now = time.time()
    db.heartbeat_request(alive, now + 20)
    db.heartbeat_request(abandoned, now - 60)
    assert [e.id for e in db.expire_requests(now, now - 15)] == [abandoned]
    assert state(db, abandoned) == ("expired", None, "the held session is gone")
    assert [e.id for e in db.expire_requests(now + 61, now - 15)] == [alive]
    assert state(db, alive)[2] == "no review in time"


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://hooks.example.com/x", True),
        ("http://127.0.0.1:8080/x", True),
        ("http://hooks.example.com/x", False),
        ("file:///etc/passwd", False),
        ("https://", False),
    ],
)
def test_webhook_urls(url: str, ok: bool) -> None:
    if ok:
        check_webhook_url(url)
    else:
        with pytest.raises(ConfigError):
            check_webhook_url(url)


def test_config_rejects_a_plain_http_webhook(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    initialise(state)
    text = state.config_file.read_text().replace(
        '# webhook = "https://hooks.example.com/bastion"', 'webhook = "http://example.com/hook"'
    )
    state.config_file.write_text(text)
    with pytest.raises(ConfigError, match="approvals.webhook"):
        load_config(state.config_file)


def test_rule_approvers_are_validated(tmp_path: Path) -> None:
    policy = tmp_path / "p.toml"
    policy.write_text('[[rule]]\nname = "x"\naction = "review"\nprogram = ["x"]\napprovers = 2\n')
    assert load_policy(policy).rules[0].approvers == 2
    for bad in (
        'action = "deny"\nprogram = ["x"]\napprovers = 2',
        'action = "review"\nprogram = ["x"]\napprovers = 9',
    ):
        policy.write_text(f'[[rule]]\nname = "x"\n{bad}\n')
        with pytest.raises(PolicyError, match="approvers"):
            load_policy(policy)
