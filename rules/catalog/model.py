"""The catalog's values: what a program's words mean.

A `Node` is a program or one of its subcommands: its options (every
spelling maps to one `Option`), the kinds of its positional arguments, its
subcommands, and its capabilities. Kinds are single letters (see KINDS);
capabilities are words (see CAPABILITIES). Both are documented in
rules/catalog/README.md, which is the reference for the data files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# What a word is to the program that receives it.
KINDS = {
    "v": "plain data",
    "P": "a pattern (regular expression, glob, filter)",
    "n": "a number",
    "r": "a file it reads",
    "w": "a file it writes",
    "a": "a file it changes in place (read and written)",
    "D": "a file or directory it deletes",
    "d": "a directory it reads",
    "W": "a directory it writes into",
    "p": "a path whose use is not known (counted as read and written)",
    "k": "a key or credential file it uses without printing",
    "x": "a script file it runs",
    "c": "the start of a command it runs (the remaining words)",
    "C": "a shell command line it runs",
    "e": "code in its own language",
    "s": "SQL",
    "u": "a URL it connects to",
    "h": "a host it connects to",
    "m": "a module it runs (python -m)",
    "U": "a unit or service name",
    "q": "a process id or name it signals",
}
PATH_KINDS = frozenset("rwaDdWpkx")
CODE_KINDS = frozenset("cCexm")
CAPABILITIES = {
    "info": "prints information, changes nothing",
    "read": "reads files",
    "write": "creates or changes files",
    "delete": "deletes files or data",
    "net": "connects to other hosts",
    "send": "sends local data to another host",
    "exec": "runs commands or code it is given",
    "build": "runs the project's own code (build, test, task runners)",
    "privilege": "runs as another user or changes privileges",
    "service": "starts, stops or changes services",
    "package": "installs or removes packages",
    "database": "a database client",
    "process": "signals or controls other processes",
    "system": "changes host-wide settings (mounts, kernel, firewall, network, time)",
    "secret": "prints stored credentials",
    "interactive": "reads keystrokes from a terminal",
    "infra": "creates or destroys infrastructure (cloud, cluster, IaC)",
    "account": "changes users, groups or passwords",
    "schedule": "schedules commands to run later",
    "disk": "works on block devices or filesystems",
    "power": "shuts down or reboots the host",
    "audit": "changes logs or the audit system",
}


@dataclass(slots=True)
class Option:
    """One option, under all its spellings."""

    names: tuple[str, ...]
    value: str | None = None  # None: takes no value; else the value's kind letter
    optional: bool = False  # the value is optional: only attached (--x=V, -xV)
    caps: frozenset[str] = frozenset()
    args: str | None = None  # a new positional pattern when this option is given
    rest: str | None = None  # the words after this option are of this kind (docker -- CMD)
    values: int = 1  # how many words the value takes (almost always one)
    attached: bool = False  # the value must be attached (--x=V): fig's requiresSeparator
    bare: tuple[str, ...] = ()  # the spellings without dashes (-r, --recursive: r, recursive)

    def __post_init__(self) -> None:
        self.bare = tuple(name.lstrip("-+") for name in self.names)


@dataclass(slots=True)
class ArgSpec:
    kind: str
    many: bool = False  # zero or more (with `required`: one or more)
    required: bool = True


@dataclass(slots=True)
class Node:
    """A program or subcommand."""

    name: str
    caps: frozenset[str] = frozenset()
    options: dict[str, Option] = field(default_factory=dict)
    args: tuple[ArgSpec, ...] | None = None  # None: not described (words are data)
    args_exact: bool = False  # the pattern is the catalog's own (fig's counts are loose)
    subs: dict[str, Node] = field(default_factory=dict)
    posix: bool = False  # single-dash long options (-name), no clustering
    options_first: bool = False  # options end at the first positional
    numeric: bool = False  # -NUM is a value (head -5, kill -9)
    lenient: bool = False  # options not listed are taken as harmless flags
    guess_values: bool = False  # ... and a long one takes the next word unless it is an option
    abbrev: bool = False  # GNU long options may be abbreviated (--rec)
    needs_sub: bool = False  # a positional must name a subcommand
    handler: str | None = None  # code in rules/handlers/ that reads what the grammar cannot
    out: str = "text"  # what it prints: text | names | none
    example: tuple[str, ...] = ()  # lines that must parse as understood (catalog test)
    parent: Node | None = None
    risky: bool | None = None  # computed: some option writes, deletes or runs code
    longs: tuple[str, ...] = ()  # computed: long spellings, for abbreviations
    path_cache: tuple[str, ...] | None = None
    handler_cache: str | None = None  # computed: this node's handler or an ancestor's

    def option(self, name: str) -> Option | None:
        """This node's option or one inherited from the nodes above it."""
        node: Node | None = self
        while node is not None:
            found = node.options.get(name)
            if found is not None:
                return found
            node = node.parent
        return None

    def abbreviation(self, prefix: str) -> Option | None:
        """A unique long option `prefix` abbreviates (GNU getopt_long), if any."""
        node: Node | None = self
        while node is not None:
            if node.abbrev:
                matches = {
                    id(o): o for n in node.longs if n.startswith(prefix) for o in (node.options[n],)
                }
                if len(matches) == 1:
                    return next(iter(matches.values()))
                if matches:
                    return None
            node = node.parent
        return None

    def has_risky_options(self) -> bool:
        """Whether an option could write, delete or run something (a word of unknown value in
        an option position could be one of them)."""
        if self.risky is None:
            risky = False
            node: Node | None = self
            while node is not None and not risky:
                for option in node.options.values():
                    if (option.value is not None and option.value in "waDWxcCemp") or (
                        option.caps - {"info", "read"}
                    ):
                        risky = True
                        break
                node = node.parent
            self.risky = risky
        return self.risky

    def path(self) -> tuple[str, ...]:
        """Subcommand names from the program down to here (not the program's own name)."""
        if self.path_cache is not None:
            return self.path_cache
        names: list[str] = []
        node: Node | None = self
        while node is not None and node.parent is not None:
            names.append(node.name)
            node = node.parent
        self.path_cache = tuple(reversed(names))
        return self.path_cache
