"""bastion rules check|test: validate policies and explain decisions."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

from bastion.cli.common import print_json
from bastion.errors import ConfigError, UsageError
from rules import Action, Policy, PolicyError, Request, default_policy, evaluate, load_policy

app = typer.Typer(no_args_is_help=True, help="Command rules: validate policies, explain decisions.")

MAX_STDIN_LINE = 64 * 1024


def _policies(paths: list[Path]) -> list[Policy]:
    try:
        return [load_policy(path) for path in paths] if paths else [default_policy()]
    except PolicyError as exc:
        raise ConfigError(str(exc)) from None


@app.command("check")
def check(
    file: Path | None = typer.Argument(None, help="Policy file (default: the built-in pack)."),
) -> None:
    """Validate a policy file; errors name the line."""
    [policy] = _policies([file] if file else [])
    typer.echo(f"{file or 'default pack'}: ok, {len(policy.rules)} rules")


@app.command("test")
def test(
    command: str | None = typer.Argument(None, help="The command line to decide."),
    user: str | None = typer.Option(None, help="Identity asking."),
    group: list[str] = typer.Option([], help="Group of the identity (repeatable)."),
    role: list[str] = typer.Option([], help="Role of the identity (repeatable)."),
    target: str | None = typer.Option(None, help="Target name."),
    login: str | None = typer.Option(None, help="Login on the target."),
    policy: list[Path] = typer.Option([], help="Policy file (repeatable; default: built-in pack)."),
    default_action: str = typer.Option("allow", help="Action when no rule matches."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    stdin: bool = typer.Option(
        False, "--stdin", help="Read JSON lines, write one decision per line."
    ),
) -> None:
    """Explain how a command line would be decided."""
    try:
        fallback = Action(default_action)
    except ValueError:
        raise UsageError("--default-action must be allow, alert, review or deny") from None
    policies = _policies(policy)
    if stdin:
        for raw in sys.stdin:
            sys.stdout.write(json.dumps(_decide_json_line(raw, policies, fallback)) + "\n")
            sys.stdout.flush()
        return
    if command is None:
        raise UsageError("give a COMMAND or --stdin")
    request = Request(command, user, tuple(group), tuple(role), target, login)
    decision = evaluate(policies, request, default_action=fallback)
    if as_json:
        print_json(decision.to_json())
        return
    typer.echo(f"{decision.action.value}: {decision.rule or '(no rule)'}: {decision.reason}")
    for simple in decision.commands:
        note = f"  opaque: {simple.reason}" if simple.opaque else ""
        sql = f"  sql: {', '.join(simple.sql)}" if simple.sql else ""
        typer.echo(f"  {' '.join(simple.argv)}{note}{sql}")


def _decide_json_line(raw: str, policies: list[Policy], fallback: Action) -> dict[str, object]:
    if len(raw) > MAX_STDIN_LINE:
        return {"decision": "error", "rule": None, "reason": "line too long", "commands": []}
    try:
        data = json.loads(raw)
        if not isinstance(data, dict) or not isinstance(data.get("command"), str):
            raise ValueError("expected an object with a string `command`")
        groups = data.get("groups", [])
        roles = data.get("roles", [])
        if not isinstance(groups, list) or not isinstance(roles, list):
            raise ValueError("groups and roles must be lists")
        for key in ("user", "target", "login"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise ValueError(f"{key} must be a string")
        request = Request(
            data["command"],
            data.get("user"),
            tuple(map(str, groups)),
            tuple(map(str, roles)),
            data.get("target"),
            data.get("login"),
        )
    except ValueError as exc:
        return {"decision": "error", "rule": None, "reason": f"bad input: {exc}", "commands": []}
    return evaluate(policies, request, default_action=fallback).to_json()
