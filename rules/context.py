"""What earlier lines of a shell session set up, as a frozen value (`Context`), and the
mutable state one line is read with (`ShellState`).

    >>> ctx = Context.start(login="deploy", home="/home/deploy")
    >>> state = ShellState.from_context(ctx)
    >>> state.set_var("x", "/etc/shadow"); state.to_context().variables
    (('x', Var(value='/etc/shadow', unknown=0, attrs='')),)

A Context is picklable and bounded in size (MAX_* below, about 1.3 MB at
most with every carried file at its limit): a caller keeps the Context a
Decision returns and hands it to the next line's evaluation, so
`x=/etc/shadow` then `cat $x` are judged as one program. What a line changed
in ways that cannot be known makes the names it touched unknown, never
silently dropped: a variable set from input is unknown, and `eval` of
unknown text poisons the whole context (every later use is unknown).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rules.values import ANY

MAX_VARIABLES = 256
MAX_VALUE = 4096
MAX_ARRAY = 256
MAX_FUNCTIONS = 64
MAX_FUNCTION = 16 * 1024
MAX_ALIASES = 64
MAX_FILES = 32
MAX_FILE_CONTENT = 32 * 1024
MAX_PATHS = 256  # written, downloaded, links


@dataclass(frozen=True, slots=True)
class Var:
    """A shell variable: known text (or array), or unknown of some class."""

    value: str | tuple[str, ...] | None  # None: unknown
    unknown: int = 0  # SAFE or ANY when value is None
    attrs: str = ""  # declare flags that matter: i (integer), n (nameref), x (exported), a, A


@dataclass(frozen=True, slots=True)
class CarriedFile:
    """A file the bastion carried to the target (SFTP, scp) or a line wrote with known text."""

    content: str | None  # text, when it is known and small enough
    sha256: str | None = None
    size: int | None = None


@dataclass(frozen=True, slots=True)
class Context:
    cwd: str | None = "~"  # absolute, under `~`, or None when unknown
    home: str | None = None  # the login's home, when known
    login: str | None = None
    variables: tuple[tuple[str, Var], ...] = ()
    functions: tuple[tuple[str, str], ...] = ()  # name -> body source
    aliases: tuple[tuple[str, str], ...] = ()
    options: frozenset[str] = frozenset()  # set -o / shopt names that are on
    files: tuple[tuple[str, CarriedFile], ...] = ()  # canonical path -> what it holds
    written: tuple[str, ...] = ()  # paths earlier lines wrote with text not known
    downloaded: tuple[str, ...] = ()  # paths written from the network
    links: tuple[tuple[str, str], ...] = ()  # symbolic links earlier lines made
    poisoned: bool = False  # an earlier line ran code whose effect on the shell is unknown
    path_changed: bool = False  # PATH now looks in a directory before the system's
    remotes: frozenset[str] = frozenset()  # git remotes whose URL earlier lines set

    @staticmethod
    def start(login: str | None = None, home: str | None = None) -> Context:
        """A login shell's start: in the home directory, nothing defined. Without a home,
        a login's is taken to be /root or /home/LOGIN (only `..` above it depends on it)."""
        if home is None and login:
            home = "/root" if login == "root" else f"/home/{login}"
        return Context(cwd="~", home=home, login=login)

    def with_files(self, files: dict[str, CarriedFile]) -> Context:
        merged = dict(self.files)
        merged.update(files)
        kept = tuple(sorted(merged.items()))[-MAX_FILES:]
        return _replace(self, files=kept)


def _replace(ctx: Context, **changes: object) -> Context:
    from dataclasses import replace

    return replace(ctx, **changes)  # type: ignore[arg-type]


_STANDARD_OPTIONS = frozenset({"hashall", "braceexpand", "interactive-comments"})


@dataclass(slots=True)
class ShellState:
    """One shell's state while a line is read; subshells read a copy."""

    cwd: str | None
    home: str | None
    login: str | None
    variables: dict[str, Var] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    options: set[str] = field(default_factory=set)
    files: dict[str, CarriedFile] = field(default_factory=dict)
    written: set[str] = field(default_factory=set)
    downloaded: set[str] = field(default_factory=set)
    links: dict[str, str] = field(default_factory=dict)
    poisoned: bool = False
    path_changed: bool = False
    positional: list[object] | None = None  # $1.. inside a function (Words)
    oldpwd: str | None = None
    base: Context | None = None  # the context this state started from
    arg0: object = None  # $0 of `sh -c CMD NAME`
    remotes: set[str] = field(default_factory=set)  # git remotes whose URL the session set

    @staticmethod
    def from_context(ctx: Context) -> ShellState:
        return ShellState(
            cwd=ctx.cwd,
            home=ctx.home,
            login=ctx.login,
            variables=dict(ctx.variables),
            functions=dict(ctx.functions),
            aliases=dict(ctx.aliases),
            options=set(ctx.options),
            files=dict(ctx.files),
            written=set(ctx.written),
            downloaded=set(ctx.downloaded),
            links=dict(ctx.links),
            poisoned=ctx.poisoned,
            path_changed=ctx.path_changed,
            base=ctx,
            remotes=set(ctx.remotes),
        )

    def copy(self) -> ShellState:
        """A subshell's state: changes made in it do not reach this one."""
        return ShellState(
            self.cwd,
            self.home,
            self.login,
            dict(self.variables),
            dict(self.functions),
            dict(self.aliases),
            set(self.options),
            self.files,  # files and paths are facts about the host: shared
            self.written,
            self.downloaded,
            self.links,
            self.poisoned,
            self.path_changed,
            self.positional,
            self.oldpwd,
            None,
            self.arg0,
            self.remotes,  # a remote's URL lives in .git/config: a fact about the host
        )

    def set_var(
        self,
        name: str,
        value: str | tuple[str, ...] | None,
        unknown: int = 0,
        attrs: str | None = None,
    ) -> None:
        old = self.variables.get(name)
        keep = old.attrs if old is not None and attrs is None else (attrs or "")
        if isinstance(value, str) and len(value) > MAX_VALUE:
            value, unknown = None, ANY
        if isinstance(value, tuple) and (
            len(value) > MAX_ARRAY or any(len(v) > MAX_VALUE for v in value)
        ):
            value, unknown = None, ANY
        if value is None and not unknown:
            unknown = ANY
        if name not in self.variables and len(self.variables) >= MAX_VARIABLES:
            self.poisoned = True  # too many to remember: later uses are unknown
            return
        self.variables[name] = Var(value, unknown if value is None else 0, keep)

    def unchanged(self) -> bool:
        """Whether the line left the shell as it found it (the common case: reuse the
        context object instead of building a new one)."""
        base = self.base
        if base is None or self.cwd != base.cwd or self.poisoned != base.poisoned:
            return False
        if self.path_changed != base.path_changed or self.remotes != base.remotes:
            return False
        if not (
            self.variables
            or self.functions
            or self.aliases
            or self.files
            or self.links
            or self.written
            or self.downloaded
            or base.variables
            or base.functions
            or base.aliases
            or base.files
            or base.links
            or base.written
            or base.downloaded
        ):
            return (self.options - _STANDARD_OPTIONS) == base.options
        pairs = (
            (self.variables, base.variables),
            (self.functions, base.functions),
            (self.aliases, base.aliases),
            (self.files, base.files),
            (self.links, base.links),
        )
        for mine, theirs in pairs:
            if len(mine) != len(theirs) or (mine and mine != dict(theirs)):
                return False
        if len(self.written) != len(base.written) or len(self.downloaded) != len(base.downloaded):
            return False
        if self.written and self.written != set(base.written):
            return False
        if self.downloaded and self.downloaded != set(base.downloaded):
            return False
        return (self.options - _STANDARD_OPTIONS) == base.options

    def to_context(self) -> Context:
        if self.unchanged():
            return self.base  # type: ignore[return-value]
        functions = {k: v for k, v in self.functions.items() if len(v) <= MAX_FUNCTION}
        poisoned = self.poisoned or len(functions) != len(self.functions)
        poisoned = poisoned or len(functions) > MAX_FUNCTIONS or len(self.aliases) > MAX_ALIASES
        files = sorted(self.files.items())
        return Context(
            cwd=self.cwd,
            home=self.home,
            login=self.login,
            variables=tuple(sorted(self.variables.items())),
            functions=tuple(sorted(functions.items()))[:MAX_FUNCTIONS],
            aliases=tuple(sorted(self.aliases.items()))[:MAX_ALIASES],
            options=frozenset(self.options - _STANDARD_OPTIONS),
            files=tuple(
                (
                    path,
                    f
                    if f.content is None or len(f.content) <= MAX_FILE_CONTENT
                    else CarriedFile(None, f.sha256, f.size),
                )
                for path, f in files[-MAX_FILES:]
            ),
            written=tuple(sorted(self.written))[:MAX_PATHS],
            downloaded=tuple(sorted(self.downloaded))[:MAX_PATHS],
            links=tuple(sorted(self.links.items()))[:MAX_PATHS],
            poisoned=poisoned
            or max(len(self.written), len(self.downloaded), len(self.remotes)) > MAX_PATHS,
            path_changed=self.path_changed,
            remotes=frozenset(sorted(self.remotes)[:MAX_PATHS]),
        )
