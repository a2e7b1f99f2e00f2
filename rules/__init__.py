"""Command policy: shell and SQL parsing, normalization, policies, decisions.

    >>> from rules import Request, default_policy, evaluate
    >>> evaluate([default_policy()], Request("bash -c 'cat /etc/shadow'")).rule
    'credential-read'

A library of plain values: it knows nothing of SSH, storage or the bastion.
"""

import logging

from rules.engine import evaluate
from rules.loader import PolicyError, default_policy, load_policy, parse_policy
from rules.model import Action, Decision, Policy, Request, Rule, SimpleCommand
from rules.shell import analyse

logging.getLogger("sqlglot").setLevel(logging.ERROR)

__all__ = [
    "Action",
    "Decision",
    "Policy",
    "PolicyError",
    "Request",
    "Rule",
    "SimpleCommand",
    "analyse",
    "default_policy",
    "evaluate",
    "load_policy",
    "parse_policy",
]
