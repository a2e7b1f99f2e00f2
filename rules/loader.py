"""Policy files (TOML) -> Policy, with errors that name the file and line.

    [[rule]]
    name = "no-drop-database"
    action = "deny"                  # allow | alert | review | deny
    message = "dropping a database needs a human"
    sql = ["drop_database"]
    scope = { roles = ["agents"] }   # optional: roles, targets, logins, identities (globs)

Matchers (all given must hold for one command; lists: any entry matches):
program, except_program, command_path (the program as written: ./x, /tmp/x),
subcommand ("s3 rm", "delete"), flags (each entry "r|R|recursive": one of
these spellings given), any_flag, except_flags, args, all_args (a list of
lists: each must match some argument), except_args, options ("-o=Proxy*"),
capabilities (any of), all_capabilities, fed_by (capabilities of what feeds
the input), reads, writes, deletes, runs, sends, paths (any of the four
first), hosts, units, targets, sql, understood, runs_input, runs_downloaded,
open_args; and over the whole line: regex, line (exact lines, as approved).
Paths are fnmatch globs over canonical paths: absolute, or under `~` for the
login's home.
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from rules.catalog.model import CAPABILITIES
from rules.model import Action, Policy, Rule, Scope

MAX_POLICY_BYTES = 1 << 20
MAX_RULES = 2000
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_LIST_KEYS = (
    "program",
    "command_path",
    "subcommand",
    "any_flag",
    "args",
    "options",
    "paths",
    "reads",
    "writes",
    "deletes",
    "runs",
    "sends",
    "hosts",
    "units",
    "targets",
    "sql",
    "flags",
    "capabilities",
    "all_capabilities",
    "fed_by",
    "line",
    "via",
)
_BOOL_KEYS = ("understood", "runs_input", "runs_downloaded", "open_args")
# Exceptions narrow a rule; they are not matchers of their own.
_EXCEPT_KEYS = ("except_program", "except_args", "except_flags", "except_via")
_RULE_KEYS = {
    "name",
    "action",
    "message",
    "regex",
    "scope",
    "timeout",
    "approvers",
    "end_session",
    "all_args",
    *_LIST_KEYS,
    *_BOOL_KEYS,
    *_EXCEPT_KEYS,
}
_SCOPE_KEYS = {"roles", "targets", "logins", "identities"}
SQL_KINDS = frozenset(
    "drop_database drop_schema drop_table drop_other truncate delete_without_where "
    "update_without_where copy_to_stdout copy_to_program copy_to_file copy_from "
    "select_into_outfile grant revoke alter_user create_user shell_escape select insert audit_off "
    "alter_drop create_code server_file remote_sql copy_from_program "
    "delete update other server_control".split()
)


class PolicyError(ValueError):
    """A policy file is invalid; the message names the file and line."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def default_policy() -> Policy:
    text = resources.files("rules").joinpath("packs/default.toml").read_text()
    return parse_policy(text, "default")


def load_policy(path: Path) -> Policy:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PolicyError(f"{path}: cannot read: {exc.strerror}") from None
    if len(raw) > MAX_POLICY_BYTES:
        raise PolicyError(f"{path}: larger than {MAX_POLICY_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise PolicyError(f"{path}: not UTF-8") from None
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise PolicyError(f"{source}:{line or '?'}: {exc}", line) from None
    lines = _rule_lines(text)
    unknown = set(data) - {"rule", "name", "description"}
    if unknown:
        raise PolicyError(f"{source}:1: unknown top-level key(s) {sorted(unknown)}", 1)
    items = data.get("rule", [])
    if not isinstance(items, list):
        raise PolicyError(f"{source}:1: `rule` must be an array of tables ([[rule]])", 1)
    if len(items) > MAX_RULES:
        raise PolicyError(f"{source}: more than {MAX_RULES} rules")
    rules, names = [], set()
    for index, item in enumerate(items):
        line = lines[index] if index < len(lines) else None
        rule = _rule(item, source, line)
        if rule.name in names:
            raise PolicyError(f"{source}:{line}: duplicate rule name {rule.name!r}", line)
        names.add(rule.name)
        rules.append(rule)
    return Policy(str(data.get("name", source)), tuple(rules))


def _rule(item: Any, source: str, line: int | None) -> Rule:
    where = f"{source}:{line or '?'}"

    def fail(message: str) -> PolicyError:
        return PolicyError(f"{where}: {message}", line)

    if not isinstance(item, dict):
        raise fail("each [[rule]] must be a table")
    unknown = set(item) - _RULE_KEYS
    if unknown:
        raise fail(f"unknown key(s) {sorted(unknown)} in rule {item.get('name', '?')!r}")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise fail("every rule needs a `name` of lowercase letters, digits, '.', '_' or '-'")
    try:
        action = Action(item.get("action"))
    except ValueError:
        raise fail(f"rule {name!r}: action must be allow, alert, review or deny") from None
    message = item.get("message", name)
    if not isinstance(message, str) or len(message) > 500:
        raise fail(f"rule {name!r}: message must be a string of at most 500 characters")
    lists: dict[str, tuple[str, ...]] = {}
    for key in (*_LIST_KEYS, *_EXCEPT_KEYS):
        value = item.get(key, [])
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise fail(f"rule {name!r}: {key} must be a list of non-empty strings")
        if len(value) > 2000:
            raise fail(f"rule {name!r}: {key} has more than 2000 entries")
        lists[key] = tuple(value)
    bad_sql = set(lists["sql"]) - SQL_KINDS
    if bad_sql:
        raise fail(f"rule {name!r}: unknown sql kind(s) {sorted(bad_sql)}")
    flags = tuple(
        frozenset(entry.lstrip("-") for entry in group.split("|")) for group in lists["flags"]
    )
    regex = item.get("regex")
    if regex is not None:
        if not isinstance(regex, str) or len(regex) > 1000:
            raise fail(f"rule {name!r}: regex must be a string of at most 1000 characters")
        try:
            re.compile(regex)
        except re.error as exc:
            raise fail(f"rule {name!r}: bad regex: {exc}") from None
    for key in _BOOL_KEYS:
        if key in item and not isinstance(item[key], bool):
            raise fail(f"rule {name!r}: {key} must be true or false")
    all_args = item.get("all_args", [])
    if not isinstance(all_args, list) or not all(
        isinstance(group, list) and group and all(isinstance(a, str) and a for a in group)
        for group in all_args
    ):
        raise fail(f"rule {name!r}: all_args must be a list of lists of strings")
    bad_caps = set(lists["capabilities"] + lists["all_capabilities"] + lists["fed_by"]) - set(
        CAPABILITIES
    )
    if bad_caps:
        raise fail(f"rule {name!r}: unknown capabilities {sorted(bad_caps)}")
    scope = item.get("scope", {})
    if not isinstance(scope, dict) or set(scope) - _SCOPE_KEYS:
        raise fail(f"rule {name!r}: scope takes only roles, targets and logins")
    for key, value in scope.items():
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise fail(f"rule {name!r}: scope.{key} must be a list of strings")
    timeout = item.get("timeout")
    if timeout is not None:
        timeout = _duration(timeout)
        if timeout is None:
            raise fail(f"rule {name!r}: timeout must be like 90s, 5m or 1h (at most 24h)")
    approvers = item.get("approvers", 1)
    if isinstance(approvers, bool) or not isinstance(approvers, int) or not 1 <= approvers <= 5:
        raise fail(f"rule {name!r}: approvers must be a whole number from 1 to 5")
    if approvers > 1 and action is not Action.REVIEW:
        raise fail(f'rule {name!r}: approvers only applies to action = "review"')
    end_session = item.get("end_session", False)
    if not isinstance(end_session, bool):
        raise fail(f"rule {name!r}: end_session must be true or false")
    if end_session and action not in (Action.DENY, Action.ALERT):
        raise fail(f'rule {name!r}: end_session applies to action = "deny" or "alert"')
    if (
        not any(lists[k] for k in _LIST_KEYS)
        and regex is None
        and not all_args
        and not any(k in item for k in _BOOL_KEYS)
    ):
        raise fail(f"rule {name!r} has no matcher: it would match every command")
    return Rule(
        name=name,
        action=action,
        message=message,
        program=lists["program"],
        command_path=lists["command_path"],
        subcommand=lists["subcommand"],
        all_flags=flags,
        any_flag=frozenset(f.lstrip("-") for f in lists["any_flag"]),
        args=lists["args"],
        all_args=tuple(tuple(group) for group in all_args),
        options=lists["options"],
        except_program=lists["except_program"],
        except_args=lists["except_args"],
        except_flags=frozenset(f.lstrip("-") for f in lists["except_flags"]),
        caps=frozenset(lists["capabilities"]),
        all_caps=frozenset(lists["all_capabilities"]),
        feeds=frozenset(lists["fed_by"]),
        paths=lists["paths"],
        reads=lists["reads"],
        writes=lists["writes"],
        deletes=lists["deletes"],
        runs=lists["runs"],
        sends=lists["sends"],
        hosts=lists["hosts"],
        units=lists["units"],
        targets=lists["targets"],
        sql=frozenset(lists["sql"]),
        understood=item.get("understood"),
        runs_input=item.get("runs_input"),
        runs_downloaded=item.get("runs_downloaded"),
        open_args=item.get("open_args"),
        line=lists["line"],
        via=lists["via"],
        except_via=lists["except_via"],
        regex=regex,
        scope=Scope(**{k: tuple(v) for k, v in scope.items()}),
        timeout=timeout,
        approvers=approvers,
        end_session=end_session,
        source_line=line,
    )


def _duration(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str) and (match := re.fullmatch(r"(\d{1,6})([smh]?)", value.strip())):
        seconds = float(int(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)])
    else:
        return None
    return seconds if 0 < seconds <= 86400 else None


def _rule_lines(text: str) -> list[int]:
    """Line numbers of each [[rule]] header, in order (tomllib keeps no positions)."""
    return [
        number
        for number, line in enumerate(text.splitlines(), 1)
        if re.match(r"^\s*\[\[\s*rule\s*\]\]", line)
    ]


def _line_from_message(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None
