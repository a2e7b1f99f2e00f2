"""Command policy: a command line runs only when the bastion understands it.

    >>> from rules import Request, default_policy, evaluate
    >>> evaluate([default_policy()], Request("bash -c 'cat /etc/shadow'")).rule
    'credential-read'
    >>> d = evaluate([default_policy()], Request("frobnicate --all"))
    >>> d.action.value, d.understood, str(d.not_understood[0])
    ('review', False, 'frobnicate: not a program the bastion knows')

A library of plain values: it knows nothing of SSH, storage or the bastion.

The engine API (the meeting point with the bastion's decision workers)
-----------------------------------------------------------------------

``evaluate(policies, request, *, default_action=Action.ALLOW,
unknown_action=Action.REVIEW, context=None) -> Decision``

- ``policies``: a sequence of ``Policy`` (``default_policy()``,
  ``load_policy(path)``, ``parse_policy(text, source)``).
- ``request``: ``Request(command, user, groups, roles, target, login)``.
- ``default_action``: for an understood command no rule matches.
- ``unknown_action``: for a command that is not understood (review, deny or
  alert); an allow rule that matches such a command lets it pass.
- ``context``: a ``Context`` (rules/context.py): what earlier lines of the
  same shell session set up (working directory, variables known or unknown,
  functions, aliases, shell options, the login's home) and the files the
  bastion carried (``Context.with_files({path: CarriedFile(text or None,
  sha256, size)})``), so that ``sh f``, ``. f``, ``./f`` are judged by
  their content. ``None`` is a fresh login shell in the home directory.

``Decision`` carries ``action``, ``rule``, ``reason``, ``commands`` (one
``Command`` per simple command: program, subcommand, flags, capabilities,
files read/written/deleted/run, hosts, SQL kinds, and whether it was
understood and why not), ``understood``, ``not_understood`` (a tuple of
``Reason(word, why)``), ``capabilities``, ``explanation()``, and
``context``: the shell's state after this line, to pass with the next one.
A line whose effect on the state cannot be known makes the names it touched
unknown (or the whole context poisoned), never silently dropped.

Everything that crosses the API is a frozen, picklable dataclass; the
engine keeps no global state that matters across processes. Its caches are
bounded: the rule index's candidate lists (4,096 entries of a few hundred
bytes), one compiled index per policy set (64 sets), bash patterns (1,024
compiled regexes) and glob overlaps (16,384 booleans keyed by patterns of at
most 256 characters): about 8 MB in all at the worst; no cache holds a line.
A Context is bounded too (rules/context.py: about 1.3 MB at its limits).
Every line is analysed within budgets (nested parses, commands, 1 s);
past one, it is not understood, never allowed by accident.
"""

import logging

from rules.context import CarriedFile, Context, Var
from rules.engine import NOT_UNDERSTOOD, evaluate
from rules.loader import PolicyError, default_policy, load_policy, parse_policy
from rules.model import Action, Command, Decision, Policy, Reason, Request, Rule
from rules.shell import analyse

# The walk's halves import each other lazily; load them now, not inside a line's time budget.
import rules.builtins  # noqa: E402,F401  isort: skip
import rules.handlers  # noqa: E402,F401  isort: skip

logging.getLogger("sqlglot").setLevel(logging.ERROR)

__all__ = [
    "NOT_UNDERSTOOD",
    "Action",
    "CarriedFile",
    "Command",
    "Context",
    "Decision",
    "Policy",
    "PolicyError",
    "Reason",
    "Request",
    "Rule",
    "Var",
    "analyse",
    "default_policy",
    "evaluate",
    "load_policy",
    "parse_policy",
]
