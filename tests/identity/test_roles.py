"""Roles from claims and certificate groups: the union grants, no role grants nothing."""

from __future__ import annotations

import pytest

from bastion.errors import ConfigError
from bastion.identity.roles import Grants, grants_for, parse_roles

ROLES = parse_roles(
    [
        {
            "name": "deployers",
            "match": {"groups": ["deployers"]},
            "targets": ["web*", "env=staging"],
            "logins": ["deploy"],
            "cert_ttl": "10m",
            "forward": ["db1:5432"],
            "shell": False,
        },
        {
            "name": "repo-ci",
            "issuer": "ci",
            "match": {"sub": ["repo:org/app:*"]},
            "targets": ["app-*"],
            "logins": ["ci", "deploy*"],
            "cert_ttl": "1h",
        },
        {
            "name": "reviewers",
            "match": {"groups": ["sre"]},
            "targets": ["*"],
            "logins": ["ops"],
            "approve": True,
        },
    ],
    "bastion.toml",
    [10, 20, 30],
)


def test_no_role_no_access() -> None:
    grants = grants_for(ROLES, {"sub": "someone"}, ["nobody"], "ci")
    assert not grants.any
    assert not grants.may_reach("web1", {}) and not grants.may_login("web1", {}, "deploy")
    assert grants.cert_ttl() == 0 and not grants.shell_allowed("web1", {})


def test_targets_by_glob_and_label_logins_and_forwards() -> None:
    grants = grants_for(ROLES, {"sub": "x"}, ["deployers"], None)
    assert grants.may_reach("web1", {}) and grants.may_reach("db7", {"env": "staging"})
    assert not grants.may_reach("db7", {"env": "prod"})
    assert grants.may_login("web1", {}, "deploy") and not grants.may_login("web1", {}, "root")
    assert grants.may_forward("db1", 5432) and not grants.may_forward("db1", 22)
    assert not grants.may_approve("web1", {}) and not grants.shell_allowed("web1", {})
    assert grants.logins == ("deploy",)


def test_claim_globs_issuer_scoping_and_union() -> None:
    claims = {"sub": "repo:org/app:ref:refs/heads/main"}
    assert grants_for(ROLES, claims, [], "other-issuer").roles == ()
    both = grants_for(ROLES, claims, ["deployers"], "ci")
    assert {r.name for r in both.roles} == {"deployers", "repo-ci"}
    assert both.may_login("app-1", {}, "deploy-blue") and both.may_reach("web2", {})
    assert both.logins == ("ci", "deploy")


def test_ttl_is_the_longest_granted_capped_by_the_token() -> None:
    both = grants_for(ROLES, {"sub": "repo:org/app:x"}, ["deployers"], "ci")
    assert both.cert_ttl() == 3600
    assert both.cert_ttl(token_expires_in=120) == 120
    assert Grants().cert_ttl() == 0


def test_approvers() -> None:
    grants = grants_for(ROLES, {}, ["sre"], None)
    assert grants.may_approve("anything", {}) and grants.shell_allowed("anything", {})


@pytest.mark.parametrize(
    ("item", "fragment"),
    [
        ({"name": "x", "match": {}}, "match"),
        ({"name": "x", "match": {"groups": ["a"]}, "cert_ttl": "2d"}, "cert_ttl"),
        ({"name": "x", "match": {"groups": ["a"]}, "cert_ttl": "soon"}, "duration"),
        ({"name": "x", "match": {"groups": ["a"]}, "colour": 1}, "unknown key"),
        ({"name": "x", "match": {"groups": ["a"]}, "default_action": "maybe"}, "default_action"),
        ({"name": "x", "match": {"groups": ["a"]}, "approve": "yes"}, "approve"),
        ({"match": {"groups": ["a"]}}, "name"),
    ],
)
def test_role_errors_name_the_line(item: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_roles([item], "bastion.toml", [42])
    assert "bastion.toml:42:" in str(info.value) and fragment in str(info.value)
