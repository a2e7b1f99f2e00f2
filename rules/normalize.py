"""Quoting, escapes, brace expansion and wrapper programs, undone before matching.

`strip_wrapper` knows how each wrapper takes its options, so
`sudo -u root nice -n 5 rm -rf /` is seen as sudo, nice and rm, and
`bash -c 'rm -rf /'` hands its string back to be parsed as a line.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

SHELLS = frozenset(
    {"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "fish", "busybox-sh", "rbash"}
)
# Interpreters and the flags that hand them code on the command line.
INTERPRETER_CODE_FLAGS: dict[str, frozenset[str]] = {
    name: frozenset(flags)
    for names, flags in (
        (("python", "python2", "python3", "pypy", "pypy3"), ("-c",)),
        (("perl", "perl5"), ("-e", "-E")),
        (("ruby", "irb"), ("-e",)),
        (("node", "nodejs", "deno", "bun"), ("-e", "--eval", "-p", "--print")),
        (("php",), ("-r", "-B", "-R", "-E")),
        (("julia",), ("-e", "-E", "--eval", "--print")),
        (("jrunscript", "jshell"), ("-e",)),
        (("erl",), ("-eval", "-s", "-run")),
        (("gdb", "gdb-multiarch"), ("-ex", "-iex", "--eval-command", "--init-eval-command")),
        (("lua", "luajit"), ("-e",)),
        (("Rscript", "R"), ("-e",)),
        (("expect",), ("-c",)),
        (("tclsh", "wish"), ()),
        (("osascript",), ("-e",)),
        (("pwsh", "powershell"), ("-c", "-Command", "-EncodedCommand", "-e")),
    )
    for name in names
}

_VERSIONED = re.compile(r"(python|pypy|perl|ruby|lua|luajit|php|node|tclsh|wish)[\d.]*")


def interpreter_name(program: str) -> str:
    """`python3.11` -> python3, `lua5.3` -> lua: versioned interpreters count as their family."""
    if program in INTERPRETER_CODE_FLAGS:
        return program
    match = _VERSIONED.fullmatch(program)
    if match is None:
        return program
    family = match.group(1)
    return "python3" if family == "python" else family


MAX_BRACE_RESULTS = 256


_ANSI_C = re.compile(
    r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|c.|.)", re.S
)
_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}


def unescape_ansi_c(body: str) -> str:
    """The value of $'...' (without the $' and ')."""

    def one(match: re.Match[str]) -> str:
        code = match.group(1)
        if code[0] in "xuU" and len(code) > 1:
            try:
                return chr(int(code[1:], 16))
            except (ValueError, OverflowError):
                return ""
        if code[0] in "01234567":
            return chr(int(code, 8) & 0xFF)
        if code[0] == "c" and len(code) == 2:
            return chr(ord(code[1]) & 0x1F)
        return _SIMPLE_ESCAPES.get(code, "\\" + code)

    value = _ANSI_C.sub(one, body)
    return value.split("\x00", 1)[0]  # bash ends the word at a NUL: $'/\x00x' is /


def unescape_word(raw: str) -> str:
    """An unquoted word's value: a backslash quotes the next character."""
    if "\\" not in raw:
        return raw
    return re.sub(r"\\(.)", r"\1", raw, flags=re.S)


def expand_braces(text: str) -> list[str]:
    """Bash brace expansion of one word: `a{b,c}` -> ab ac, `{1..3}` -> 1 2 3,
    `{a..c}` -> a b c. At most MAX_BRACE_RESULTS + 1 results: more than the
    maximum means the word was cut short (the caller makes it opaque)."""
    match = re.search(r"\{([^{}]*)\}", text)
    if not match:
        return [text]
    inside = match.group(1)
    options: list[str]
    if "," in inside:
        options = inside.split(",")
    else:
        options = _sequence(inside)
        if not options:
            return [text]
    head, tail = text[: match.start()], text[match.end() :]
    results: list[str] = []
    for option in options:
        for expanded in expand_braces(head + option + tail):
            results.append(expanded)
            if len(results) > MAX_BRACE_RESULTS:
                return results
    return results


def _sequence(inside: str) -> list[str]:
    """`1..9`, `1..9..2`, `a..z`: the items of a brace sequence (bounded), or []."""
    numbers = re.fullmatch(r"(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?", inside)
    letters = re.fullmatch(r"([A-Za-z])\.\.([A-Za-z])(?:\.\.(-?\d+))?", inside)
    if numbers:
        lo, hi = int(numbers.group(1)), int(numbers.group(2))
        by = abs(int(numbers.group(3) or 1)) or 1
        as_text = str
    elif letters:
        lo, hi = ord(letters.group(1)), ord(letters.group(2))
        by = abs(int(letters.group(3) or 1)) or 1
        as_text = chr
    else:
        return []
    step = by if hi >= lo else -by
    items = itertools.islice(range(lo, hi + (1 if step > 0 else -1), step), MAX_BRACE_RESULTS + 1)
    return [as_text(n) for n in items]


# Wrappers: options that take a separate value, and whether a lone positional comes
# before the wrapped command (timeout's duration, chroot's directory...).
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (
        frozenset(
            "-u -g -h -p -C -D -R -T -U -r -t --user --group --host --prompt --chdir "
            "--role --type --close-from --chroot --command-timeout --other-user".split()
        ),
        0,
    ),
    "doas": (frozenset("-u -C".split()), 0),
    "nice": (frozenset("-n --adjustment".split()), 0),
    "nohup": (frozenset(), 0),
    "setsid": (frozenset(), 0),
    "time": (frozenset("-f -o --format --output".split()), 0),
    "unbuffer": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "exec": (frozenset("-a".split()), 0),
    "timeout": (frozenset("-s -k --signal --kill-after".split()), 1),
    "stdbuf": (frozenset("-i -o -e --input --output --error".split()), 0),
    "ionice": (frozenset("-c -n -t --class --classdata".split()), 0),
    "taskset": (frozenset(), 1),
    "chroot": (frozenset("--userspec --groups".split()), 1),
    "flock": (frozenset("-w -E --timeout --conflict-exit-code".split()), 1),
    "busybox": (frozenset(), 0),
    "toybox": (frozenset(), 0),
    "fakeroot": (frozenset("-l -s -i --lib --faked".split()), 0),
    "fakechroot": (frozenset("-l -d -e --lib --use-system-libs --environment".split()), 0),
    "valgrind": (frozenset(), 0),
    "coproc": (frozenset(), 0),
    "rlwrap": (frozenset("-f -H -P -S -a -b -c -e -g -l -m -o -p -q -s -t -w -z".split()), 0),
    "xargs": (
        frozenset(
            "-I -i -n -P -d -E -L -l -s -a --max-args --max-procs --delimiter --arg-file --max-lines --replace".split()
        ),
        0,
    ),
    "catchsegv": (frozenset(), 0),
    "strace": (frozenset("-e -o -p -s -u".split()), 0),
    "ltrace": (frozenset("-e -o -p -s -u".split()), 0),
    "chrt": (frozenset(), 1),
    "prlimit": (frozenset(), 0),
    "systemd-run": (frozenset("-p -u --unit --property --uid --gid".split()), 0),
    "runuser": (frozenset("-u -g -G --user --group".split()), 0),
    "sg": (frozenset(), 1),
    "pkexec": (frozenset("--user".split()), 0),
    "nsenter": (
        frozenset("-t -S -G -w -r --target --setuid --setgid --wd --root --wdns".split()),
        0,
    ),
    "unshare": (frozenset("--setuid --setgid --map-user --map-group --wd --root".split()), 0),
    "firejail": (frozenset(), 0),
    "proxychains": (frozenset("-f".split()), 0),
    "proxychains4": (frozenset("-f".split()), 0),
    "torsocks": (frozenset(), 0),
    "sshpass": (frozenset("-p -f -d -e -P".split()), 0),
    "tsocks": (frozenset(), 0),
    "faketime": (frozenset(), 1),
    "chpst": (frozenset("-u -U -e -n -l -L -m -d -o -p -f -c".split()), 0),
}
# Container runners: `docker exec [OPTIONS] CONTAINER CMD...` runs CMD in the container.
_CONTAINER_EXEC_VALUES = frozenset(
    "-e --env --env-file -u --user -w --workdir --detach-keys".split()
)
# At most this many commands are read out of one find or parallel invocation.
MAX_EXPANDED = 64
_SSH_VALUE_OPTIONS = frozenset(
    "-b -c -D -E -e -F -I -i -J -L -l -m -O -o -p -Q -R -S -W -w -B".split()
)


def strip_wrapper(program: str, argv: list[str]) -> tuple[str, list[Any]] | None:
    """What a wrapper runs; None if `program` is not one.

    ("argv", words): one command. ("argvs", [words, ...]): several (find with
    several starting points or -exec actions, parallel with `:::` items).
    ("input", words): a command that gets more arguments from its input at run
    time (xargs, parallel without `:::`). ("line", [text]): shell code.
    ("opaque", [reason]): too much to analyse (limits never drop commands).
    """
    args = argv[1:]
    if program == "xargs":
        wrapped = _wrapped_argv(program, args)
        return ("input", wrapped[1]) if wrapped is not None else None
    if program == "parallel":
        return _parallel(args)
    if program == "runuser" and any(
        a in ("-c", "--command") or a.startswith("--command=") for a in args
    ):
        return _su(args)
    if program == "start-stop-daemon":
        return _start_stop_daemon(args)
    if program in _WRAPPERS:
        return _wrapped_argv(program, args)
    if program == "env":
        return _env(args)
    if program == "command":
        rest = [a for a in args if a not in ("-p", "--")]
        if rest and rest[0] in ("-v", "-V"):
            return None  # only looks the name up
        return ("argv", rest) if rest else None
    if program in SHELLS:
        return _shell_c(args)
    if program == "su":
        return _su(args)
    if program == "ssh":
        return _ssh(args)
    if program == "watch":
        return _watch(args)
    if program == "find":
        return _find_exec(args)
    if program == "clickhouse" and args[:1] in (["client"], ["local"]):
        return ("argv", [f"clickhouse-{args[0]}", *args[1:]])
    if program in ("docker", "podman", "nerdctl") and args[:1] == ["exec"]:
        return _container_exec(args[1:])
    if program in ("kubectl", "oc") and "exec" in args and "--" in args:
        return ("argv", args[args.index("--") + 1 :]) if args[-1] != "--" else None
    if program == "script":
        return _script(args)
    if program == "trap" and len(args) >= 2 and not args[0].startswith("-"):
        return ("line", [args[0]])  # the handler runs later, on the signal
    if program == "alias":  # an alias body runs later under another name: judge it now
        bodies = [a.split("=", 1)[1] for a in args if "=" in a]
        return ("line", ["; ".join(bodies)]) if bodies else None
    if program == "flock" and "-c" in args:
        index = args.index("-c")
        return ("line", args[index + 1 : index + 2])
    return None


def _wrapped_argv(program: str, args: list[str]) -> tuple[str, list[str]] | None:
    value_options, positionals = _WRAPPERS[program]
    if program == "flock" and "-c" in args:
        index = args.index("-c")
        return ("line", args[index + 1 : index + 2])
    if program == "taskset" and any(a in ("-p", "--pid") for a in args):
        return None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg.startswith("-") and len(arg) > 1:
            name = arg.split("=", 1)[0]
            if name in value_options and "=" not in arg:
                i += 2
            elif len(arg) > 2 and not arg.startswith("--"):
                i += _cluster_width(arg, value_options)  # -nu root, -uroot, -Eu root
            else:
                i += 1
            continue
        if program == "nice" and re.fullmatch(r"-\d+", arg):
            i += 1
            continue
        if program in ("sudo", "doas") and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", arg):
            i += 1  # sudo EDITOR=x visudo: an environment setting, not the command
            continue
        break
    rest = args[i + positionals :]
    return ("argv", rest) if rest else None


def _cluster_width(arg: str, value_options: frozenset[str]) -> int:
    """How many words a short-option cluster takes: 2 when its last letter wants a value
    (`-nu root`), 1 when a letter's value is attached (`-uroot`) or none wants one."""
    for position, letter in enumerate(arg[1:], 1):
        if "-" + letter in value_options:
            return 2 if position == len(arg) - 1 else 1
    return 1


def _env(args: list[str]) -> tuple[str, list[str]] | None:
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-S", "--split-string"):
            return ("line", args[i + 1 :])
        if arg.startswith("-S") and not arg.startswith("--"):
            return ("line", [arg[2:], *args[i + 1 :]])
        if arg.startswith("--split-string="):
            return ("line", [arg.split("=", 1)[1], *args[i + 1 :]])
        if arg in ("-u", "--unset", "-C", "--chdir"):
            i += 2
        elif arg.startswith("-"):
            i += 1
        elif "=" in arg and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", arg):
            i += 1
        else:
            break
    rest = args[i:]
    return ("argv", rest) if rest else None


def _start_stop_daemon(args: list[str]) -> tuple[str, list[str]] | None:
    """`start-stop-daemon --start --exec PROGRAM -- ARGS`: PROGRAM runs with ARGS."""
    program = None
    for i, arg in enumerate(args):
        if arg in ("--exec", "-x", "--startas", "-a") and i + 1 < len(args):
            program = args[i + 1]
        elif arg.startswith(("--exec=", "--startas=")):
            program = arg.split("=", 1)[1]
    if program is None:
        return None
    rest = args[args.index("--") + 1 :] if "--" in args else []
    return ("argv", [program, *rest])


def _container_exec(args: list[str]) -> tuple[str, list[str]] | None:
    i = 0
    while i < len(args) and args[i].startswith("-"):
        i += 2 if args[i] in _CONTAINER_EXEC_VALUES else 1
    rest = args[i + 1 :]  # after the container
    return ("argv", rest) if rest else None


def _script(args: list[str]) -> tuple[str, list[str]] | None:
    """util-linux `script -c CMD` (also -qc CMD, --command=CMD) runs CMD in a new terminal."""
    for i, arg in enumerate(args):
        if arg in ("-c", "--command") or (
            arg.startswith("-") and not arg.startswith("--") and arg.endswith("c")
        ):
            return ("line", args[i + 1 : i + 2])
        if arg.startswith("--command="):
            return ("line", [arg.split("=", 1)[1]])
    return None


def _shell_c(args: list[str]) -> tuple[str, list[str]] | None:
    for i, arg in enumerate(args):
        if arg.startswith("-") and not arg.startswith("--") and "c" in arg[1:]:
            return ("line", args[i + 1 : i + 2])
        if not arg.startswith("-"):
            return None  # a script file
    return None


def _su(args: list[str]) -> tuple[str, list[str]] | None:
    for i, arg in enumerate(args):
        if arg in ("-c", "--command") or (
            arg.startswith("-")
            and not arg.startswith("--")
            and arg.endswith("c")
            and len(arg) > 1
            and arg != "-"
        ):
            return ("line", args[i + 1 : i + 2])
        if arg.startswith("--command="):
            return ("line", [arg.split("=", 1)[1]])
    return None


def _ssh(args: list[str]) -> tuple[str, list[str]] | None:
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in _SSH_VALUE_OPTIONS:
            i += 2
        elif arg.startswith("-"):
            i += 1
        else:
            break
    rest = args[i + 1 :]  # skip the host
    return ("line", [" ".join(rest)]) if rest else None


def _watch(args: list[str]) -> tuple[str, list[str]] | None:
    i = 0
    exec_mode = False
    while i < len(args) and args[i].startswith("-"):
        if args[i] in ("-n", "--interval", "-d", "--differences") and args[i] in (
            "-n",
            "--interval",
        ):
            i += 2
            continue
        if args[i] in ("-x", "--exec"):
            exec_mode = True
        i += 1
    rest = args[i:]
    if not rest:
        return None
    return ("argv", rest) if exec_mode else ("line", [" ".join(rest)])


def find_stand_ins(args: list[str]) -> list[str]:
    """What find hands on ({}, or to a pipe): its starting points, and START/NAME for each
    -name/-path test, so `find / -name id_rsa -exec cat {} ;` is judged as `cat /id_rsa`."""
    starts = []
    for arg in args:
        if arg.startswith(("-", "(", "!")):
            break
        starts.append(arg)
    starts = starts or ["."]
    names = [
        args[i + 1].lstrip("*/")
        for i, arg in enumerate(args[:-1])
        if arg in ("-name", "-iname", "-path", "-ipath", "-wholename", "-iwholename")
    ]
    joined = [f"{start.rstrip('/')}/{name}" for start in starts for name in names if name]
    return starts + joined


def _find_exec(args: list[str]) -> tuple[str, list[Any]] | None:
    """Every -exec/-execdir/-ok action, once per path standing in for {}."""
    starts = find_stand_ins(args)
    if len(starts) > MAX_EXPANDED:
        return ("opaque", [f"find with more than {MAX_EXPANDED} starting points"])
    commands: list[list[str]] = []
    i = 0
    while i < len(args):
        if args[i] in ("-exec", "-execdir", "-ok", "-okdir"):
            end = next((j for j in range(i + 1, len(args)) if args[j] in (";", "+")), len(args))
            words = args[i + 1 : end]
            if words:
                commands += [[start if w == "{}" else w for w in words] for start in starts]
            i = end
        i += 1
    if len(commands) > MAX_EXPANDED:
        return ("opaque", [f"find runs more than {MAX_EXPANDED} commands"])
    return ("argvs", commands) if commands else None


# GNU parallel: options that take a separate value.
_PARALLEL_VALUE_OPTIONS = frozenset(
    "-j -J -S -a -d -I -C -n -N -L -E --jobs --sshlogin --arg-file --delimiter --colsep "
    "--tmpdir --results --joblog --timeout --delay --max-args --max-replace-args".split()
)


def _parallel(args: list[str]) -> tuple[str, list[Any]] | None:
    """`parallel CMD ::: A B` runs CMD A and CMD B; without `:::` the items come from input."""
    i = 0
    while i < len(args) and args[i].startswith("-") and args[i] not in (":::", "::::"):
        i += 2 if args[i] in _PARALLEL_VALUE_OPTIONS else 1
    rest = args[i:]
    separator = next((j for j, a in enumerate(rest) if a.startswith(":::")), None)
    words = rest if separator is None else rest[:separator]
    items = (
        [] if separator is None else [a for a in rest[separator + 1 :] if not a.startswith(":::")]
    )
    from_files = separator is not None and rest[separator] == "::::"
    if len(items) > MAX_EXPANDED:
        return ("opaque", [f"parallel with more than {MAX_EXPANDED} items"])
    if not words:  # the items are the commands
        if separator is None or from_files:
            return ("input", [])
        return ("line", ["; ".join(items)])
    if separator is None or from_files:
        return ("input", words)
    if len(words) == 1 and " " in words[0]:  # parallel 'rm -rf {}' ::: ...: run by a shell
        code = words[0]
        lines = [code.replace("{}", item) if "{}" in code else f"{code} {item}" for item in items]
        return ("line", ["; ".join(lines)])
    placeholder = "{}" if any("{}" in w for w in words) else None
    commands = [
        [w.replace(placeholder, item) for w in words] if placeholder else [*words, item]
        for item in items
    ]
    return ("argvs", commands) if commands else ("argv", words)
