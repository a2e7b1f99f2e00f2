"""Shell builtins: what each does to the shell's state, and which run code implicitly.

`cd`, `export`/`declare`/`local`, `read`, `mapfile`, `printf -v`, `set`,
`shopt`, `alias`, `source`, `eval`, `exec`, `command`, `trap`, `let`...
Each returns the Outcome of the command it stands for and emits a Command
so rules can match it. Features that make bash run code later or
implicitly (`trap`, `mapfile -C`, `complete -C`, `enable -f`, `bind -x`,
`fc`, prompts with substitutions under `set -x`) make it not understood.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from collections.abc import Callable
from importlib import resources

from rules import paths as P
from rules.context import ShellState
from rules.invoke import TEMP_DIRS, Redirects, emit, invoke
from rules.model import Reason
from rules.pure import output
from rules.shell import Feed, Outcome, Walker
from rules.values import ANY, SAFE, UNKNOWN, Word, text_of

Builtin = Callable[[Walker, list, list, Redirects, ShellState, Feed, tuple, int, list], Outcome]


def _variables() -> dict[str, str]:
    data = tomllib.loads(resources.files("rules.catalog").joinpath("variables.toml").read_text())
    table: dict[str, str] = {}
    for kind, names in data.items():
        for name in names:
            table[name] = kind
    return table


VARIABLES = _variables()
_VARIABLE_GLOBS = [(name, kind) for name, kind in VARIABLES.items() if name.endswith("*")]
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_STANDARD_PATH = (
    "/usr/local/sbin",
    "/usr/local/bin",
    "/usr/sbin",
    "/usr/bin",
    "/sbin",
    "/bin",
    "/usr/games",
    "/usr/local/games",
    "/snap/bin",
)


def variable_kind(name: str) -> str | None:
    kind = VARIABLES.get(name)
    if kind is not None:
        return kind
    for pattern, found in _VARIABLE_GLOBS:
        if fnmatch.fnmatchcase(name, pattern):
            return found
    return None


def env_effects(
    walker: Walker,
    state: ShellState,
    name: str,
    value: str | Word,
    via: tuple[str, ...],
    depth: int,
    reasons: list[Reason],
) -> None:
    """`NAME=VALUE cmd`: the variable is set for cmd only (in a copy of the state)."""
    assign(walker, state, name.rstrip("+"), value, via, depth, reasons, prefix=True)


def assign(
    walker: Walker,
    state: ShellState,
    name: str,
    value: str | Word,
    via: tuple[str, ...],
    depth: int,
    reasons: list[Reason],
    *,
    attrs: str | None = None,
    prefix: bool = False,
) -> None:
    append = name.endswith("+")
    name = name.rstrip("+")
    array = name.endswith("=()")
    if array:
        name = name[:-3].rstrip("+")
    subscript = None
    if "[" in name:
        name, _, rest = name.partition("[")
        subscript = rest.rstrip("]")
        if not re.fullmatch(r"-?\d+|[@*]", subscript):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", subscript) or (
                "A" not in (state.variables.get(name).attrs if name in state.variables else "")
            ):
                reasons.append(
                    Reason(
                        f"{name}[{subscript}]",
                        "an array subscript is evaluated as arithmetic, which can run code",
                    )
                )
    kind = variable_kind(name)
    if kind is not None:
        _special(walker, state, name, kind, value, via, depth, reasons)
    var = state.variables.get(name)
    if var is not None and "i" in var.attrs and isinstance(value, str):
        from rules.words import Expander

        expand = Expander(
            state, lambda n, label: (None, ANY), lambda w, why: reasons.append(Reason(w, why))
        )
        result = expand._arith(value, f"{name}={value}")
        value = result if result is not None else Word(UNKNOWN, None, SAFE)
    if array:
        items = tuple(value.split("\x00")) if isinstance(value, str) and value else ()
        if not isinstance(value, str):
            state.set_var(name, None, ANY, attrs)
            return
        if append and var is not None and isinstance(var.value, tuple):
            items = var.value + items
        state.set_var(name, items, 0, attrs)
        return
    if subscript is not None:
        if (
            isinstance(value, str)
            and subscript.isdigit()
            and var is not None
            and isinstance(var.value, tuple)
        ):
            items = list(var.value)
            position = int(subscript)
            if position < 256:
                items.extend([""] * (position + 1 - len(items)))
                items[position] = value
                state.set_var(name, tuple(items), 0, attrs)
                return
        state.set_var(name, None, ANY, attrs)
        return
    if isinstance(value, Word):
        state.set_var(
            name, None, SAFE if value.unknown <= SAFE and UNKNOWN == value.text else ANY, attrs
        )
        return
    if append:
        if var is None and name not in state.variables:
            state.set_var(name, None, ANY, attrs)  # appended to an environment value
            return
        if var is not None and isinstance(var.value, str):
            value = var.value + value
        elif var is not None and var.value is None:
            state.set_var(name, None, var.unknown, attrs)
            return
    state.set_var(name, value, 0, attrs)


def _special(
    walker: Walker,
    state: ShellState,
    name: str,
    kind: str,
    value: str | Word,
    via: tuple[str, ...],
    depth: int,
    reasons: list[Reason],
) -> None:
    shown = f"{name}={text_of(value)}"
    if kind == "code":
        if value != "":
            reasons.append(Reason(shown, f"{name} makes programs load code the bastion cannot see"))
    elif kind == "egress":
        if value != "":
            reasons.append(Reason(shown, f"{name} sends the program's traffic to another host"))
    elif kind == "config":
        _config_file(state, name, shown, value, reasons)
    elif kind == "implicit":
        reasons.append(Reason(shown, f"{name} runs its command implicitly, before every prompt"))
        if isinstance(value, str) and value.strip():
            walker.line(
                value, state.copy(), via=(*via, f"${name}"), depth=depth + 1, feed=Feed("none")
            )
    elif kind in ("command", "program"):
        if not isinstance(value, str):
            reasons.append(Reason(shown, f"{name} names a command whose text is not known"))
        elif value.strip():
            text = value.strip().lstrip("|").replace("%s", "FILE")
            if kind == "program":
                text = "'" + text.replace("'", "'\\''") + "'"
            walker.line(
                text, state.copy(), via=(*via, f"${name}"), depth=depth + 1, feed=Feed("none")
            )
    elif kind == "prompt":
        if not isinstance(value, str) or any(c in value for c in "$`"):
            if name == "PS4" or not isinstance(value, str) or "$(" in value or "`" in value:
                reasons.append(Reason(shown, f"{name} with a substitution runs it when shown"))
    elif kind == "path":
        if _path_puts_system_first(value, state):
            return
        state.path_changed = True
        if not isinstance(value, str):
            reasons.append(Reason(shown, "PATH is set to a value that is not known"))
    elif kind == "audit":
        emit(
            walker,
            "=",
            ("=", shown),
            None,
            [],
            Redirects(),
            via,
            Feed("none"),
            state,
            caps=frozenset({"audit"}),
            targets=(shown,),
        )
    elif kind == "gitconfig":
        reasons.append(Reason(shown, "git configuration from the environment can run commands"))


def _path_puts_system_first(value: str | Word, state: ShellState) -> bool:
    """Whether PATH still finds the system's programs before any other directory's.

    Directories before the first system one may only be the login's ~/.local/bin
    (`export PATH=$HOME/.local/bin:$PATH`, which pip and pipx set up); the login's own
    $PATH, unknown here, counts as the system's (`PATH=$PATH:/opt/bin`) while no line of
    this session set PATH and it is the value's only unknown part. An empty element is
    the current directory."""
    text = value if isinstance(value, str) else value.text
    inherited = "PATH" not in state.variables and text.count(UNKNOWN) == 1
    for directory in text.split(":"):
        if directory in _STANDARD_PATH or (directory == UNKNOWN and inherited):
            return True
        if directory.startswith(P.HOME + "/.local/bin") and UNKNOWN not in directory:
            continue
        return False  # another directory, one not known, or "" (the current directory)
    return False  # no system directory at all: `PATH=/tmp/x ls`


# --- the builtins ----------------------------------------------------------------------


def _words_text(words: list) -> tuple[str, ...]:
    return tuple(text_of(w) for w in words)


def _plain(
    walker: Walker,
    words: list,
    redirect: Redirects,
    state: ShellState,
    feed: Feed,
    via: tuple,
    reasons: list,
    caps: frozenset[str] = frozenset({"info"}),
    **fields: object,
) -> Outcome:
    return emit(
        walker,
        text_of(words[0]),
        _words_text(words),
        None,
        reasons,
        redirect,
        via,
        feed,
        state,
        caps=caps,
        **fields,
    )  # type: ignore[arg-type]


def _home_word(state: ShellState) -> str | Word:
    """`cd` alone goes to $HOME: the login's home unless a line set HOME."""
    from rules.words import home_value

    home = home_value(state)
    return home if home is not None else Word(UNKNOWN, None, ANY)


def _config_file(
    state: ShellState, name: str, shown: str, value: str | Word, reasons: list[Reason]
) -> None:
    """KUBECONFIG=FILE: a file that can name commands (exec plugins) is trusted where it
    was not planted: not in a temporary directory, not written by this session."""
    if value == "":
        return
    if not isinstance(value, str):
        reasons.append(Reason(shown, f"{name} names a configuration file that is not known"))
        return
    for item in filter(None, value.split(":")):  # KUBECONFIG is a list, as PATH is
        spelled = P.resolve(item, state.cwd, state.home)
        path = spelled[0] if spelled else None
        if (
            path is None
            or path.startswith(TEMP_DIRS)
            or path in state.written
            or path in state.files
        ):
            reasons.append(
                Reason(shown, f"{name} loads a configuration file that can name commands to run")
            )
            return


def b_cd(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    args = [w for w in words[1:] if not (isinstance(w, str) and w in ("-L", "-P", "-e", "-@"))]
    target: str | Word | None = args[0] if args else _home_word(state)
    if text_of(words[0]) == "popd":
        state.cwd = None
        return _plain(walker, words, redirect, state, feed, via, reasons)
    old = state.cwd
    if target == "-":
        state.cwd = state.oldpwd
    elif isinstance(target, str) and _cdpath(env, state) and not target.startswith(("/", ".")):
        state.cwd = None  # CDPATH set in the session: `cd etc` may go to /etc
    elif isinstance(target, str):
        spelled = P.resolve(target, state.cwd, state.home)
        state.cwd = spelled[0] if spelled else None
    else:
        state.cwd = None  # a directory not known: later relative paths are unknown
    state.oldpwd = old
    return _plain(walker, words, redirect, state, feed, via, reasons)


def _in_effect(env, state, name: str) -> tuple[bool, object]:  # type: ignore[no-untyped-def]
    """(set, value) of a variable for this command: its prefix assignment, else the
    session's (a Var's value: text, or None when unknown)."""
    for assigned, value in env:
        if assigned == name:
            return True, value if isinstance(value, str) else None
    var = state.variables.get(name)
    return (False, None) if var is None else (True, var.value)


def _cdpath(env, state) -> bool:  # type: ignore[no-untyped-def]
    found, value = _in_effect(env, state, "CDPATH")
    return found and value != ""


def b_hash(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    if any(isinstance(w, str) and w.startswith("-") and "p" in w for w in words[1:]):
        reasons.append(Reason("hash -p", "sets the file a command name runs"))
        state.path_changed = True
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_declare(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    keyword = text_of(words[0])
    attrs = ""
    functions = False
    for word in words[1:]:
        text = text_of(word)
        if isinstance(word, str) and re.fullmatch(r"[-+][a-zA-Z]+", text):
            if "f" in text or "F" in text:
                functions = True
            if text.startswith("-"):
                attrs += "".join(c for c in text[1:] if c in "inaAx")
            continue
        if functions:
            continue
        name, eq, _ = text.partition("=")
        if not eq:
            if _NAME.match(name) and "n" not in attrs:
                var = state.variables.get(name)
                if var is not None:
                    state.set_var(
                        name, var.value, var.unknown, "".join(sorted(set(var.attrs + attrs)))
                    )
                elif attrs:
                    state.set_var(name, None, ANY, attrs)
            continue
        value: str | Word
        if isinstance(word, str):
            value = word.split("=", 1)[1]
            if value.startswith("(") and value.endswith(")") and "a" in attrs + "a":
                inner = value[1:-1]
                if "\x00" in inner or inner == "" or keyword and "a" in attrs:
                    assign(walker, state, name + "=()", inner, via, depth, reasons, attrs=attrs)
                    continue
        else:
            value = Word(word.text.split("=", 1)[1], None, word.unknown)
        if "n" in attrs:
            if isinstance(value, str):
                state.set_var(name, value, 0, "n")
                if "[" in value:
                    reasons.append(Reason(text, "a nameref to a subscript evaluates arithmetic"))
            else:
                reasons.append(Reason(text, "a nameref to a name that is not known"))
                state.set_var(name, None, ANY)
            continue
        assign(walker, state, name, value, via, depth, reasons, attrs=attrs or None)
    if keyword == "export" or "x" in attrs:
        pass
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_unset(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    functions = False
    for word in words[1:]:
        text = text_of(word)
        if text == "-f":
            functions = True
            continue
        if text.startswith("-"):
            continue
        if not isinstance(word, str):
            state.poisoned = True
            continue
        if not functions and _evaluated_subscript(text):
            reasons.append(Reason(text, _SUBSCRIPT_RUNS))
            continue
        if functions:
            state.functions.pop(text, None)
        else:
            state.variables.pop(text, None)
            if text in VARIABLES and VARIABLES[text] == "audit" or text == "PROMPT_COMMAND":
                emit(
                    walker,
                    "=",
                    ("unset", text),
                    None,
                    [],
                    Redirects(),
                    via,
                    feed,
                    state,
                    caps=frozenset({"audit"}),
                    targets=(f"{text}=",),
                )
            state.variables[text] = _unset_marker()
    return _plain(walker, words, redirect, state, feed, via, reasons)


_SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[(.*)\]", re.DOTALL)
_SUBSCRIPT_RUNS = "bash evaluates this subscript (arithmetic, or $(...) in it), which can run code"


def _evaluated_subscript(name: str) -> bool:
    """`unset 'a[$(cmd)]'`, `unset 'a[x]'` with x='a[$(cmd)]': a name's subscript that is
    not a plain number is expanded and evaluated by the builtin itself."""
    match = _SUBSCRIPT.fullmatch(name)
    return match is not None and not match.group(1).strip().lstrip("-").isdigit()


def _unset_marker():  # type: ignore[no-untyped-def]
    from rules.context import Var

    return Var("")


def b_read(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    names: list[str] = []
    array = None
    skip = False
    for position, word in enumerate(words[1:], 1):
        text = text_of(word)
        if skip:
            skip = False
            if words[position - 1] == "-a":
                array = text
            continue
        if text in ("-a", "-d", "-n", "-N", "-p", "-t", "-u", "-i"):
            skip = True
            continue
        if text.startswith("-"):
            continue
        names.append(text)
    known = feed.text if feed.kind in ("text", "pipe") else None
    line = known.split("\n", 1)[0] if known is not None else None
    ifs = _read_ifs(env, state)
    given = _words_text(words)
    raw = "-r" in given
    if any(t in given for t in ("-d", "-n", "-N")):
        line = None  # another delimiter or a count of characters: not worked out
    if ifs == "" and array is None and line is not None and (raw or "\\" not in line):
        # `IFS= read -r line`: the whole line, as it is
        for name in names[:1] or ["REPLY"]:
            state.set_var(name, line)
        for name in names[1:]:
            state.set_var(name, "")
        return _plain(walker, words, redirect, state, feed, via, reasons)
    if ifs != " \t\n" or (not raw and line is not None and "\\" in line):
        line = None  # split on other characters, or backslashes taken out: not worked out
    if array is not None:
        state.set_var(array, tuple(line.split()) if line is not None else None, ANY)
    targets = names or ([] if array else ["REPLY"])
    for index, name in enumerate(targets):
        if not _NAME.match(name):
            reasons.append(Reason(name, "read into a name that is not a plain variable"))
            continue
        if line is None:
            state.set_var(name, None, ANY)
            continue
        parts = line.split(None, len(targets) - 1) if len(targets) > 1 else [line.strip()]
        state.set_var(name, parts[index] if index < len(parts) else "")
    return _plain(walker, words, redirect, state, feed, via, reasons)


def _read_ifs(env, state) -> str | None:  # type: ignore[no-untyped-def]
    """The IFS `read` splits with; None when it is not known."""
    found, value = _in_effect(env, state, "IFS")
    if not found:
        return " \t\n"
    return value if isinstance(value, str) else None


def b_mapfile(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    texts = _words_text(words)
    if "-C" in texts or any(t.startswith("-C") and len(t) > 2 for t in texts):
        reasons.append(Reason("-C", "mapfile -C runs a callback for every line"))
    name = next((t for t in reversed(texts[1:]) if _NAME.match(t)), "MAPFILE")
    known = feed.text if feed.kind in ("text", "pipe") else None
    state.set_var(name, tuple(known.splitlines()) if known is not None else None, ANY)
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_printf(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    if len(words) >= 3 and words[1] == "-v":
        target = text_of(words[2])
        rest = words[3:]
        if all(isinstance(w, str) for w in rest):
            printed = output("printf", list(rest), None)
            state.set_var(target, printed) if printed is not None else state.set_var(
                target, None, ANY
            )
        else:
            state.set_var(target, None, ANY)
        if "[" in target:
            reasons.append(Reason(target, "printf -v into a subscript evaluates arithmetic"))
        return _plain(walker, words, redirect, state, feed, via, reasons)
    return invoke(walker, words, [], redirect, state, feed, via, depth, reasons, as_program=True)


def b_set(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    texts = _words_text(words)
    if "--" in texts:
        state.positional = list(words[texts.index("--") + 1 :])
    on_off = {
        "-x": "xtrace",
        "-f": "noglob",
        "-o": None,
        "+o": None,
        "-e": "errexit",
        "-u": "nounset",
        "+x": "-xtrace",
        "+f": "-noglob",
    }
    for position, text in enumerate(texts[1:], 1):
        if text in ("-o", "+o") and position + 1 < len(texts):
            option = texts[position + 1]
            (state.options.add if text == "-o" else state.options.discard)(option)
            if option == "history" and text == "+o":
                emit(
                    walker,
                    "set",
                    texts,
                    None,
                    [],
                    Redirects(),
                    via,
                    feed,
                    state,
                    caps=frozenset({"audit"}),
                    targets=("history=off",),
                )
        elif re.fullmatch(r"[-+][a-zA-Z]+", text):
            for letter in text[1:]:
                name = on_off.get(text[0] + letter) or {
                    "x": "xtrace",
                    "f": "noglob",
                    "e": "errexit",
                    "u": "nounset",
                    "v": "verbose",
                }.get(letter)
                if name:
                    (state.options.add if text[0] == "-" else state.options.discard)(name)
    if "xtrace" in state.options:
        ps4 = state.variables.get("PS4")
        if ps4 is not None and (
            ps4.value is None
            or (isinstance(ps4.value, str) and ("$(" in ps4.value or "`" in ps4.value))
        ):
            reasons.append(Reason("set -x", "PS4 holds a substitution that runs for every command"))
    del on_off
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_shopt(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    texts = _words_text(words)
    mode = None
    for text in texts[1:]:
        if text in ("-s", "-u"):
            mode = text
        elif not text.startswith("-"):
            if mode == "-s":
                state.options.add(text)
            elif mode == "-u":
                state.options.discard(text)
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_alias(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    for word in words[1:]:
        text = text_of(word)
        if text.startswith("-"):
            continue
        name, eq, body = text.partition("=")
        if not eq:
            continue
        if not isinstance(word, str):
            reasons.append(Reason(text, "an alias whose text is not known"))
            continue
        state.aliases[name] = body
        # what the alias will run, judged now (it runs on a later line)
        walker.line(
            body, state.copy(), via=(*via, f"alias {name}"), depth=depth + 1, feed=Feed("none")
        )
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_unalias(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    for word in words[1:]:
        text = text_of(word)
        if text == "-a":
            state.aliases.clear()
        state.aliases.pop(text, None)
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_source(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    from rules.effects import judge_script

    if len(words) < 2:
        reasons.append(Reason(text_of(words[0]), "source without a file"))
        return _plain(walker, words, redirect, state, feed, via, reasons)
    target = words[1]
    if not isinstance(target, str):
        reasons.append(Reason(text_of(target), "sources a file whose name is not known"))
        state.poisoned = True
        return _plain(walker, words, redirect, state, feed, via, reasons)
    spelled = P.resolve(target, state.cwd, state.home)
    path = spelled[0] if spelled else target
    caps = frozenset({"exec", "build"})
    if path in ("/proc/self/fd/0",) or path.startswith("/proc/self/fd/"):
        if feed.kind in ("text", "pipe") and feed.text is not None and path == "/proc/self/fd/0":
            walker.line(feed.text, state, via=(*via, "source"), depth=depth + 1, feed=Feed("none"))
        else:
            reasons.append(Reason(target, "sources code from its input or a pipe"))
            return _plain(
                walker,
                words,
                redirect,
                state,
                feed,
                via,
                reasons,
                caps=caps,
                runs_input=True,
                runs=(path,),
            )
    elif path in state.files:
        judge_script(
            walker, path, "source", words[2:], state, feed, via, depth, reasons, same_shell=True
        )
    else:
        judge_script(walker, path, "source", words[2:], state, feed, via, depth, reasons)
        state.poisoned = True  # what it set is not known
    return _plain(walker, words, redirect, state, feed, via, reasons, caps=caps, runs=(path,))


def b_eval(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    if all(isinstance(w, str) for w in words[1:]):
        text = " ".join(words[1:])
        _plain(walker, words, redirect, state, feed, via, reasons, caps=frozenset({"exec"}))
        return walker.line(text, state, via=(*via, "eval"), depth=depth + 1, feed=feed)
    reasons.append(
        Reason(" ".join(_words_text(words))[:60], "eval of text not known before it runs")
    )
    state.poisoned = True
    return _plain(walker, words, redirect, state, feed, via, reasons, caps=frozenset({"exec"}))


def b_exec(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    rest = list(words[1:])
    while rest and isinstance(rest[0], str) and rest[0] in ("-c", "-l"):
        rest = rest[1:]
    if rest and rest[0] == "-a" and len(rest) >= 2:
        rest = rest[2:]
    if not rest:
        return _plain(walker, words, redirect, state, feed, via, reasons)
    _plain(walker, words[:1], Redirects(), state, feed, via, [])
    return invoke(walker, rest, env, redirect, state, feed, via, depth, reasons, as_program=True)


def b_command(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    rest = list(words[1:])
    while rest and isinstance(rest[0], str) and rest[0] in ("-p", "--"):
        rest = rest[1:]
    if not rest or (isinstance(rest[0], str) and rest[0] in ("-v", "-V")):
        return _plain(walker, words, redirect, state, feed, via, reasons)
    name = rest[0]
    if isinstance(name, str) and name in BUILTINS and name not in ("command",):
        return BUILTINS[name](walker, rest, env, redirect, state, feed, via, depth, reasons)
    return invoke(walker, rest, env, redirect, state, feed, via, depth, reasons, as_program=True)


def b_builtin(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    rest = list(words[1:])
    if not rest:
        return _plain(walker, words, redirect, state, feed, via, reasons)
    name = rest[0]
    if isinstance(name, str) and name in BUILTINS:
        return BUILTINS[name](walker, rest, env, redirect, state, feed, via, depth, reasons)
    reasons.append(Reason(text_of(name), "not a builtin"))
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_trap(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    args = list(words[1:])
    if args and args[0] == "--":
        args = args[1:]
    if not args or (isinstance(args[0], str) and args[0] in ("-l", "-p", "-", "")):
        return _plain(walker, words, redirect, state, feed, via, reasons)
    if len(args) == 1:
        return _plain(walker, words, redirect, state, feed, via, reasons)  # `trap SIG`: reset
    handler = args[0]
    reasons.append(
        Reason(
            "trap " + text_of(handler)[:50], "trap runs its handler later, on a signal or at exit"
        )
    )
    if isinstance(handler, str):
        walker.line(handler, state.copy(), via=(*via, "trap"), depth=depth + 1, feed=Feed("none"))
    return _plain(walker, words, redirect, state, feed, via, reasons, caps=frozenset({"exec"}))


def b_let(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    from rules.words import Expander

    expand = Expander(
        state, lambda n, label: (None, ANY), lambda w, why: reasons.append(Reason(w, why))
    )
    for word in words[1:]:
        if not isinstance(word, str):
            reasons.append(Reason(text_of(word), "let with text not known can run code"))
            continue
        name, eq, value = word.partition("=")
        expand._arith(value if eq else word, f"let {word}")
        if eq and _NAME.match(name.rstrip("+-*/%")):
            result = expand._arith(value, word)
            state.set_var(name.rstrip("+-*/%"), result, SAFE) if result else state.set_var(
                name.rstrip("+-*/%"), None, SAFE
            )
        if "[" in word:
            reasons.append(Reason(word, "let with a subscript evaluates it as arithmetic"))
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_code(why: str) -> Builtin:
    def run(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
        texts = _words_text(words)
        flagged = _CODE_FLAGS.get(texts[0])
        if flagged is None or any(
            t in flagged or any(t.startswith(f) and len(t) > 2 and f[1] in t[1:] for f in flagged)
            for t in texts[1:]
        ):
            reasons.append(Reason(" ".join(texts)[:60], why))
        return _plain(walker, words, redirect, state, feed, via, reasons)

    return run


_CODE_FLAGS = {
    "enable": ("-f", "-n", "-d"),
    "bind": ("-x",),
    "complete": ("-C", "-F"),
    "compgen": ("-C", "-F"),
    "fc": None,
}


def b_history(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    texts = _words_text(words)
    caps = frozenset({"info"})
    if any(t.startswith("-") and set(t[1:]) & set("cdwrasn") for t in texts[1:]):
        caps = frozenset({"audit"})
    return _plain(
        walker, words, redirect, state, feed, via, reasons, caps=caps, targets=tuple(texts[1:])
    )


def b_info(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_shift(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    if state.positional:
        count = (
            int(words[1])
            if len(words) > 1 and isinstance(words[1], str) and words[1].isdigit()
            else 1
        )
        state.positional = state.positional[count:]
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_getopts(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    if len(words) >= 3:
        state.set_var(text_of(words[2]), None, SAFE)
    state.set_var("OPTARG", None, ANY)
    return _plain(walker, words, redirect, state, feed, via, reasons)


def b_coproc(walker, words, env, redirect, state, feed, via, depth, reasons):  # type: ignore[no-untyped-def]
    reasons.append(Reason("coproc", "a coprocess runs beside the shell, fed by later commands"))
    if len(words) > 1:
        invoke(
            walker,
            list(words[1:]),
            env,
            Redirects(),
            state.copy(),
            feed,
            via,
            depth,
            [],
            as_program=True,
        )
    return _plain(walker, words, redirect, state, feed, via, reasons)


BUILTINS: dict[str, Builtin] = {
    "cd": b_cd,
    "pushd": b_cd,
    "popd": b_cd,
    "export": b_declare,
    "declare": b_declare,
    "typeset": b_declare,
    "local": b_declare,
    "readonly": b_declare,
    "unset": b_unset,
    "read": b_read,
    "mapfile": b_mapfile,
    "readarray": b_mapfile,
    "printf": b_printf,
    "set": b_set,
    "shopt": b_shopt,
    "alias": b_alias,
    "unalias": b_unalias,
    "source": b_source,
    ".": b_source,
    "eval": b_eval,
    "exec": b_exec,
    "command": b_command,
    "builtin": b_builtin,
    "trap": b_trap,
    "let": b_let,
    "enable": b_code("enable -f/-n loads or swaps builtins"),
    "bind": b_code("bind -x runs a command on a key"),
    "complete": b_code("complete -C/-F runs code on completion"),
    "compgen": b_code("compgen -C/-F runs code"),
    "fc": b_code("fc runs commands from the history"),
    "coproc": b_coproc,
    "history": b_history,
    "shift": b_shift,
    "getopts": b_getopts,
    "type": b_info,
    "hash": b_hash,
    "help": b_info,
    "jobs": b_info,
    "dirs": b_info,
    "times": b_info,
    "caller": b_info,
    "wait": b_info,
    "fg": b_info,
    "bg": b_info,
    "disown": b_info,
    "umask": b_info,
    "ulimit": b_info,
    "return": b_info,
    "exit": b_info,
    "logout": b_info,
    "break": b_info,
    "continue": b_info,
    "suspend": b_info,
}
# Builtins that are also programs a wrapper can start (/usr/bin/printf...).
PROGRAM_BUILTINS = frozenset({"printf", "kill", "echo", "test", "[", "true", "false", "pwd"})
