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
        (("php",), ("-r",)),
        (("lua", "luajit"), ("-e",)),
        (("Rscript",), ("-e",)),
        (("tclsh", "wish"), ()),
        (("osascript",), ("-e",)),
        (("pwsh", "powershell"), ("-c", "-Command", "-EncodedCommand", "-e")),
    )
    for name in names
}

MAX_BRACE_RESULTS = 64

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

    return _ANSI_C.sub(one, body)


def unescape_word(raw: str) -> str:
    """An unquoted word's value: a backslash quotes the next character."""
    if "\\" not in raw:
        return raw
    return re.sub(r"\\(.)", r"\1", raw, flags=re.S)


def expand_braces(text: str) -> list[str]:
    """Bash brace expansion of one word: `a{b,c}` -> ab ac, `{1..3}` -> 1 2 3 (bounded)."""
    match = re.search(r"\{([^{}]*)\}", text)
    if not match:
        return [text]
    inside = match.group(1)
    options: list[str]
    if "," in inside:
        options = inside.split(",")
    else:
        sequence = re.fullmatch(r"(-?\d+)\.\.(-?\d+)", inside)
        if not sequence:
            return [text]
        lo, hi = int(sequence.group(1)), int(sequence.group(2))
        step = 1 if hi >= lo else -1
        options = [str(n) for n in itertools.islice(range(lo, hi + step, step), MAX_BRACE_RESULTS)]
    head, tail = text[: match.start()], text[match.end() :]
    results: list[str] = []
    for option in options:
        for expanded in expand_braces(head + option + tail):
            results.append(expanded)
            if len(results) >= MAX_BRACE_RESULTS:
                return results
    return results


# Wrappers: options that take a separate value, and whether a lone positional comes
# before the wrapped command (timeout's duration, chroot's directory...).
_WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (
        frozenset("-u -g -h -p -C -D -R -T -U --user --group --host --prompt --chdir".split()),
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
}
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
    """
    args = argv[1:]
    if program == "xargs":
        wrapped = _wrapped_argv(program, args)
        return ("input", wrapped[1]) if wrapped is not None else None
    if program == "parallel":
        return _parallel(args)
    if program in _WRAPPERS:
        return _wrapped_argv(program, args)
    if program == "env":
        return _env(args)
    if program == "command":
        rest = [a for a in args if a != "-p"]
        if rest and rest[0] in ("-v", "-V"):
            return None  # only looks the name up
        return ("argv", rest) if rest else None
    if program in SHELLS:
        return _shell_c(args)
    if program in ("su",):
        return _su(args)
    if program == "ssh":
        return _ssh(args)
    if program == "watch":
        return _watch(args)
    if program == "find":
        return _find_exec(args)
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
            elif len(arg) > 2 and arg[:2] in value_options and not arg.startswith("--"):
                i += 1  # value attached: -n5, -uroot
            else:
                i += 1
            continue
        if program == "nice" and re.fullmatch(r"-\d+", arg):
            i += 1
            continue
        break
    rest = args[i + positionals :]
    return ("argv", rest) if rest else None


def _env(args: list[str]) -> tuple[str, list[str]] | None:
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("-S", "--split-string"):
            return ("line", args[i + 1 :])
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


def _find_exec(args: list[str]) -> tuple[str, list[Any]] | None:
    """Every -exec/-execdir/-ok action, once per starting point standing in for {}."""
    starts = []
    for arg in args:
        if arg.startswith(("-", "(", "!")):
            break
        starts.append(arg)
    starts = starts[:MAX_EXPANDED] or ["."]
    commands: list[list[str]] = []
    i = 0
    while i < len(args) and len(commands) < MAX_EXPANDED:
        if args[i] in ("-exec", "-execdir", "-ok", "-okdir"):
            end = next((j for j in range(i + 1, len(args)) if args[j] in (";", "+")), len(args))
            words = args[i + 1 : end]
            if words:
                commands += [[start if w == "{}" else w for w in words] for start in starts]
            i = end
        i += 1
    return ("argvs", commands[:MAX_EXPANDED]) if commands else None


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
    if not words:  # the items are the commands
        if separator is None or from_files:
            return ("input", [])
        return ("line", ["; ".join(items[:MAX_EXPANDED])])
    if separator is None or from_files:
        return ("input", words)
    placeholder = "{}" if any("{}" in w for w in words) else None
    commands = [
        [w.replace(placeholder, item) for w in words] if placeholder else [*words, item]
        for item in items[:MAX_EXPANDED]
    ]
    return ("argvs", commands) if commands else ("argv", words)
