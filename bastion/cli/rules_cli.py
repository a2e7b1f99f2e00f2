"""bastion rules check|test: validate policies and explain decisions."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import typer

from bastion.cli.common import open_state_store, print_json
from bastion.config import load_config
from bastion.decide import Decider
from bastion.errors import ConfigError, NotInitialised, UsageError
from bastion.identity.model import Identity
from bastion.identity.roles import grants_for
from bastion.statedir import StateDir
from bastion.targets import Target
from rules import (
    Action,
    Decision,
    Policy,
    PolicyError,
    Request,
    default_policy,
    evaluate,
    load_policy,
)

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
    role: list[str] = typer.Option([], help="Role names for rule scopes (with --policy)."),
    target: str | None = typer.Option(None, help="Target name."),
    login: str | None = typer.Option(None, help="Login on the target."),
    policy: list[Path] = typer.Option([], help="Policy file (repeatable; default: built-in pack)."),
    default_action: str = typer.Option(
        "allow", help="Action when no rule matches (with --policy)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    stdin: bool = typer.Option(
        False, "--stdin", help="Read JSON lines, write one decision per line."
    ),
    state_dir_path: Path | None = typer.Option(
        None,
        "--state-dir",
        help="Decide with this bastion's bastion.toml: its [rules] and the roles of --user/--group.",
    ),
) -> None:
    """Explain how a command line would be decided.

    With --policy, those files decide (default: the built-in pack). Otherwise,
    when a state dir is given (--state-dir or $BASTION_HOME), the bastion's own
    configuration decides, roles and all, for the --user, --group, --target and
    --login given, exactly as `bastion serve` would.
    """
    try:
        fallback = Action(default_action)
    except ValueError:
        raise UsageError("--default-action must be allow, alert, review or deny") from None
    decide = _configured(state_dir_path) if not policy else None
    if decide is None:
        policies = _policies(policy)

        def decide(request: Request) -> Decision:
            return evaluate(policies, request, default_action=fallback)

    if stdin:
        for raw in sys.stdin:
            sys.stdout.write(json.dumps(_decide_json_line(raw, decide)) + "\n")
            sys.stdout.flush()
        return
    if command is None:
        raise UsageError("give a COMMAND or --stdin")
    decision = decide(Request(command, user, tuple(group), tuple(role), target, login))
    if as_json:
        print_json(decision.to_json())
        return
    typer.echo(f"{decision.action.value}: {decision.rule or '(no rule)'}: {decision.reason}")
    for simple in decision.commands:
        note = f"  opaque: {simple.reason}" if simple.opaque else ""
        sql = f"  sql: {', '.join(simple.sql)}" if simple.sql else ""
        typer.echo(f"  {' '.join(simple.argv)}{note}{sql}")


def _configured(path: Path | None) -> Callable[[Request], Decision] | None:
    """A decide function using a bastion's configuration, if one is named and set up."""
    if path is None and not os.environ.get("BASTION_HOME"):
        return None
    state = StateDir.resolve(path)
    if not state.is_initialised():
        raise NotInitialised(f"{state.root} is not initialised: run `bastion init` first")
    config = load_config(state.config_file)
    decider = Decider.from_names(
        config.rules.policy, config.rules.default_action, state.root, config.roles
    )
    with open_state_store(state.root) as store:
        targets = {t.name: t for t in store.list_targets()}

    warned: set[str] = set()
    warned_identities: set[tuple[str, tuple[str, ...]]] = set()

    def decide(request: Request) -> Decision:
        name = request.target or "-"
        if request.target and name not in targets and name not in warned:
            warned.add(name)
            typer.echo(
                f"warning: no target {name!r} is registered in {state.root}; deciding as if it"
                " were, with no labels (`bastion targets list` shows the registered ones)",
                err=True,
            )
        target = targets.get(name) or Target(name, "-", 22, host_key="-")
        grants = (
            grants_for(config.roles, {"sub": request.user or ""}, request.groups, None)
            if config.roles_enforced
            else None
        )
        who = (request.user or "-", request.groups)
        if grants is not None and not grants.any and who not in warned_identities:
            warned_identities.add(who)
            typer.echo(
                f"warning: no [[role]] matches user {who[0]!r} with groups"
                f" {list(who[1]) or 'none'}: the bastion would refuse the connection",
                err=True,
            )
        login = request.login or "-"
        identity = Identity(request.user or "-", (login,), request.groups, 0, 0.0, grants=grants)
        return decider.explain(identity, target, login, request.command)

    return decide


def _decide_json_line(raw: str, decide: Callable[[Request], Decision]) -> dict[str, object]:
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
    try:
        return decide(request).to_json()
    except Exception as exc:  # fail closed, one line per input line
        return {
            "decision": "deny",
            "rule": "internal-error",
            "reason": str(exc)[:200],
            "commands": [],
        }
