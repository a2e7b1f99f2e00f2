"""What programs do with their arguments and input, for the walker in rules/shell.py.

Which commands run code the bastion cannot see (inline interpreter code, a
shell or interpreter reading its input, awk's system(), editors with a shell
escape), what `xargs` and `parallel` build from their input, what text an
`echo` feeds down a pipe, and which files downloaders write.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import replace

from rules.model import SimpleCommand
from rules.normalize import (
    INTERPRETER_CODE_FLAGS,
    SHELLS,
    find_stand_ins,
    interpreter_name,
)
from rules.sql import SQL_CLIENTS, sql_for_client, sql_options_given
from rules.tools import option_writes
from rules.words import normalize_path, printed_text

# Editors whose command mode runs shell commands (`:!cmd`, `M-!`): what is typed inside
# them never reaches the bastion as a line, so starting one is opaque.
EDITORS_WITH_SHELL = frozenset(
    {"vi", "vim", "nvim", "view", "vimdiff", "ex", "ed", "emacs", "gvim"}
)


def opaque_reason(program: str, argv: tuple[str, ...], heredoc: str | None) -> str | None:
    if program in ("eval",):
        return "eval runs text built at run time"
    if program in EDITORS_WITH_SHELL:
        return f"{program} can run shell commands the bastion does not see"
    if program in ("source", ".") and (
        len(argv) < 2 or argv[1].startswith(("/dev/fd", "/proc/self"))
    ):
        return "source of something that is not a file"
    flags = INTERPRETER_CODE_FLAGS.get(program)
    if flags and _gives_code(argv, flags):
        return f"{program} runs inline code"
    if program in INTERPRETER_CODE_FLAGS and heredoc is not None and not _script_named(argv):
        return f"{program} runs code from a here-document"
    if program in ("awk", "gawk", "mawk", "nawk", "busybox-awk") and any(
        _AWK_RUNS.search(a) for a in argv[1:]
    ):
        return "awk runs commands"
    if program in SHELLS and heredoc is None and len(argv) > 1 and argv[1] in ("-s",):
        return f"{program} reads commands from stdin"
    if (
        program in SHELLS or program in INTERPRETER_CODE_FLAGS or program in ("source", ".")
    ) and any(a.startswith(("<(", "/dev/fd/", "/proc/self/fd/")) for a in argv[1:]):
        return f"{program} runs code from a process substitution"
    return None


MAX_XARGS_ITEMS = 64
# awk code that starts commands: system(...), "cmd" | getline, print | "cmd", |&.
_AWK_RUNS = re.compile(r"\bsystem\s*\(|\|\s*getline|\|&|(print|printf)\b[^;{}]*\|\s*\S")
# Paths that name the standard input: a script read from them comes from the pipe.
STDIN_PATHS = frozenset({"-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"})


def _gives_code(argv: tuple[str, ...], flags: frozenset[str]) -> bool:
    """A code flag among the interpreter's own options (before its script, if any):
    `python3 manage.py shell -c X` hands -c to the script, not to python."""
    for arg in argv[1:]:
        if not arg.startswith("-"):
            return False
        if _is_code_flag(arg, flags):
            return True
    return False


def _is_code_flag(arg: str, flags: frozenset[str]) -> bool:
    """-c, -e, --eval=..., and short clusters holding one: -Ic, -ne, -lne, -ccode."""
    if arg in flags or arg.split("=", 1)[0] in flags:
        return True
    if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2:
        letters = {f[1] for f in flags if len(f) == 2}
        return any(letter in letters for letter in arg[1:])
    return False


def _script_named(argv: tuple[str, ...]) -> bool:
    """An interpreter given a script file (not one of the standard-input names)."""
    positional = [a for a in argv[1:] if not a.startswith("-")]
    return bool(positional) and positional[0] not in STDIN_PATHS


def xargs_replace_string(argv: tuple[str, ...]) -> str | None:
    """The -I/-i/--replace string xargs substitutes input items for, if any."""
    args = list(argv[1:])
    for index, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "-I" and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith("-I") and len(arg) > 2:
            return arg[2:]
        if arg in ("-i", "--replace"):
            return "{}"
        if arg.startswith(("-i", "--replace=")):
            return arg.split("=", 1)[1] if "=" in arg else arg[2:]
    return None


def input_command_reason(argv: tuple[str, ...], inner: list[str]) -> str | None:
    """Why the command xargs or parallel builds from its input cannot be known, if it cannot.

    Input items become the command name, or code for a shell or interpreter:
    `... | xargs -I{} sh -c '{}'`, `... | xargs -I% %`, `parallel` with no
    command. Plain data arguments (`find ... | xargs grep x`) are not opaque:
    the command is reported with `open_args` (its arguments come at run time),
    and with `echo ... |` they are judged as given (_Walker.xargs_input).
    """
    runner = posixpath.basename(argv[0]) if argv else "xargs"
    if not inner:
        return f"{runner} runs command lines read from its input" if runner == "parallel" else None
    replace_with = xargs_replace_string(argv) if runner == "xargs" else "{}"
    program = posixpath.basename(inner[0])
    if replace_with is not None and replace_with in inner[0]:
        return f"{runner} runs a command named by its input"
    runs_code = program in SHELLS or program in INTERPRETER_CODE_FLAGS or program == "eval"
    if runs_code and replace_with is not None and any(replace_with in w for w in inner[1:]):
        return f"{runner} hands its input to {program} as code"
    if (
        runs_code
        and replace_with is None
        and (program == "eval" or (len(inner) >= 2 and inner[-1] in ("-c", "-e", "--eval")))
    ):
        return f"{runner} hands its input to {program} as code"
    return None


def found_paths(commands: list[SimpleCommand]) -> str | None:
    """`find START... | xargs CMD`: CMD gets paths under START, judged as START itself
    (as `find START -exec CMD {}` is)."""
    if len(commands) != 1 or commands[0].program != "find" or commands[0].opaque:
        return None
    return " ".join(find_stand_ins(list(commands[0].argv[1:])))


def echoed_text(commands: list[SimpleCommand]) -> str | None:
    """Text an `echo`/`printf` first stage feeds down a pipe, for SQL clients and shells."""
    if len(commands) == 1 and commands[0].program in ("echo", "printf"):
        return printed_text(commands[0].program, commands[0].argv[1:])
    return None


STDIN_REASON = "reads commands from its input"
DOWNLOADERS = frozenset({"curl", "wget", "fetch", "aria2c", "http", "lwp-download"})


def download_outputs(program: str, argv: tuple[str, ...]) -> list[str]:
    """Files a downloader writes: -o/-O FILE (option_writes), or the URL's last part for
    curl -O and for wget without -O."""
    args = argv[1:]
    found = list(option_writes(program, argv))
    urls = [a for a in args if "://" in a]
    names_from_url = (program == "curl" and any(_short_cluster_has(a, "O") for a in args)) or (
        program == "wget" and not any(a.startswith("-O") for a in args)
    )
    if names_from_url:
        found += [u.rstrip("/").rsplit("/", 1)[-1] for u in urls]
    return [normalize_path(f) for f in found if f and f != "-"]


def _short_cluster_has(arg: str, letter: str) -> bool:
    return arg.startswith("-") and not arg.startswith("--") and letter in arg[1:]


def script_of(program: str, argv: tuple[str, ...]) -> str | None:
    """The script file a shell or interpreter is told to run, if any."""
    if program not in SHELLS and interpreter_name(program) not in INTERPRETER_CODE_FLAGS:
        if program not in ("source", "."):
            return None
    positional = [a for a in argv[1:] if not a.startswith("-")]
    return normalize_path(positional[0]) if positional else None


_V_IS_VERSION = frozenset({"node", "nodejs", "deno", "bun", "ruby", "php", "lua", "perl"})
_ONLY_INFORMATION = frozenset({"--version", "-V", "--help", "-h", "-version"})


def reads_commands_from_input(program: str, argv: tuple[str, ...]) -> str | None:
    """Shells, interpreters and database clients given nothing to run read it from stdin or
    the terminal: commands the bastion never sees. (A script file is judged by its name.)"""
    if (
        program not in SHELLS
        and program not in INTERPRETER_CODE_FLAGS
        and program not in SQL_CLIENTS
    ):
        return None
    args = argv[1:]
    if any(a in _ONLY_INFORMATION for a in args) or (program in _V_IS_VERSION and "-v" in args):
        return None
    positional = [a for a in args if not a.startswith("-")]
    if positional and positional[0] in STDIN_PATHS:
        return f"{program} {STDIN_REASON}"  # `sh /dev/stdin`: the script is the input
    if program in SHELLS:
        if any(a in ("-s", "-i", "--login", "-l") for a in args) or not positional:
            return f"{program} {STDIN_REASON}"
        return None
    if program in INTERPRETER_CODE_FLAGS:
        if "-m" in args and args[args.index("-m") + 1 : args.index("-m") + 2] in (
            ("pty",),
            ("code",),
        ):
            return f"{program} starts an interactive shell or console"  # python3 -m pty
        if "-m" in args or positional:
            return None
        return f"{program} {STDIN_REASON}"
    if program in SQL_CLIENTS:
        if any(a in ("-f", "--file") or a.startswith("--file=") for a in args):
            return None
        if sql_options_given(program, argv):
            return None  # psql -c '\\dt': a meta-command, not SQL, but given on the line
        if program == "sqlite3" and len(positional) >= 2:
            return None
        if program == "redis-cli" and positional:
            return None
        return f"{program} {STDIN_REASON}"
    return None


def reads_pipe(command: SimpleCommand, fed: str | None, stage: int) -> SimpleCommand:
    """A later pipeline stage: shells and interpreters reading the pipe run code we cannot see."""
    program, argv = interpreter_name(command.program), command.argv
    stdin_only = command.reason is not None and command.reason.endswith(STDIN_REASON)
    if stdin_only and fed is not None and program in SQL_CLIENTS:
        sql, reason = sql_for_client(program, argv, fed)
        return replace(command, sql=sql, opaque=reason is not None, reason=reason)
    if stdin_only and (program in SHELLS or program in INTERPRETER_CODE_FLAGS):
        return replace(command, reason=f"{program} runs code from a pipe")
    if command.opaque:
        return command
    if program in SHELLS and (len(argv) == 1 or argv[1] in ("-s", "-i", "-")):
        return replace(command, opaque=True, reason=f"{program} runs code from a pipe")
    if program in INTERPRETER_CODE_FLAGS and (len(argv) == 1 or argv[1] == "-"):
        return replace(command, opaque=True, reason=f"{program} runs code from a pipe")
    if fed is not None and not command.sql:
        sql, reason = sql_for_client(program, argv, fed)
        if sql or reason:
            return replace(command, sql=sql, opaque=reason is not None, reason=reason)
    return command
