"""From a command's parsed words to the facts rules match on: files read, written,
deleted and run, hosts, nested commands, SQL, and what it prints.

The catalog says what each word is (rules/catalog/model.py KINDS); this module
turns each kind into facts, judging the words that are commands themselves
(a wrapper's command, `sh -c` strings) recursively. Programs whose words hold
a language of their own (find's expressions, sed scripts, ssh -o options,
SQL...) get a handler (rules/handlers.py) after the generic pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from rules import paths as P
from rules.catalog import Node as Program
from rules.context import ShellState
from rules.grammar import Parsed
from rules.hosts import canonical_host
from rules.model import Reason
from rules.pure import PURE, output, output_class
from rules.shell import AGENT, Feed, Outcome, Walker
from rules.values import ANY, SAFE, UNKNOWN, Word, path_form, text_of

_TREE = frozenset({"recursive", "R", "r", "a", "archive"})
_INFO = frozenset({"info"})
_STDIN_SENDERS = frozenset({"netcat", "ssh", "openssl", "socat", "httpie"})
_CHANGES = frozenset(
    {
        "disk",
        "write",
        "delete",
        "account",
        "schedule",
        "package",
        "service",
        "system",
        "audit",
        "process",
        "power",
        "infra",
    }
)


class Facts:
    """What one command does, gathered from its words (the handlers add to it)."""

    __slots__ = (
        "walker",
        "program",
        "node",
        "parsed",
        "words",
        "state",
        "feed",
        "via",
        "depth",
        "reasons",
        "caps",
        "reads",
        "writes",
        "deletes",
        "runs",
        "uses",
        "hosts",
        "sends",
        "sql",
        "units",
        "targets",
        "runs_input",
        "runs_downloaded",
        "open_args",
        "recursive",
        "output_text",
        "out_class",
        "handled_stdin",
        "prints_paths",
    )

    def __init__(
        self,
        walker: Walker,
        program: str,
        node: Program,
        parsed: Parsed,
        words: list[str | Word],
        state: ShellState,
        feed: Feed,
        via: tuple[str, ...],
        depth: int,
        reasons: list[Reason],
    ) -> None:
        self.walker = walker
        self.program = program
        self.node = node
        self.parsed = parsed
        self.words = words
        self.state = state
        self.feed = feed
        self.via = via
        self.depth = depth
        self.reasons = reasons
        self.caps: set[str] = set(node.caps)
        self.reads: list[str] = []
        self.writes: list[str] = []
        self.deletes: list[str] = []
        self.runs: list[str] = []
        self.uses: list[str] = []
        self.hosts: list[str] = []
        self.sends: list[str] = []
        self.sql: list[str] = []
        self.units: list[str] = []
        self.targets: list[str] = []
        self.runs_input = False
        self.runs_downloaded = False
        self.open_args = False
        self.recursive = False
        self.output_text: str | None = None
        self.out_class = ANY
        self.handled_stdin = False
        self.prints_paths: str | None = None  # a glob every path it prints matches

    # --- words of each kind ---------------------------------------------------------

    def option_values(self, *names: str) -> list[str | Word]:
        """The values given to the option any of `names` spells (`-X`, `--request`)."""
        return [
            g.value
            for g in self.parsed.options
            if g.value is not None and (g.spelling in names or set(g.option.names) & set(names))
        ]

    def positional_words(self) -> list[str | Word]:
        return [w for w, _ in self.parsed.positionals]

    def value(self, word: str | Word, kind: str, shown: str | None = None) -> None:
        if kind in ("v", "P", "n"):
            return
        if kind in "rwaDdWpkx":
            self.path(word, kind, shown)
            return
        if kind == "u":
            self.url(word)
            return
        if kind == "h":
            self.host(word)
            return
        if kind == "C":
            self.line(word, f"{self.program} {shown or ''}".strip())
            return
        if kind == "c":
            # An option's command is one word, which the program hands to a shell
            # (split --filter, tar --to-command, diff3 --diff-program): read as a line, a
            # bare program name is the same command and `cat /etc/shadow` is two words.
            self.line(word, f"{self.program} {shown or ''}".strip())
            return
        if kind == "s":
            self.sql_text(word)
            return
        if kind == "U":
            self.units.append(text_of(word))
            if isinstance(word, Word) and word.unknown == ANY:
                self.reasons.append(Reason(text_of(word), "a unit whose name is not known"))
            return
        if kind == "q":
            self.targets.append(text_of(word))
            if isinstance(word, Word) and word.unknown == ANY:
                self.reasons.append(
                    Reason(text_of(word), "a process whose id or name is not known")
                )
            return
        if kind == "e":
            self.reasons.append(
                Reason(_short(word), f"{self.program} code given on the line is not analysed")
            )
            return
        if kind == "m":
            self.reasons.append(Reason(text_of(word), "a module the bastion does not know"))

    def path(self, word: str | Word, kind: str, shown: str | None = None) -> list[str]:
        text = text_of(word)
        if text in ("-", "/dev/stdin", "/dev/stdout"):
            return []
        form = path_form(word)
        if form is None:
            self.reasons.append(Reason(text, "a path whose value is not known"))
            return []
        spelled = P.resolve(form[0], self.state.cwd, self.state.home)
        if spelled is None:
            why = (
                "the working directory is not known"
                if self.state.cwd is None
                else "the path cannot be resolved (`..` after a glob or above a home "
                "whose place is not known)"
            )
            self.reasons.append(Reason(text, why))
            return []
        spelled = tuple(self._links(p) for p in spelled)
        # A directory deleted or changed recursively is matched by its own path: rules name
        # the roots they protect (`/etc`, `/var/log`, `**/.ssh`). Every file under D
        # (find's `D/**/*`) is as much as D itself when deleted or changed.
        found = list(spelled)
        if kind in "wDa":
            found += [p[:-5] or "/" for p in spelled if p.endswith("/**/*")]
        if kind == "W":
            found = [p.rstrip("/") + "/" for p in spelled]  # written into: DIR/
        if kind in "rpa":
            # a whole tree read is matched by its root (`grep -r x src` reads src)
            self.reads.extend(p[:-3] or "/" if p.endswith("/**") else p for p in spelled)
        if kind in "wWap":
            self.writes.extend(found)
        if kind == "D":
            self.deletes.extend(found)
        if kind == "k":
            self.uses.extend(found)
        if kind == "x":
            # the interpreter reads the script (and prints its lines in errors:
            # `bash /etc/shadow` shows every hash)
            self.runs.extend(spelled)
            self.reads.extend(spelled)
        return list(spelled)

    def _links(self, path: str) -> str:
        for link, target in self.state.links.items():
            if path == link or path.startswith(link + "/"):
                rest = path[len(link) :]
                return (target.rstrip("/") + rest) if rest else target
        return path

    def url(self, word: str | Word) -> None:
        text = text_of(word)
        if isinstance(word, Word) and word.unknown == ANY:
            self.reasons.append(Reason(text, "a URL whose value is not known"))
            return
        raw = word if isinstance(word, str) else word.text
        host = _url_host(raw)
        if host is None or UNKNOWN in host:
            self.reasons.append(Reason(text, "the host of this URL is not known"))
            return
        self._add_host(host, host)
        self.caps.add("net")

    def host(self, word: str | Word) -> None:
        text = text_of(word)
        if isinstance(word, Word) and UNKNOWN in word.text.split("@")[-1].split(":")[0]:
            self.reasons.append(Reason(text, "a host whose name is not known"))
            return
        self._add_host(text, _bare_host(text))
        self.caps.add("net")

    def _add_host(self, written: str, bare: str) -> None:
        """The host as written, and as the network reads it when that differs
        (`2852039166` is 169.254.169.254): rules name the canonical form."""
        self.hosts.append(written)
        canonical = canonical_host(bare)
        if canonical != written:
            self.hosts.append(canonical)

    def sql_text(self, word: str | Word) -> None:
        from rules.sql import sql_kinds

        if not isinstance(word, str):
            self.reasons.append(Reason(text_of(word), "SQL whose text is not known"))
            return
        try:
            self.sql.extend(sql_kinds(word))
        except ValueError as exc:
            self.reasons.append(Reason(_short(word), str(exc)))
        except RecursionError:
            self.reasons.append(Reason(_short(word), "SQL nested too deeply to analyse"))

    # --- nested commands ------------------------------------------------------------

    def argv(
        self,
        words: list[str | Word],
        label: str,
        *,
        feed: Feed | None = None,
        open_args: bool = False,
    ) -> None:
        """Words that are a command another program runs (sudo CMD, xargs CMD, find -exec)."""
        if not words:
            return
        start = len(self.walker.analysis.commands)
        _invoke.invoke(
            self.walker,
            list(words),
            [],
            _invoke.NO_REDIRECTS,
            self.state.copy(),
            feed or self.feed,
            (*self.via, label),
            self.depth + 1,
            [],
            as_program=True,
        )
        if open_args:
            commands = self.walker.analysis.commands
            commands[start] = commands[start]._replace(open_args=True)

    def line(
        self, word: str | Word, label: str, feed: Feed | None = None, same_shell: bool = False
    ) -> Outcome | None:
        """A string another program runs as a shell line (sh -c, ssh HOST CMD, watch)."""
        if not isinstance(word, str):
            self.reasons.append(Reason(text_of(word), "a command line whose text is not known"))
            return None
        state = self.state if same_shell else self.state.copy()
        return self.walker.line(
            word, state, via=(*self.via, label), depth=self.depth + 1, feed=feed or self.feed
        )

    def not_understood(self, word: str, why: str) -> None:
        self.reasons.append(Reason(word, why))


def _short(word: str | Word, limit: int = 60) -> str:
    text = text_of(word)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _bare_host(text: str) -> str:
    """`user@host:port`, `[v6]:port`: the host alone."""
    host = text.rsplit("@", 1)[-1]
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.split(":", 1)[0] if host.count(":") == 1 else host


def _url_host(text: str) -> str | None:
    if "://" not in text:
        host = text.split("/", 1)[0]
        return host.rsplit("@", 1)[-1].split(":")[0] or None
    try:
        parts = urlsplit(text.replace(UNKNOWN, "UNKNOWNPART"))
    except ValueError:
        return None
    host = parts.hostname
    if host is None:
        return None
    return host.replace("unknownpart", UNKNOWN)


def facts(
    walker: Walker,
    program: str,
    node: Program,
    parsed: Parsed,
    words: list[str | Word],
    redirect: object,
    state: ShellState,
    feed: Feed,
    via: tuple[str, ...],
    depth: int,
    reasons: list[Reason],
    local_data: bool = False,
) -> Outcome:
    if parsed.reasons:
        reasons.extend(parsed.reasons)
    first = len(walker.analysis.commands)
    here = Facts(walker, program, parsed.node, parsed, words, state, feed, via, depth, reasons)
    info_only = False
    changes = False
    for given in parsed.options:
        option = given.option
        if option.caps:
            here.caps.update(option.caps)
            if option.caps == _INFO:
                info_only = True
            else:
                changes = True
        if not _TREE.isdisjoint(option.bare):
            here.recursive = True
    info_only = info_only and not changes
    if info_only:
        # an option that makes the command only print (fdisk -l, crontab -l, passwd -S)
        here.caps = {c for c in here.caps if c not in _CHANGES} | {"info"}
    for given in parsed.options:
        if given.value is not None and given.option.value is not None:
            for value in given.values or (given.value,):
                here.value(value, given.option.value, given.spelling)
    for word, kind in parsed.positionals:
        if kind not in _DATA:
            here.value(word, kind)
    handler = parsed.node.handler_cache
    if handler is not None:
        function = _handlers.HANDLERS.get(handler)
        if function is None:
            reasons.append(Reason(program, f"no handler {handler!r} (a catalog error)"))
        else:
            function(here)
    if parsed.rest is not None and parsed.rest_kind == "c":
        here.argv(parsed.rest, program)
    caps = here.caps
    if "net" in caps:
        if local_data:
            here.sends.append("$(...)")  # data read from local files, sent in the arguments
            caps.add("send")
        if handler in _STDIN_SENDERS and feed.kind in ("file", "pipe"):
            here.sends.append(feed.path if feed.kind == "file" and feed.path else "-")
            caps.add("send")
    argv = tuple([text_of(w) for w in words])
    out = parsed.node.out
    if here.output_text is None and program in PURE:
        known = [w for w in words[1:] if type(w) is str]
        if len(known) == len(words) - 1:
            stdin = feed.text if feed.kind in ("pipe", "text", "file") else None
            here.output_text = output(program, known, stdin)  # type: ignore[arg-type]
    if here.output_text is None:
        if out == "names" or program in ("date", "cat"):
            known = [w for w in words[1:] if type(w) is str]
            here.out_class = output_class(program, known, out == "names")  # type: ignore[arg-type]
        if out == "none":
            here.output_text = ""
    if out == "paths" and here.prints_paths is None and state.cwd is not None:
        here.prints_paths = state.cwd.rstrip("/") + "/**"
    outcome = _invoke.emit(
        walker,
        program,
        argv,
        parsed,
        reasons,
        redirect,
        via,
        feed,
        state,  # type: ignore[arg-type]
        caps=frozenset(caps),
        output_text=here.output_text,
        out_class=here.out_class,
        reads=tuple(here.reads),
        writes=tuple(here.writes),
        deletes=tuple(here.deletes),
        runs=tuple(here.runs),
        uses=tuple(here.uses),
        hosts=tuple(here.hosts),
        sends=tuple(here.sends),
        sql=tuple(here.sql),
        units=tuple(here.units),
        targets=tuple(here.targets),
        runs_input=here.runs_input,
        runs_downloaded=here.runs_downloaded,
        open_args=here.open_args,
        at=first,
    )
    outcome.paths = here.prints_paths
    return outcome


_DATA = frozenset("vPn")


def _handler(node: Program) -> str | None:
    if node.handler_cache is not None or node.handler is None and node.parent is None:
        return node.handler_cache
    current: Program | None = node
    while current is not None:
        if current.handler is not None:
            return current.handler
        current = current.parent
    return None


def judge_script(
    walker: Walker,
    path: str,
    interpreter: str | None,
    args: list[str | Word],
    state: ShellState,
    feed: Feed,
    via: tuple[str, ...],
    depth: int,
    reasons: list[Reason],
    *,
    same_shell: bool = False,
) -> None:
    """A script file that is run: by its content when the session carried or wrote it."""
    carried = state.files.get(path)
    if carried is not None:
        if carried.content is None:
            reasons.append(
                Reason(path, "runs a file the bastion carried but does not hold the text of")
            )
            return
        shell = interpreter in (None, "sh", "bash", "dash", "ksh", "zsh", "source")
        first = carried.content.split("\n", 1)[0]
        if first.startswith("#!") and not any(s in first for s in ("sh", "bash")):
            shell = False
        if not shell:
            reasons.append(
                Reason(path, f"runs {interpreter or 'a'} script the bastion does not analyse")
            )
            return
        inner = state if same_shell else state.copy()
        saved = inner.positional
        inner.positional = list(args)
        try:
            walker.line(
                carried.content, inner, via=(*via, f"script {path}"), depth=depth + 1, feed=feed
            )
        finally:
            inner.positional = saved
        return
    if path in state.downloaded:
        reasons.append(Reason(path, "runs a file this session downloaded"))
    elif path in state.written:
        reasons.append(
            Reason(path, "runs a file this session wrote without the bastion seeing its text")
        )
    elif path.startswith(("/tmp/", "/var/tmp/", "/dev/shm/", "/run/user/")):
        reasons.append(Reason(path, "runs a script from a temporary directory"))
    elif path.startswith("/proc/self/fd/") or path == "/dev/fd/63":
        reasons.append(Reason(path, "runs code from a pipe or process substitution"))


__all__ = ["Facts", "facts", "judge_script", "AGENT", "SAFE"]


from rules import handlers as _handlers  # noqa: E402  (handlers import this module)
from rules import invoke as _invoke  # noqa: E402
