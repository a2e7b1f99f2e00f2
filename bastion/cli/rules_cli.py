"""bastion rules check|test|suggest: validate policies, explain decisions, learn from approvals."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import typer

from bastion.cli.common import StateDirOption, open_state_store, print_json
from bastion.config import load_config
from bastion.decide import Decider
from bastion.durations import parse_duration
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
from rules.suggest import Approved, suggest

app = typer.Typer(
    no_args_is_help=True,
    help="Command rules: validate policies, explain decisions, suggest rules from approvals.",
)

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
    unknown_action: str = typer.Option(
        "review", help="Action for a command not understood (with --policy): review, deny, alert."
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
    if unknown_action not in ("review", "deny", "alert"):
        raise UsageError("--unknown-action must be review, deny or alert")
    unknown = Action(unknown_action)
    decide = _configured(state_dir_path) if not policy else None
    if decide is None:
        policies = _policies(policy)

        def decide(request: Request) -> Decision:
            return evaluate(policies, request, default_action=fallback, unknown_action=unknown)

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
    for text in explain_text(decision):
        typer.echo(text)


def explain_text(decision: Decision) -> list[str]:
    """The decision for a reader: the outcome, what was not understood (the exact word,
    option or feature, and why), then each command with what it does."""
    lines = [f"{decision.action.value}: {decision.rule or '(no rule)'}: {decision.reason}"]
    if decision.understood:
        caps = ", ".join(sorted(decision.capabilities)) or "none"
        lines.append(f"understood; capabilities: {caps}")
    else:
        lines.append("not understood:")
        lines += [f"  - {reason}" for reason in decision.not_understood]
    for command in decision.commands:
        facts = []
        if command.caps:
            facts.append("capabilities: " + ", ".join(sorted(command.caps)))
        for label in ("reads", "writes", "deletes", "runs", "hosts", "sends", "sql", "units"):
            values = getattr(command, label)
            if values:
                facts.append(f"{label}: {', '.join(values)}")
        if command.via:
            facts.append("in: " + " > ".join(command.via))
        if not command.understood:
            facts.append("not understood")
        lines.append(f"  {' '.join(command.argv)}" + (f"  [{'; '.join(facts)}]" if facts else ""))
    return lines


def _configured(path: Path | None) -> Callable[[Request], Decision] | None:
    """A decide function using a bastion's configuration, if one is named and set up."""
    if path is None and not os.environ.get("BASTION_HOME"):
        return None
    state = StateDir.resolve(path)
    if not state.is_initialised():
        raise NotInitialised(f"{state.root} is not initialised: run `bastion init` first")
    config = load_config(state.config_file)
    decider = Decider.from_config(config, state.root)
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
        return _bad_input(f"an input line over {MAX_STDIN_LINE} characters")
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
        return _bad_input(str(exc))
    try:
        return decide(request).to_json()
    except Exception as exc:  # fail closed, one line per input line
        return {
            "decision": "deny",
            "rule": "internal-error",
            "reason": str(exc)[:200],
            "commands": [],
        }


def _bad_input(why: str) -> dict[str, object]:
    """A line that is not a request is denied, as the bastion denies what it cannot read
    (a consumer that only looks at `decision` never reads it as allowed)."""
    return {"decision": "deny", "rule": "bad-input", "reason": f"bad input: {why}", "commands": []}


@app.command("suggest")
def suggest_rules(
    since: str = typer.Option("7d", help="Approved within this long (e.g. 7d, 12h)."),
    identity: str | None = typer.Option(None, help="Only this identity's requests."),
    target: str | None = typer.Option(None, help="Only requests on this target."),
    state_dir_path: Path | None = StateDirOption,
) -> None:
    """Print allow rules (TOML) for the commands reviewers approved.

    One rule per identity, target and login, allowing exactly the lines that
    were approved, with them listed as comments. Review, then add them to a
    policy file; `bastion rules test` on those lines then allows them.
    """
    window = parse_duration(since)
    with open_state_store(state_dir_path) as store:
        rows = store.list_requests(include_decided=True, limit=100_000)
    cutoff = time.time() - window
    approved = [
        Approved(
            row.identity,
            row.target,
            row.login,
            row.command,
            tuple(r.strip() for r in (row.reviewer or "").split(",") if r.strip()),
            row.id,
        )
        for row in rows
        if row.state == "approved"
        and (row.decided or row.created) >= cutoff
        and (identity is None or row.identity == identity)
        and (target is None or row.target == target)
    ]
    if not approved:
        typer.echo("# no approved requests match", err=True)
        return
    typer.echo(suggest(approved), nl=False)
