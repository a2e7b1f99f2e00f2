"""Programs whose words hold a language of their own, read after the generic pass.

Each handler gets the command's `Facts` (rules/effects.py) and adds what the
catalog's kinds cannot say: the command string of `sh -c`, the script of
`sed` and `awk`, find's expression, ssh's `-o` options, git's configuration
keys, tar's modes, SQL given to database clients, what a shell or an
interpreter reads from its input. The catalog names a program's handler
(`handler = "find"`); the table at the end maps names to functions.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable

from rules import paths as P
from rules.effects import Facts, judge_script
from rules.model import Reason
from rules.shell import Feed
from rules.values import ANY, UNKNOWN, Word, text_of

MAX_STAND_INS = 64


def _texts(words: list[str | Word]) -> list[str]:
    return [text_of(w) for w in words]


def _option_value(facts: Facts, *names: str) -> list[str | Word]:
    return [
        g.value
        for g in facts.parsed.options
        if g.value is not None and (g.spelling in names or set(g.option.names) & set(names))
    ]


def _given(facts: Facts, *names: str) -> bool:
    wanted = {n.lstrip("-") for n in names}
    return bool(facts.parsed.flags & wanted)


def _positional(facts: Facts) -> list[str | Word]:
    return facts.positional_words()


# --- shells ---------------------------------------------------------------------------


def shell(facts: Facts) -> None:
    """sh/bash -c STRING [NAME ARGS], sh SCRIPT ARGS, or commands from the input."""
    facts.caps.add("exec")
    for given in facts.parsed.options:
        if given.option.names and given.option.names[0] in ("--rcfile", "--init-file"):
            facts.not_understood(given.spelling, "a start-up file runs code the bastion cannot see")
    words = _positional(facts)
    if _given(facts, "c"):
        if not words:
            facts.not_understood("-c", "-c without a command")
            return
        command = words[0]
        args = words[2:]
        if not isinstance(command, str):
            facts.not_understood(text_of(command), "a command line whose text is not known")
            return
        inner = facts.state.copy()
        inner.positional = list(args)
        inner.arg0 = words[1] if len(words) > 1 else None
        facts.walker.line(
            command,
            inner,
            via=(*facts.via, f"{facts.program} -c"),
            depth=facts.depth + 1,
            feed=facts.feed,
        )
        return
    if words and not _given(facts, "s"):
        script = words[0]
        if text_of(script) in ("-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"):
            input_code(facts, "shell")
            return
        found = facts.path(script, "x")
        if found:
            judge_script(
                facts.walker,
                found[0],
                facts.program,
                words[1:],
                facts.state,
                facts.feed,
                facts.via,
                facts.depth,
                facts.reasons,
            )
        return
    input_code(facts, "shell")


def input_code(facts: Facts, language: str) -> None:
    """The program runs what it reads from its input: known text is judged; else held."""
    facts.handled_stdin = True
    feed = facts.feed
    if feed.kind in ("text", "pipe", "file") and feed.text is not None:
        if feed.kind == "pipe":
            facts.runs_input = True  # judged below, and flagged: code built in a pipe
        if language == "shell":
            facts.walker.line(
                feed.text,
                facts.state.copy(),
                via=(*facts.via, f"{facts.program} <input"),
                depth=facts.depth + 1,
                feed=Feed("none"),
            )
            return
        if language == "sql":
            facts.sql_text(feed.text)
            return
        facts.not_understood(facts.program, f"runs {language} code read from its input")
        facts.runs_input = True
        return
    if feed.kind == "file" and feed.path is not None and language == "sql":
        facts.runs.append(feed.path)
        return  # SQL from a file already on the host, like a script
    if feed.kind == "none":
        return
    facts.runs_input = True
    where = {
        "agent": "the session's input",
        "pipe": "a pipe",
        "file": "a file",
        "text": "a here-document",
    }.get(feed.kind, "its input")
    facts.not_understood(facts.program, f"runs {language} code read from {where}")


# --- interpreters -------------------------------------------------------------------------


def interpreter(facts: Facts) -> None:
    """python3 SCRIPT, -c CODE, -m MODULE; code on the line is not understood (the option's
    kind is `e`); a module is read as the catalog program it stands for."""
    facts.caps.add("exec")
    module = _option_value(facts, "-m")
    words = _positional(facts)
    if module:
        from rules.catalog import CATALOG
        from rules.invoke import Redirects, invoke

        name = text_of(module[0])
        program = CATALOG.canonical(f"{facts.program}-m-{name}") or CATALOG.canonical(
            f"pymod-{name}"
        )
        if program is None:
            facts.not_understood(
                f"-m {name}", f"a {facts.program} module the bastion does not know"
            )
            return
        invoke(
            facts.walker,
            [program, *words],
            [],
            Redirects(),
            facts.state.copy(),
            facts.feed,
            (*facts.via, f"{facts.program} -m"),
            facts.depth + 1,
            [],
            as_program=True,
        )
        return
    if any(g.option.value == "e" for g in facts.parsed.options):
        return  # the code option already made it not understood
    if words:
        script = words[0]
        if text_of(script) in ("-", "/dev/stdin"):
            input_code(facts, facts.program)
            return
        found = facts.path(script, "x")
        if found:
            judge_script(
                facts.walker,
                found[0],
                facts.program,
                words[1:],
                facts.state,
                facts.feed,
                facts.via,
                facts.depth,
                facts.reasons,
            )
        return
    if any(
        g.option.names[0] in ("--version", "-V", "--help", "-h", "-v") for g in facts.parsed.options
    ):
        return
    input_code(facts, facts.program)


# --- database clients -------------------------------------------------------------------


def sql_client(facts: Facts) -> None:
    """SQL from -c/-e (the option's kind is `s`), a file (-f), positionals (sqlite3), or the
    input; a client given none of these reads from the terminal."""
    facts.caps.add("database")
    given_sql = any(g.option.value == "s" for g in facts.parsed.options)
    files = [g for g in facts.parsed.options if g.option.value == "x"]
    if facts.program == "sqlite3":
        words = _positional(facts)
        if len(words) >= 2:
            for word in words[1:]:
                facts.sql_text(word)
            return
    stdin = ("-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0")
    if any(given.value is not None and text_of(given.value) in stdin for given in files):
        input_code(facts, "sql")  # `psql -f - <<< 'DROP ...'`: the SQL is the input
        files = [g for g in files if g.value is None or text_of(g.value) not in stdin]
        if not files and not given_sql:
            return
    if given_sql or files:
        for given in files:
            path = facts.path(given.value, "r") if given.value is not None else []
            carried = facts.state.files.get(path[0]) if path else None
            if carried is not None and carried.content is not None:
                facts.sql_text(carried.content)
        if files or facts.program != "sqlite3":
            return  # sqlite3 runs its -cmd commands, then reads its input all the same
    if any(
        g.option.names[0] in ("--version", "-V", "--help", "-l", "--list")
        for g in facts.parsed.options
    ):
        return
    input_code(facts, "sql")


def redis(facts: Facts) -> None:
    facts.caps.add("database")
    words = [w.lower() for w in _texts(_positional(facts))]
    modes = {
        "scan",
        "stat",
        "latency",
        "latency-history",
        "latency-dist",
        "bigkeys",
        "memkeys",
        "hotkeys",
        "rdb",
        "functions-rdb",
        "intrinsic-latency",
        "cluster",
        "version",
        "help",
    }
    if "rdb" in facts.parsed.flags or "functions-rdb" in facts.parsed.flags:
        facts.sql.append("copy_to_file")  # the whole dataset, from the server to a file here
    if not words and modes & facts.parsed.flags:
        return  # a mode of its own: it reads no commands
    if not words:
        feed = facts.feed
        if feed.kind in ("text", "pipe", "file") and feed.text is not None:
            for line in feed.text.splitlines():
                _redis_words(facts, line.lower().split())
            return
        input_code(facts, "redis")
        return
    _redis_words(facts, words)


def _redis_words(facts: Facts, words: list[str]) -> None:
    if not words:
        return
    head = words[0]
    if head in ("flushall", "flushdb"):
        facts.sql.append("drop_database")
    elif head in ("config",) and len(words) > 1 and words[1] == "set":
        facts.sql.append("server_file")
    elif head in ("eval", "evalsha", "eval_ro", "function", "fcall", "script"):
        facts.sql.append("create_code")
    elif head == "module":
        facts.sql.append("server_file")
    elif head in ("replicaof", "slaveof") and words[1:3] != ["no", "one"]:
        facts.sql.append("remote_sql")  # copies every key to, then from, the named host
    elif head in ("keys", "scan", "dump", "save", "bgsave", "migrate"):
        facts.sql.append("copy_to_stdout" if head in ("dump", "migrate") else "other")
    elif head in ("del", "unlink"):
        facts.sql.append("delete")
    elif head == "shutdown" or (head == "debug" and words[1:2] in (["segfault"], ["sleep"])):
        facts.sql.append("server_control")
    elif head in ("slowlog", "acl") and "reset" in words[1:3]:
        facts.sql.append("audit_off")  # the server's own record of what was run, erased
    elif head == "config" and words[1:2] == ["get"] and any(
        "pass" in w or w == "*" for w in words[2:]
    ):
        facts.caps.add("secret")  # requirepass, masterauth: the server's passwords


def mongo(facts: Facts) -> None:
    facts.caps.add("database")
    code = " ".join(text_of(v) for v in _option_value(facts, "--eval"))
    if not code:
        if facts.feed.kind in ("text", "pipe") and facts.feed.text is not None:
            code = facts.feed.text
        elif not _positional(facts) or True:
            if not _option_value(facts, "--file", "-f"):
                input_code(facts, "mongo")
                return
    compact = re.sub(r"\s+", "", code)
    for token, kind in (
        (".dropDatabase(", "drop_database"),
        (".drop(", "drop_table"),
        (".deleteMany({})", "delete_without_where"),
        (".remove({})", "delete_without_where"),
    ):
        if token in compact:
            facts.sql.append(kind)


# --- wrappers ---------------------------------------------------------------------------------


def env(facts: Facts) -> None:
    """env [-i] [-u NAME] [-C DIR] [-S STRING] [NAME=VALUE]... [CMD ARGS]."""
    from rules.builtins import env_effects

    split = _option_value(facts, "-S", "--split-string")
    directory = _option_value(facts, "-C", "--chdir")
    state = facts.state.copy()
    if directory:
        found = facts.path(directory[0], "d")
        state.cwd = found[0] if found else None
    words = list(facts.parsed.rest or _positional(facts))
    facts.parsed.rest = None
    while words and isinstance(words[0], str) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        name, _, value = words.pop(0).partition("=")
        env_effects(facts.walker, state, name, value, facts.via, facts.depth, facts.reasons)
    if words and isinstance(words[0], Word) and "=" in words[0].text.split(UNKNOWN)[0]:
        name, _, rest = words.pop(0).text.partition("=")
        env_effects(
            facts.walker,
            state,
            name,
            Word(rest, None, ANY),  # what is known of it counts (PATH=/tmp:$PATH)
            facts.via,
            facts.depth,
            facts.reasons,
        )
    if split:
        text = split[0]
        if not isinstance(text, str):
            facts.not_understood(text_of(text), "env -S with text not known")
            return
        words = [*shlex.split(text), *words] if _shlex_ok(text) else words
    if words:
        saved = facts.state
        facts.state = state
        try:
            facts.argv(words, "env")
        finally:
            facts.state = saved


def _shlex_ok(text: str) -> bool:
    try:
        shlex.split(text)
    except ValueError:
        return False
    return True


def wrapper_env(facts: Facts) -> None:
    """sudo/doas: leading NAME=VALUE words set the environment of the command they run;
    -i/-s (or su without -c) start a shell that reads the session's input."""
    facts.caps.add("privilege")
    rest = facts.parsed.rest
    directory = _option_value(facts, "-D", "--chdir")
    if directory:
        found = facts.path(directory[0], "d")
        facts.state = facts.state.copy()
        facts.state.cwd = found[0] if found else None
    if rest:
        env_words = []
        while rest and isinstance(rest[0], str) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", rest[0]):
            env_words.append(rest.pop(0))
        if env_words:
            from rules.builtins import env_effects

            for word in env_words:
                name, _, value = word.partition("=")
                env_effects(
                    facts.walker,
                    facts.state.copy(),
                    name,
                    value,
                    facts.via,
                    facts.depth,
                    facts.reasons,
                )
    if facts.program in ("sudo", "doas") and _given(facts, "i", "s", "login", "shell"):
        if rest:
            facts.parsed.rest = None
            facts.line(" ".join(_quote_all(rest)), f"{facts.program} -s")
            return
        input_code(facts, "shell")
        return
    if facts.program == "sudo" and _given(facts, "e", "edit"):
        for word in _positional(facts) + (rest or []):
            facts.path(word, "a")
        facts.parsed.rest = None
        return
    if not rest and facts.program in ("sudo", "doas") and not facts.parsed.options:
        facts.not_understood(facts.program, "nothing to run")


def _quote_all(words: list[str | Word]) -> list[str]:
    return [shlex.quote(w) if isinstance(w, str) else '"$__unknown__"' for w in words]


def su(facts: Facts) -> None:
    facts.caps.add("privilege")
    if not _option_value(facts, "-c", "--command", "--session-command"):
        input_code(facts, "shell")


def watch(facts: Facts) -> None:
    """watch runs its words through `sh -c` (or as argv with -x)."""
    rest = facts.parsed.rest or []
    facts.parsed.rest = None
    if not rest:
        return
    if _given(facts, "x", "exec"):
        facts.argv(rest, "watch")
        return
    if all(isinstance(w, str) for w in rest):
        facts.line(" ".join(rest), "watch")  # type: ignore[arg-type]
    else:
        facts.not_understood(" ".join(_texts(rest))[:60], "watch runs text not known")


def busybox(facts: Facts) -> None:
    rest = facts.parsed.rest or []
    facts.parsed.rest = None
    if rest:
        facts.argv(rest, "busybox")


def flock(facts: Facts) -> None:
    """flock [opts] FILE CMD... | flock [opts] FILE -c STRING | flock FD."""
    command = _option_value(facts, "-c", "--command")
    if command:
        facts.line(command[0], "flock -c")


def script_cmd(facts: Facts) -> None:
    command = _option_value(facts, "-c", "--command")
    if command:
        facts.line(command[0], "script -c")
    else:
        input_code(facts, "shell")


def xargs(facts: Facts) -> None:
    """xargs CMD: CMD gets more arguments from its input at run time."""
    rest = list(facts.parsed.rest or [])
    facts.parsed.rest = None
    replace = _option_value(facts, "-I", "--replace", "-i")
    marker = text_of(replace[0]) if replace else ("{}" if _given(facts, "i") else None)
    if not rest:
        rest = ["echo"]
    feed = facts.feed
    items = _input_items(facts)
    program = text_of(rest[0])
    if marker is not None and marker in program:
        facts.not_understood(program, "xargs runs a command named by its input")
        return
    if program in ("sh", "bash", "dash", "zsh", "ksh", "eval") and (
        marker is not None
        and any(marker in text_of(w) for w in rest[1:])
        or (marker is None and text_of(rest[-1]) in ("-c",))
    ):
        facts.not_understood(program, "xargs hands its input to a shell as code")
        return
    if items is not None:
        if len(items) > MAX_STAND_INS:
            facts.not_understood("xargs", f"more than {MAX_STAND_INS} items to judge")
            return
        if marker is not None:
            for item in items:
                facts.argv(
                    [w.replace(marker, item) if isinstance(w, str) else w for w in rest], "xargs"
                )
        else:
            facts.argv([*rest, *items], "xargs")
        return
    stand_in = _unknown_items(facts)
    unknown = Word(UNKNOWN, None, ANY, True)
    if marker is not None:
        replaced: list[str | Word] = []
        for word in rest:
            if isinstance(word, str) and marker in word:
                if stand_in is not None and word == marker:
                    replaced.append(stand_in)
                else:
                    replaced.append(Word(word.replace(marker, UNKNOWN), None, ANY))
            else:
                replaced.append(word)
        facts.argv(replaced, "xargs", open_args=True)
    else:
        facts.argv([*rest, stand_in if stand_in is not None else unknown], "xargs", open_args=True)
    del feed


def _input_items(facts: Facts) -> list[str] | None:
    feed = facts.feed
    if feed.kind in ("text", "pipe") and feed.text is not None:
        if _given(facts, "0", "null"):
            return [i for i in feed.text.split("\x00") if i]
        if _option_value(facts, "-d", "--delimiter") or _option_value(facts, "-I"):
            return [i for i in feed.text.splitlines() if i]
        try:
            return shlex.split(feed.text)
        except ValueError:
            return None
    return None


def _unknown_items(facts: Facts) -> str | Word | None:
    """What an unknown input item can be: a path under find's starting points when find
    feeds the pipe (recorded by the find handler), else anything."""
    if facts.feed.kind == "pipe" and facts.feed.path is not None:
        path = facts.feed.path  # canonical: `~` there is the home
        if path.startswith("~"):
            path = P.HOME + path[1:]
        return Word(path, path, 0)
    return None


def parallel(facts: Facts) -> None:
    """GNU parallel: `CMD ::: A B` runs CMD A and CMD B (a single word CMD is a shell line);
    without `:::` (or with `::::` files) the arguments come from the input."""
    words = list(facts.words[1:])
    i = 0
    while (
        i < len(words)
        and text_of(words[i]).startswith("-")
        and text_of(words[i]) not in (":::", "::::")
    ):
        option = text_of(words[i])
        i += 2 if option in _PARALLEL_VALUE and "=" not in option else 1
    rest = words[i:]
    separator = next(
        (j for j, w in enumerate(rest) if text_of(w) in (":::", "::::", ":::+", "::::+")), None
    )
    command = rest if separator is None else rest[:separator]
    items = (
        []
        if separator is None
        else [w for w in rest[separator + 1 :] if not text_of(w).startswith(":::")]
    )
    from_input = separator is None or text_of(rest[separator]).startswith("::::")
    if len(items) > MAX_STAND_INS:
        facts.not_understood("parallel", f"more than {MAX_STAND_INS} items to judge")
        return
    if not command:
        if from_input:
            facts.not_understood("parallel", "parallel runs command lines read from its input")
            facts.runs_input = True
            return
        for item in items:
            facts.line(item, "parallel")
        return
    shell_line = len(command) == 1 and isinstance(command[0], str) and " " in command[0]
    stand_in = _unknown_items(facts) if from_input else None
    for item in items if not from_input else [stand_in or Word(UNKNOWN, None, ANY)]:
        placed = False
        built: list[str | Word] = []
        for word in command:
            if isinstance(word, str) and "{}" in word and isinstance(item, str):
                built.append(word.replace("{}", item))
                placed = True
            elif isinstance(word, str) and word == "{}":
                built.append(item)
                placed = True
            elif isinstance(word, str) and "{}" in word:
                built.append(Word(word.replace("{}", UNKNOWN), None, ANY))
                placed = True
            else:
                built.append(word)
        if not placed:
            built.append(item)
        if shell_line and all(isinstance(w, str) for w in built):
            facts.line(" ".join(built), "parallel")  # type: ignore[arg-type]
        else:
            facts.argv(built, "parallel", open_args=from_input)


_PARALLEL_VALUE = frozenset(
    "-j -J -S -a -d -I -C -n -N -L -E --jobs --sshlogin --arg-file --delimiter --colsep "
    "--tmpdir --results --joblog --timeout --delay --max-args --max-replace-args".split()
)


# --- find ---------------------------------------------------------------------------------

_FIND_VALUE = frozenset(
    "-name -iname -path -ipath -wholename -iwholename -regex -iregex -lname -ilname -type "
    "-xtype -user -group -uid -gid -perm -size -mtime -mmin -atime -amin -ctime -cmin -newer "
    "-anewer -cnewer -used -links -inum -samefile -maxdepth -mindepth -fstype -context "
    "-printf -regextype -newermt -newerat -newerct -newermm -files0-from -D -O".split()
)
_FIND_FLAG = frozenset(
    "-print -print0 -ls -delete -prune -quit -true -false -empty -readable -writable "
    "-executable -nouser -nogroup -depth -mount -xdev -noleaf -follow -daystart -ignore_readdir_race "
    "-noignore_readdir_race -warn -nowarn -not -a -o -and -or ! ( ) , -H -L -P -help --help "
    "-version --version".split()
)
_FIND_EXEC = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_FIND_WRITE = {"-fprint": 1, "-fprint0": 1, "-fls": 1, "-fprintf": 2}


def find(facts: Facts) -> None:
    words = facts.words[1:]
    roots: list[str | Word] = []
    i = 0
    while (
        i < len(words)
        and not text_of(words[i]).startswith(("-", "(", "!"))
        or (i < len(words) and text_of(words[i]) in ("-H", "-L", "-P"))
    ):
        if text_of(words[i]) not in ("-H", "-L", "-P"):
            roots.append(words[i])
        i += 1
    roots = roots or ["."]
    names: list[str] = []
    actions: list[tuple[str, list[str | Word]]] = []
    deletes = False
    while i < len(words):
        word = words[i]
        text = text_of(word)
        if not isinstance(word, str):
            facts.not_understood(text, "a find expression word that is not known")
            i += 1
            continue
        if text in _FIND_EXEC:
            end = i + 1
            while end < len(words) and text_of(words[end]) not in (";", "+"):
                end += 1
            actions.append((text, list(words[i + 1 : end])))
            i = end + 1
            continue
        if text in _FIND_WRITE:
            for value in words[i + 1 : i + 1 + _FIND_WRITE[text]][:1]:
                facts.path(value, "w")
            i += 1 + _FIND_WRITE[text]
            continue
        if text in _FIND_VALUE:
            if i + 1 < len(words):
                value = text_of(words[i + 1])
                if text in ("-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename"):
                    names.append(value)
                elif text in ("-regex", "-iregex"):
                    names.append("*")
                elif text in ("-newer", "-anewer", "-cnewer", "-samefile", "-files0-from"):
                    pass
            i += 2
            continue
        if text == "-delete":
            deletes = True
        elif text not in _FIND_FLAG:
            facts.not_understood(text, "not a find test or action the bastion knows")
        i += 1
    stand_ins = _find_stand_ins(facts, roots, names)
    if len(stand_ins) > MAX_STAND_INS:
        facts.not_understood(
            "find", f"more than {MAX_STAND_INS} starting points and names to judge"
        )
        return
    if len(roots) == 1 and isinstance(roots[0], str) and len(names) <= 1:
        base = P.resolve(roots[0], facts.state.cwd, facts.state.home)
        if base:  # what find prints, for a pipe into xargs
            facts.prints_paths = f"{base[0].rstrip('/')}/**/{names[0] if names else '*'}"
    if deletes:
        # with a name test, the starting point itself is not deleted (it does not match)
        doomed = [s for s in stand_ins if not (names and s in roots)]
        for stand_in in doomed:
            facts.path(stand_in, "D")
        facts.caps.add("delete")
    for root in roots:
        facts.path(root, "d")
    for action, command in actions:
        if not command:
            facts.not_understood(action, "an action without a command")
            continue
        if len(stand_ins) * len(actions) > MAX_STAND_INS:
            facts.not_understood(action, "find runs too many commands to judge")
            return
        handed = [s for s in stand_ins if not (names and s in roots)]
        for stand_in in handed:
            replaced = [
                stand_in
                if (isinstance(w, str) and w == "{}")
                else (w.replace("{}", text_of(stand_in)) if isinstance(w, str) else w)
                for w in command
            ]
            facts.argv(replaced, f"find {action}")


def _find_stand_ins(facts: Facts, roots: list[str | Word], names: list[str]) -> list[str | Word]:
    """What find hands on for {}: a path under each starting point, named as the tests say
    (`find / -name id_rsa` hands on `/**/id_rsa`); a glob, so rules see every match."""
    found: list[str | Word] = []
    for root in roots:
        base = (root if isinstance(root, str) else root.text).rstrip("/") or "/"
        if not isinstance(root, str):
            found.append(Word(UNKNOWN, None, ANY))
            continue
        patterns = names or ["*"]
        for name in patterns:
            leaf = name.lstrip("/") if "/" not in name.strip("*/") else name.rsplit("/", 1)[-1]
            found.append(Word(f"{base}/**/{leaf}", f"{_escape(base)}/**/{leaf}", 0))
            found.append(root)
    return found


def _escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]" else c for c in text)


# --- text tools with scripts ----------------------------------------------------------------


def sed(facts: Facts) -> None:
    """sed's script: `w FILE` writes, `r FILE` reads, `e` runs commands."""
    scripts = [text_of(v) for v in _option_value(facts, "-e", "--expression")]
    files = list(_positional(facts))
    if not scripts and not _option_value(facts, "-f", "--file") and files:
        scripts = [text_of(files.pop(0))]
    in_place = _given(facts, "i", "in-place")
    silent = in_place and bool(scripts) and not _given(facts, "debug")
    silent = silent and not any(_sed_prints(script) for script in scripts)
    for word in files:
        if silent:
            # `sed -i s/a/b/ .env` writes its output back into the file and prints nothing:
            # the file's content never reaches the session, so it is not a read of it
            for path in facts.path(word, "w"):
                while path in facts.reads:
                    facts.reads.remove(path)
        else:
            facts.path(word, "a" if in_place else "r")
    for script in scripts:
        _sed_script(facts, script)


_SED_FILE = re.compile(
    r"(?:^|[;\n{}])\s*(?:\d+|\$|/[^/]*/)?,?(?:\d+|\$|/[^/]*/)?!?\s*([wWrR])\s+(\S.*?)\s*(?:$|\n)"
)
_SED_EXEC = re.compile(r"(?:^|[;\n{}])\s*(?:\d+|\$|/[^/]*/)?,?(?:\d+|\$|/[^/]*/)?!?\s*e\b")
_SED_S_FLAGS = re.compile(
    r"s(.)(?:(?!\1)[^\\]|\\.)*\1(?:(?!\1)[^\\]|\\.)*\1([gpiImMe0-9]*)(w\s+\S+)?"
)


def _sed_prints(script: str) -> bool:
    """Whether a script can put text anywhere but the in-place output: `w /dev/stdout`,
    `s///w FILE`, `e` (a command's output), or a script not known."""
    if UNKNOWN in script or _SED_EXEC.search(script):
        return True
    if any(m.group(1) in "wW" for m in _SED_FILE.finditer(script)):
        return True
    return any("e" in m.group(2) or m.group(3) for m in _SED_S_FLAGS.finditer(script))


def _sed_script(facts: Facts, script: str) -> None:
    if UNKNOWN in script:
        facts.not_understood(script[:40], "a sed script whose text is not known")
        return
    for match in _SED_FILE.finditer(script):
        letter, path = match.group(1), match.group(2)
        facts.path(path, "r" if letter in "rR" else "w")
    if _SED_EXEC.search(script):
        facts.not_understood(script[:40], "sed's e command runs shell commands")
    for match in _SED_S_FLAGS.finditer(script):
        if "e" in match.group(2):
            facts.not_understood(script[:40], "sed's s///e runs the result as a command")
        if match.group(3):
            facts.path(match.group(3)[1:].strip(), "w")


_AWK_SYSTEM = re.compile(r"\bsystem\s*\(\s*(\"(?:[^\"\\]|\\.)*\")?")
_AWK_PIPE = re.compile(
    r"(\"(?:[^\"\\]|\\.)*\"|[A-Za-z_][A-Za-z0-9_]*)\s*\|\s*getline|\|&|\bprintf?\b[^;{}]*\|\s*(\"(?:[^\"\\]|\\.)*\"|\S)"
)
# `print > "f"`, `getline < "f"`, `getline var < "f"`: the file written or read
_AWK_FILE = re.compile(r"(?:>>?|getline(?:\s+[A-Za-z_][A-Za-z0-9_]*)?\s*<)\s*(\"(?:[^\"\\]|\\.)*\"|[A-Za-z_$(][^;}]*)")


def awk(facts: Facts) -> None:
    programs = [text_of(v) for v in _option_value(facts, "-e", "--source")]
    files = list(_positional(facts))
    program_files = _option_value(facts, "-f", "--file")
    for word in program_files:
        if text_of(word) in ("-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"):
            input_code(facts, "awk")
            continue
        found = facts.path(word, "x")
        if found and found[0].startswith("/proc/self/fd/"):
            input_code(facts, "awk")
    if not programs and not program_files and files:
        programs = [text_of(files.pop(0))]
    for word in files:
        text = text_of(word)
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", text):
            continue  # var=value between files
        facts.path(word, "r")
    for program in programs:
        _awk_program(facts, program)


def _awk_program(facts: Facts, program: str) -> None:
    if UNKNOWN in program:
        facts.not_understood(program[:40], "an awk program whose text is not known")
        return
    if re.search(r"@(load|include)\b", program):
        facts.not_understood(program[:40], "gawk loads an extension or a source file")
    for match in _AWK_SYSTEM.finditer(program):
        literal = match.group(1)
        if literal is not None and not _awk_concat_after(program, match.end()):
            facts.line(_awk_string(literal), "awk system()")
        facts.not_understood(program[:40], "awk's system() runs shell commands")
    for match in _AWK_PIPE.finditer(program):
        literal = match.group(1) or match.group(2)
        if literal and literal.startswith('"'):
            facts.line(_awk_string(literal), "awk pipe")
        facts.not_understood(program[:40], "awk pipes to or from a shell command")
    for match in _AWK_FILE.finditer(program):
        target = match.group(1).strip()
        if target.startswith('"'):
            facts.path(
                _awk_string(target), "w" if not match.group(0).startswith("getline") else "r"
            )
        elif not re.fullmatch(r"[0-9]+", target) and not target.startswith(("=", " ")):
            if re.match(r"^[A-Za-z_]", target) and not re.search(r"[<>=]", target[:2]):
                facts.not_understood(program[:40], "awk reads or writes a file named at run time")


def _awk_concat_after(program: str, end: int) -> bool:
    rest = program[end:].lstrip()
    return not rest.startswith(")")


def _awk_string(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), body)


def dd(facts: Facts) -> None:
    for word in _positional(facts):
        text = text_of(word)
        key, eq, value = text.partition("=")
        if not eq:
            facts.not_understood(text, "not a dd operand")
            continue
        item: str | Word = (
            value if isinstance(word, str) else Word(word.text.split("=", 1)[1], None, word.unknown)
        )
        if key == "if":
            facts.path(item, "r")
        elif key == "of":
            facts.path(item, "w")
        elif key not in (
            "bs",
            "ibs",
            "obs",
            "cbs",
            "count",
            "skip",
            "seek",
            "iseek",
            "oseek",
            "conv",
            "iflag",
            "oflag",
            "status",
        ):
            facts.not_understood(text, "not a dd operand")


def test(facts: Facts) -> None:
    words = _texts(facts.words[1:])
    for position, text in enumerate(words):
        if text == "-v" and position + 1 < len(words) and "[" in words[position + 1]:
            facts.not_understood(words[position + 1], "-v with a subscript evaluates arithmetic")


def kill(facts: Facts) -> None:
    """kill [-s SIG | -SIG] PID...: after the signal, `-N` words are process groups
    (`kill -9 -1` signals every process)."""
    signal_seen = False
    for word in facts.words[1:]:
        text = text_of(word)
        if not isinstance(word, str):
            if word.unknown == ANY:
                facts.not_understood(text, "a process whose id is not known")
            continue
        if text in ("-s", "-n", "--signal"):
            signal_seen = True
            continue
        if text.startswith("-") and not signal_seen and text not in ("-l", "-L", "--list"):
            signal_seen = True
            continue
        facts.targets.append(text)
        facts.caps.add("process")


def chmod(facts: Facts) -> None:
    words = _positional(facts)
    if not words:
        return
    mode = text_of(words[0])
    facts.targets.append(mode)
    if re.search(r"[+=][rwxXt]*s|^[0-7]?[2467][0-7]{3}$", mode):
        facts.targets.append("setuid")
        facts.caps.add("privilege")
    if _world_writable(mode):
        facts.targets.append("world-writable")


def _world_writable(mode: str) -> bool:
    if re.fullmatch(r"[0-7]{3,4}", mode):
        return bool(int(mode, 8) & 0o002)
    for clause in mode.split(","):
        match = re.fullmatch(r"([ugoa]*)([-+=])([rwxXst]*)", clause)
        if match and match.group(2) in "+=" and "w" in match.group(3):
            if match.group(1) == "" or set(match.group(1)) & set("oa"):
                return True
    return False


def copy(facts: Facts) -> None:
    """cp/mv/install/ln SRC... DEST: a destination directory receives DEST/NAME."""
    words = _positional(facts)
    target = _option_value(facts, "-t", "--target-directory")
    sources = words if target else words[:-1]
    destination = target[0] if target else (words[-1] if len(words) > 1 else None)
    if destination is None:
        return
    dest_text = text_of(destination)
    if not (target or len(sources) > 1 or dest_text.endswith("/") or dest_text in (".", "..", "~")):
        base = dest_text.rstrip("/").rsplit("/", 1)[-1]
        if "." in base or not sources:
            return
    for source in sources[:MAX_STAND_INS]:
        name = text_of(source).rstrip("/").rsplit("/", 1)[-1]
        if isinstance(destination, str) and name and UNKNOWN not in name and "‹?›" not in name:
            facts.path(destination.rstrip("/") + "/" + name, "w")


def install(facts: Facts) -> None:
    for value in _option_value(facts, "-m", "--mode"):
        mode = text_of(value)
        if re.search(r"[+=][rwxXt]*s|^[0-7]?[2467][0-7]{3}$", mode):
            facts.targets.append("setuid")
            facts.caps.add("privilege")
    copy(facts)


def ln(facts: Facts) -> None:
    copy(facts)
    words = _positional(facts)
    if (
        _given(facts, "s", "symbolic")
        and len(words) == 2
        and all(isinstance(w, str) for w in words)
    ):
        target = P.resolve(str(words[0]), facts.state.cwd, facts.state.home)
        link = P.resolve(str(words[1]), facts.state.cwd, facts.state.home)
        if target and link:
            facts.state.links[link[0]] = target[0]


def ps(facts: Facts) -> None:
    """BSD-style `ps e` (or `auxe`, `eww`) prints every process's environment."""
    if len(facts.words) < 2:
        return
    first = text_of(facts.words[1])
    if re.fullmatch(r"[aAcefhjlLmrsStTuvwxXOgn]+", first) and "e" in first:
        facts.targets.append("environment")


def ls(facts: Facts) -> None:
    """Plain `ls` (one name a line into a pipe) prints names a later `xargs` gets."""
    formats = [
        g
        for g in facts.parsed.options
        if g.option.bare
        and not set(g.option.bare)
        & {
            "1",
            "a",
            "A",
            "all",
            "almost-all",
            "d",
            "directory",
            "r",
            "reverse",
            "t",
            "S",
            "U",
            "v",
            "X",
            "color",
            "c",
            "u",
        }
    ]
    words = _positional(facts)
    if formats or len(words) > 1 or facts.state.cwd is None:
        return
    here = facts.state.cwd.rstrip("/")
    if not words:
        facts.prints_paths = here + "/*"
        return
    word = words[0]
    text = (
        word.pattern
        if isinstance(word, Word) and word.pattern and not word.unknown
        else (word if isinstance(word, str) else None)
    )
    if text is None:
        return
    if not any(ch in text for ch in "*?["):
        # `ls DIR` prints DIR's entries' names, `ls FILE` and `ls -d DIR` the word itself
        # (`cat $(ls /etc/shadow)`): only -d says which, else what it prints is not known.
        if any(set(g.option.bare or ()) & {"d", "directory"} for g in facts.parsed.options):
            resolved = P.resolve(text, facts.state.cwd, facts.state.home)
            if resolved:
                facts.prints_paths = resolved[0]
        return
    # `ls *.log`: the names that match; `ls /var/log/*.log` prints them as written
    facts.prints_paths = text if text.startswith("/") else here + "/" + text


def start_stop_daemon(facts: Facts) -> None:
    """`start-stop-daemon --start --exec PROGRAM -- ARGS`: PROGRAM runs with ARGS."""
    words = [text_of(w) for w in facts.words[1:]]
    program = None
    for i, arg in enumerate(words):
        if arg in ("--exec", "-x", "--startas", "-a") and i + 1 < len(words):
            program = facts.words[1:][i + 1]
        elif arg.startswith(("--exec=", "--startas=")):
            program = arg.split("=", 1)[1]
    if program is None:
        return
    rest = list(facts.words[1:][words.index("--") + 1 :]) if "--" in words else []
    facts.argv([program, *rest], "start-stop-daemon")


def pager(facts: Facts) -> None:
    """less/more `+CMD` runs CMD at start: `+G`, `+F`, `+/error` are moves and searches;
    `+!cmd` and `+|cmd` run shell commands, `+s`/`+o` save to a file."""
    for word in facts.words[1:]:
        text = text_of(word)
        if not text.startswith("+"):
            continue
        if not isinstance(word, str) or re.search(r"[!|]", text) or text[1:2] in ("s", "o"):
            facts.not_understood(text[:40], "a pager command that may run a shell or write")


HANDLERS: dict[str, Callable[[Facts], None]] = {
    "pager": pager,
    "shell": shell,
    "interpreter": interpreter,
    "sql": sql_client,
    "redis": redis,
    "mongo": mongo,
    "env": env,
    "sudo": wrapper_env,
    "su": su,
    "watch": watch,
    "busybox": busybox,
    "flock": flock,
    "script": script_cmd,
    "xargs": xargs,
    "parallel": parallel,
    "find": find,
    "sed": sed,
    "awk": awk,
    "dd": dd,
    "test": test,
    "kill": kill,
    "chmod": chmod,
    "copy": copy,
    "ps": ps,
    "ls": ls,
    "start-stop-daemon": start_stop_daemon,
    "install": install,
    "ln": ln,
}

# Handlers for network tools, version control, archives and containers.
from rules import handlers_api, handlers_system, handlers_tools  # noqa: E402

HANDLERS.update(handlers_tools.HANDLERS)
HANDLERS.update(handlers_api.HANDLERS)
HANDLERS.update(handlers_system.HANDLERS)
__all__ = ["HANDLERS", "input_code", "Reason"]
