"""The program catalog: what each known program's options and arguments are.

    >>> node = CATALOG.program("rm")
    >>> sorted(node.caps), node.option("--recursive").names
    (['delete'], ('-R', '-r', '--recursive'))

Three layers, all data (rules/catalog/README.md describes the formats):

- generated/fig.json: subcommands, options and arguments of several hundred
  CLIs, extracted from the @withfig/autocomplete specs (MIT) by
  generate/fig_extract.mjs;
- generated/help.json: the option tables the GNU/Linux tools on a Debian 12
  host print with --help, read by generate/help_extract.py (fig describes
  many of them in their BSD form);
- programs/*.toml: the project's own knowledge on top: capabilities, what
  each argument is (a file read, written or deleted, a command, a host...),
  options the generated tables miss or get wrong, and which programs are in
  the catalog at all (only programs named there are known).

Nothing is read from the network; regenerate with generate/regenerate.sh.
Programs are compiled from the data the first time they are looked up.
"""

from __future__ import annotations

import json
import re
import time
import tomllib
from importlib import resources
from typing import Any

from rules.catalog.model import CAPABILITIES, KINDS, ArgSpec, Node, Option

__all__ = ["CATALOG", "Catalog", "CatalogError", "Node", "Option", "ArgSpec"]

_VERSIONED = re.compile(
    r"(python|pypy|perl|ruby|lua|luajit|php|node|pip|gcc|g\+\+|clang|clang\+\+|psql|"
    r"pg_dump|pg_restore|java|go|python3|pip3|idle|pydoc)[\d.]+"
)


class CatalogError(ValueError):
    """A catalog file is malformed; the message names the file and program."""


def _kind(code: str, where: str) -> str:
    if code not in KINDS:
        raise CatalogError(f"{where}: unknown kind {code!r}")
    return code


def parse_args(pattern: str, where: str) -> tuple[ArgSpec, ...]:
    """`"r+ w"` -> one or more files read, then one written. `?` optional, `*` any number."""
    specs = []
    for item in pattern.split():
        kind, quantifier = (item[:-1], item[-1]) if item[-1] in "?*+" else (item, "")
        specs.append(
            ArgSpec(
                _kind(kind, where),
                many=quantifier in "*+" and quantifier != "",
                required=quantifier in ("", "+"),
            )
        )
    return tuple(specs)


def _fig_option(code: str) -> tuple[str | None, bool, int, bool, bool]:
    """fig's compact option code -> (kind, optional, values, attached, persistent)."""
    persistent = code.endswith("+")
    code = code.rstrip("+")
    attached = code.endswith("=")
    code = code.rstrip("=")
    if not code:
        return None, False, 1, False, persistent
    parts = code.split(",")
    first = parts[0]
    kind = {"v": "v", "p": "p", "d": "d", "c": "C", "x": "x", "m": "m"}.get(first[:1], "v")
    optional = first.endswith("?")
    required = max(1, sum(1 for part in parts if not part.endswith("?")))
    return kind, optional, required, attached, persistent


_FIG_ARG = {"v": "v", "p": "p", "d": "d", "c": "c", "x": "x", "m": "m"}


def _fig_node(name: str, data: dict[str, Any], parent: Node | None) -> Node:
    node = Node(name, parent=parent)
    flags = data.get("f", "")
    node.posix = "P" in flags
    node.options_first = "F" in flags
    for spellings, code in data.get("o", {}).items():
        kind, optional, values, attached, _ = _fig_option(code)
        names = tuple(spellings.split("|"))
        option = Option(names, kind, optional, values=values, attached=attached)
        for name in names:
            node.options.setdefault(name, option)
    if "a" in data:
        node.args = tuple(
            # fig marks arguments required that options can stand in for (pip install -r):
            # counts are not what decides here, so none is required
            ArgSpec(_FIG_ARG.get(code[:1], "v"), many="*" in code, required=False)
            for code in data["a"]
        )
    subs = data.get("s", {})
    for sub_name, sub in subs.items():
        if "=" in sub:
            continue
        node.subs[sub_name] = _fig_node(sub_name, sub, node)
    for sub_name, sub in subs.items():
        if "=" in sub and sub["="] in node.subs:
            node.subs[sub_name] = node.subs[sub["="]]
    if node.subs and node.args is None:
        node.needs_sub = True
    return node


def _help_options(data: dict[str, str]) -> dict[str, Option]:
    options: dict[str, Option] = {}
    for spellings, code in data.items():
        names = tuple(spellings.split("|"))
        option = Option(names, code[:1] if code else None, optional=code.endswith("?"))
        for name in names:
            options.setdefault(name, option)
    return options


class Catalog:
    """Programs by name, compiled from the data files on first use."""

    def __init__(
        self,
        tables: dict[str, dict[str, Any]],
        fig: dict[str, str],
        help_tables: dict[str, Any],
    ) -> None:
        self._tables = tables
        self._fig: dict[str, str] = fig
        self._help = help_tables
        self._compiled: dict[str, Node | None] = {}
        self.compile_seconds = 0.0  # spent compiling programs (not charged to a line's budget)
        self._aliases: dict[str, str] = {}
        for name, table in tables.items():
            for alias in table.get("aliases", ()):
                self._aliases[alias] = name

    @classmethod
    def load(cls) -> Catalog:
        root = resources.files("rules.catalog")
        # Each program's data is kept as its JSON text until it is first used: a few
        # hundred strings instead of a million small objects for the garbage collector
        # to walk (or to keep) in every process.
        fig = {
            name: json.dumps(data, separators=(",", ":"))
            for name, data in json.loads(root.joinpath("generated/fig.json").read_text())[
                "programs"
            ].items()
        }
        help_tables = json.loads(root.joinpath("generated/help.json").read_text())["programs"]
        tables: dict[str, dict[str, Any]] = {}
        for entry in sorted(root.joinpath("programs").iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".toml"):
                _merge_file(tables, tomllib.loads(entry.read_text()), entry.name)
        return cls(tables, fig, help_tables)

    def names(self) -> list[str]:
        return sorted(self._tables)

    def canonical(self, name: str) -> str | None:
        """The catalog's name for a program as invoked (`python3.11` -> python3)."""
        if name in self._tables:
            return name
        alias = self._aliases.get(name)
        if alias is not None:
            return alias
        match = _VERSIONED.fullmatch(name)
        if match is not None:
            base = match.group(1)
            for candidate in (base, base + "3" if base in ("python", "pip") else base):
                if candidate in self._tables:
                    return candidate
        return None

    def program(self, name: str) -> Node | None:
        canonical = self.canonical(name)
        if canonical is None:
            return None
        if canonical not in self._compiled:
            started = time.thread_time()
            self._compiled[canonical] = self._compile(canonical)
            self.compile_seconds += time.thread_time() - started
        return self._compiled[canonical]

    def table(self, name: str) -> dict[str, Any]:
        return self._tables[name]

    def _compile(self, name: str) -> Node:
        table = self._tables[name]
        where = f"catalog program {name!r}"
        grammar = table.get("grammar", "auto")
        source = table.get("source", name)
        fig_text = self._fig.get(source) if grammar in ("auto", "fig", "help+fig") else None
        fig = json.loads(fig_text) if fig_text is not None else None
        helped = self._help.get(source) if grammar in ("auto", "help", "help+fig") else None
        if grammar == "auto" and helped is not None:
            fig = None if not (fig and fig.get("s")) else fig  # GNU help is the better table
        node = _fig_node(name, fig, None) if fig is not None else Node(name)
        if helped is not None:
            node.options.update(_help_options(helped["o"]))
            node.abbrev = True
        if table.get("drop_subs"):
            node.subs = {}  # fig lists sed's script commands (p, d, s...) as subcommands
        _apply(node, table, where)
        _finish(node)
        return node


def _merge_file(tables: dict[str, dict[str, Any]], data: dict[str, Any], source: str) -> None:
    groups = data.pop("group", {})
    for name, table in data.items():
        if name in tables:
            raise CatalogError(f"{source}: program {name!r} is described twice")
        if not isinstance(table, dict):
            raise CatalogError(f"{source}: {name!r} must be a table")
        tables[name] = table
    for group_name, group in groups.items():
        programs = group.get("programs", [])
        settings = {k: v for k, v in group.items() if k != "programs"}
        for program in programs:
            own = tables.setdefault(program, {})
            for key, value in settings.items():
                own.setdefault(key, value)
        if not programs:
            raise CatalogError(f"{source}: group {group_name!r} names no programs")


_NODE_KEYS = {
    "caps",
    "args",
    "options",
    "sub",
    "posix",
    "options_first",
    "numeric",
    "lenient",
    "abbrev",
    "needs_sub",
    "handler",
    "out",
    "example",
    "aliases",
    "grammar",
    "source",
    "op_caps",
    "drop_options",
    "guess_values",
    "drop_subs",
}


def _apply(node: Node, table: dict[str, Any], where: str) -> None:
    unknown = set(table) - _NODE_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {sorted(unknown)}")
    if "caps" in table:
        caps = frozenset(table["caps"])
        bad = caps - set(CAPABILITIES)
        if bad:
            raise CatalogError(f"{where}: unknown capabilities {sorted(bad)}")
        node.caps = caps
    if "args" in table:
        node.args = parse_args(table["args"], where)
        node.args_exact = True
    for key in (
        "posix",
        "options_first",
        "numeric",
        "lenient",
        "abbrev",
        "needs_sub",
        "guess_values",
    ):
        if key in table:
            setattr(node, key, bool(table[key]))
    if "handler" in table:
        node.handler = str(table["handler"])
    if "out" in table:
        node.out = str(table["out"])
    if "example" in table:
        node.example = tuple(table["example"])
    for spelling in table.get("drop_options", ()):
        node.options.pop(spelling, None)
    for spellings, spec in table.get("options", {}).items():
        _apply_option(node, spellings, spec, where)
    for sub_path, sub_table in table.get("sub", {}).items():
        target = node
        for part in sub_path.split():
            child = target.subs.get(part)
            if child is None:
                child = target.subs[part] = Node(part, parent=target)
            target = child
        _apply(target, sub_table, f"{where} subcommand {sub_path!r}")
    if "op_caps" in table:
        _apply_op_caps(node, table["op_caps"], where)


def _apply_option(node: Node, spellings: str, spec: Any, where: str) -> None:
    given = tuple(s for s in spellings.split("|") if s)
    if isinstance(spec, str):
        spec = {"value": spec}
    if not isinstance(spec, dict) or set(spec) - {"value", "caps", "args", "rest", "values"}:
        raise CatalogError(f"{where}: option {spellings!r} must be a kind or a table")
    if not all(name.startswith(("-", "+")) for name in given):
        raise CatalogError(f"{where}: option {spellings!r}: spellings start with - or +")
    # Spellings the generated table already groups with these stay in the group.
    names = list(given)
    for name in given:
        old = node.options.get(name)
        if old is not None:
            names += [n for n in old.names if n not in names and node.options.get(n) is old]
    value = spec.get("value", "")
    optional = value.endswith("?")
    value = value.rstrip("?") or None
    if value is not None:
        _kind(value, where)
    caps = frozenset(spec.get("caps", ()))
    if caps - set(CAPABILITIES):
        raise CatalogError(f"{where}: option {spellings!r}: unknown capabilities")
    option = Option(
        tuple(names),
        value,
        optional,
        caps,
        spec.get("args"),
        spec.get("rest"),
        int(spec.get("values", 1)),
    )
    if option.args is not None:
        parse_args(option.args, where)
    if option.rest is not None:
        _kind(option.rest, where)
    for name in names:
        node.options[name] = option


def _apply_op_caps(node: Node, patterns: dict[str, list[str]], where: str) -> None:
    """Capabilities of leaf subcommands by name (`describe-*` reads): cloud CLIs have
    thousands of operations whose verbs say what they do."""
    compiled = [
        (re.compile("|".join(_glob(p) for p in pattern.split("|"))), frozenset(caps))
        for pattern, caps in patterns.items()
    ]
    for caps in compiled:
        bad = caps[1] - set(CAPABILITIES)
        if bad:
            raise CatalogError(f"{where}: unknown capabilities {sorted(bad)}")

    def visit(current: Node, seen: set[int]) -> None:
        if id(current) in seen:
            return
        seen.add(id(current))
        for child in current.subs.values():
            if not child.subs and not child.caps:
                for pattern, caps in compiled:
                    if pattern.fullmatch(child.name):
                        child.caps = caps
                        break
            visit(child, seen)

    visit(node, set())


def _glob(pattern: str) -> str:
    return "".join(".*" if ch == "*" else re.escape(ch) for ch in pattern)


def _finish(node: Node, seen: set[int] | None = None) -> None:
    """Long spellings for abbreviation; subcommands inherit the flags that describe a tool."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    node.longs = tuple(sorted(n for n in node.options if n.startswith("--")))
    current: Node | None = node
    while current is not None and current.handler is None:
        current = current.parent
    node.handler_cache = current.handler if current is not None else None
    for child in node.subs.values():
        if child.parent is node:
            if not child.caps:
                child.caps = node.caps
            child.lenient = child.lenient or node.lenient
            child.guess_values = child.guess_values or node.guess_values
            child.abbrev = child.abbrev or node.abbrev
        _finish(child, seen)


CATALOG = Catalog.load()
