"""Per-role rule sets and default actions: [rules] is the baseline, roles add and choose defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.config import load_config
from bastion.decide import Decider
from bastion.errors import ConfigError
from bastion.identity.model import Identity
from bastion.identity.roles import Grants, parse_roles
from bastion.setup_state import initialise
from bastion.statedir import StateDir
from bastion.targets import Target

WEB = Target("web1", "127.0.0.1", 22, host_key="x", labels={"env": "prod"})
DB = Target("db1", "127.0.0.1", 22, host_key="x", labels={"env": "prod"})

ALLOW_LIST = """
[[rule]]
name = "allowed-reads"
action = "allow"
message = "read-only status commands"
program = ["uptime", "df", "systemctl"]
"""

DBA_ONLY = """
[[rule]]
name = "dba-no-drop"
action = "deny"
message = "the dba role never drops tables"
sql = ["drop_table", "drop_database"]
scope = { roles = ["dba"] }
"""

ROLES = [
    {
        "name": "status",
        "match": {"groups": ["status"]},
        "targets": ["web*"],
        "logins": ["deploy"],
        "policy": ["allow-list.toml"],
        "default_action": "deny",
    },
    {"name": "ops", "match": {"groups": ["ops"]}, "targets": ["web*"], "logins": ["deploy"]},
    {
        "name": "ops-db",
        "match": {"groups": ["ops"]},
        "targets": ["db*"],
        "logins": ["deploy"],
        "default_action": "review",
    },
    {
        "name": "dba",
        "match": {"groups": ["dba"]},
        "targets": ["db*"],
        "logins": ["postgres"],
        "policy": ["dba.toml"],
    },
]


@pytest.fixture()
def decider(tmp_path: Path) -> Decider:
    (tmp_path / "allow-list.toml").write_text(ALLOW_LIST)
    (tmp_path / "dba.toml").write_text(DBA_ONLY)
    roles = tuple(parse_roles(ROLES, "test"))
    # dba.toml is in the baseline, so everyone's commands meet its rule: only its scope limits it.
    return Decider.from_names(("default", "dba.toml"), "allow", tmp_path, roles)


def who(*groups: str) -> Identity:
    roles = tuple(parse_roles(ROLES, "test"))
    grants = Grants(tuple(r for r in roles if r.matches({}, groups, None)))
    return Identity("agent-1", ("deploy", "postgres"), groups, 1, 0.0, grants=grants)


def decide(decider: Decider, identity: Identity, target: Target, command: str, login="deploy"):
    verdict = decider.command(identity, target, login, command, source="exec")
    return verdict.action, verdict.rule


def test_an_allow_list_role_is_one_line_of_config(decider: Decider) -> None:
    status = who("status")
    assert decide(decider, status, WEB, "uptime") == ("allow", "allowed-reads")
    assert decide(decider, status, WEB, "systemctl status nginx") == ("allow", "allowed-reads")
    assert decide(decider, status, WEB, "whoami") == (
        "deny",
        "default-action",
    )  # the role's default
    # The baseline pack still applies on top of the allow list.
    assert decide(decider, status, WEB, "cat /etc/shadow") == ("deny", "credential-read")


def test_roles_are_a_union_the_least_severe_default_wins(decider: Decider) -> None:
    both = who("status", "ops")
    assert decide(decider, both, WEB, "whoami") == ("allow", None)
    assert decide(decider, both, WEB, "cat /etc/shadow") == ("deny", "credential-read")


def test_only_roles_for_this_target_and_login_count(decider: Decider) -> None:
    ops = who("ops")
    assert decide(decider, ops, WEB, "whoami") == ("allow", None)  # [rules] default via "ops"
    assert decide(decider, ops, DB, "whoami") == (
        "review",
        "default-action",
    )  # "ops-db" says review
    nobody = who("interns")
    assert decide(decider, nobody, WEB, "whoami")[0] == "deny"  # no role here: fail closed


def test_rule_scope_sees_the_roles_in_play(decider: Decider) -> None:
    drop = "psql -c 'DROP TABLE t'"
    assert decide(decider, who("dba"), DB, drop, login="postgres") == ("deny", "dba-no-drop")
    # As ops on db1 the dba-scoped rule does not apply; the pack's own SQL rule does.
    assert decide(decider, who("ops"), DB, drop) == ("review", "sql-destructive")


def test_without_roles_everyone_gets_the_rules_table(decider: Decider) -> None:
    plain = Identity("agent-1", ("deploy",), (), 1, 0.0, grants=None)
    assert decide(decider, plain, WEB, "whoami") == ("allow", None)


def test_a_role_naming_a_missing_policy_is_a_config_error_with_its_line(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    initialise(state)
    with state.config_file.open("a") as config:
        config.write(
            '\n[[role]]\nname = "ci"\nmatch = { groups = ["ci"] }\ntargets = ["*"]\n'
            'logins = ["deploy"]\npolicy = ["missing.toml"]\n'
        )
    config = load_config(state.config_file)
    line = state.config_file.read_text().splitlines().index("[[role]]") + 1
    with pytest.raises(
        ConfigError, match=rf"bastion.toml:{line}: role 'ci': policy 'missing.toml'"
    ):
        Decider.from_names(
            config.rules.policy, config.rules.default_action, state.root, config.roles
        )


def test_unknown_action_per_role_the_least_severe_wins(tmp_path: Path) -> None:
    """A command not understood gets the role's unknown_action; [rules] gives the default."""
    roles = tuple(
        parse_roles(
            [
                {
                    "name": "agents",
                    "match": {"groups": ["agents"]},
                    "targets": ["*"],
                    "logins": ["deploy"],
                    "unknown_action": "deny",
                },
                {
                    "name": "trusted",
                    "match": {"groups": ["trusted"]},
                    "targets": ["*"],
                    "logins": ["deploy"],
                    "unknown_action": "alert",
                },
                {
                    "name": "plain",
                    "match": {"groups": ["plain"]},
                    "targets": ["*"],
                    "logins": ["deploy"],
                },
            ],
            "test",
        )
    )
    decider = Decider.from_names(("default",), "allow", tmp_path, roles, unknown_action="review")

    def as_(*groups: str):  # type: ignore[no-untyped-def]
        grants = Grants(tuple(r for r in roles if r.matches({}, groups, None)))
        identity = Identity("a", ("deploy",), groups, 1, 0.0, grants=grants)
        return decider.command(identity, WEB, "deploy", "frobnicate --all", source="exec")

    assert (as_("agents").action, as_("agents").rule) == ("deny", "not-understood")
    assert as_("trusted").action == "alert"
    assert as_("plain").action == "review"
    assert as_("agents", "trusted").action == "alert"  # a union of grants: the least severe
    verdict = as_("plain")
    assert not verdict.understood
    assert verdict.explanation == "not understood: frobnicate: not a program the bastion knows"


def test_unknown_action_is_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown_action must be"):
        parse_roles([{"name": "x", "match": {"groups": ["x"]}, "unknown_action": "allow"}], "t")
    with pytest.raises(ConfigError, match="rules.unknown_action"):
        Decider.from_names(("default",), "allow", tmp_path, (), unknown_action="allow")
    state = StateDir(tmp_path / "state")
    initialise(state)
    text = state.config_file.read_text().replace(
        'unknown_action = "review"', 'unknown_action = "deny"'
    )
    state.config_file.write_text(text)
    assert load_config(state.config_file).rules.unknown_action == "deny"


def test_the_verdict_carries_the_context_after_the_line(decider: Decider) -> None:
    ops = who("ops")
    first = decider.command(ops, WEB, "deploy", "cd /etc && x=shadow", source="line")
    assert first.context is not None and first.context.cwd == "/etc"
    second = decider.command(ops, WEB, "deploy", "cat $x", source="line", context=first.context)
    assert (second.action, second.rule) == ("deny", "credential-read")
