"""What ordinary tools do through their options and variables.

Files they write (`dd of=`, `curl -o`, `cp -t`, `find -fprint`), commands they
are told to run later (`git -c core.pager=`, `tar --checkpoint-action=exec=`,
`man -P`, PAGER, PROMPT_COMMAND), variables that load code (LD_PRELOAD), and
options that take a value before a subcommand (`kubectl -n prod get`).
"""

from __future__ import annotations

import re
import shlex

from rules.normalize import MAX_EXPANDED

# Options that take a value before a tool's subcommand (`kubectl -n prod get secrets`).
GLOBAL_VALUE_OPTIONS: dict[str, frozenset[str]] = {
    name: frozenset(options.split())
    for names, options in (
        (("aws",), "--profile --region --output --endpoint-url --query --ca-bundle --color"),
        (
            ("kubectl", "oc", "helm"),
            "-n --namespace --context --kube-context --cluster --kubeconfig --user -s "
            "--server --token --as --as-group -v --v",
        ),
        (
            ("gcloud",),
            "--project --account --configuration --format --verbosity "
            "--impersonate-service-account",
        ),
        (("az",), "--subscription -o --output --query"),
        (("vault",), "-address -namespace -format -ca-cert"),
        (("docker", "podman"), "-H --host --context -c --config -l --log-level"),
        (("git",), "-C -c --git-dir --work-tree --namespace"),
    )
    for name in names
}

# Variables whose value some program runs as a command later.
COMMAND_VARIABLES = frozenset(
    "PAGER MANPAGER GIT_PAGER SYSTEMD_PAGER LESSOPEN LESSCLOSE EDITOR VISUAL SUDO_EDITOR "
    "GIT_EDITOR PROMPT_COMMAND GIT_SSH_COMMAND GIT_SSH GIT_EXTERNAL_DIFF GIT_PROXY_COMMAND "
    "BROWSER RSYNC_RSH".split()
)
# Variables that make programs load code from elsewhere.
CODE_LOADING_VARIABLES = frozenset(
    "LD_PRELOAD LD_LIBRARY_PATH LD_AUDIT BASH_ENV ENV PYTHONSTARTUP PERL5OPT NODE_OPTIONS "
    "PYTHONPATH PERL5LIB RUBYOPT".split()
)
# git settings whose value is a command (alias.* values that start with `!` too).
_GIT_COMMAND_KEYS = frozenset(
    "core.pager core.sshcommand core.editor core.fsmonitor core.askpass sequence.editor "
    "diff.external gpg.program credential.helper".split()
)


def option_writes(program: str, argv: tuple[str, ...]) -> tuple[str, ...]:
    """Files a command writes through its options: dd of=, curl -o, sort -o, cp -t DIR,
    find -fprint FILE, sponge FILE, and `mv|cp SRC... DIR/` (DIR/SRC's name)."""
    args = list(argv[1:])
    found: list[str] = []
    if program == "dd":
        found += [a[3:] for a in args if a.startswith("of=")]
    elif program in ("curl", "wget"):
        found += _curl_wget_outputs(program, args)
    elif program in ("sort", "uniq", "shuf"):
        found += [args[i + 1] for i, a in enumerate(args[:-1]) if a in ("-o", "--output")]
        found += [a.split("=", 1)[1] for a in args if a.startswith("--output=")]
    elif program == "sed":  # the script's own w command: sed -n 'w /root/.ssh/authorized_keys'
        found += [m.group(1) for a in args if not a.startswith("-") for m in _SED_WRITE.finditer(a)]
    elif program == "sponge":
        found += [a for a in args if not a.startswith("-")]
    elif program == "find":
        found += [
            args[i + 1]
            for i, a in enumerate(args[:-1])
            if a in ("-fprint", "-fprint0", "-fprintf", "-fls")
        ]
    elif program in ("cp", "mv", "install", "ln"):
        found += _copy_destinations(args)
    return tuple(found)


_SED_WRITE = re.compile(r"(?:^|[;\n}/])\s*w\s+([/~.]\S*)")


def _curl_wget_outputs(program: str, args: list[str]) -> list[str]:
    found = []
    for i, arg in enumerate(args):
        wants_value = arg in ("-o", "--output", "--output-document") or (
            program == "wget" and arg == "-O"
        )
        if program == "curl" and arg.startswith("-") and not arg.startswith("--"):
            wants_value = arg.endswith("o")  # -so FILE
        if wants_value and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith(("--output=", "--output-document=")):
            found.append(arg.split("=", 1)[1])
    return [f for f in found if f != "-"]


def _copy_destinations(args: list[str]) -> list[str]:
    target = None
    for i, arg in enumerate(args):
        if arg in ("-t", "--target-directory") and i + 1 < len(args):
            target = args[i + 1]
        elif arg.startswith("--target-directory="):
            target = arg.split("=", 1)[1]
    positional = [a for a in args if not a.startswith("-") and a != target]
    if target is None:
        if len(positional) < 2:
            return []
        target, positional = positional[-1], positional[:-1]
    names = [p.rstrip("/").rsplit("/", 1)[-1] for p in positional[:MAX_EXPANDED]]
    return [f"{target.rstrip('/')}/{name}" for name in names if name]


# Options that run a command (or read its file arguments) in another directory.
_DIRECTORY_OPTIONS = {
    "tar": ("-C", "--directory"),
    "gtar": ("-C", "--directory"),
    "bsdtar": ("-C", "--cd"),
    "env": ("-C", "--chdir"),
    "sudo": ("-D", "--chdir"),
    "make": ("-C", "--directory"),
    "git": ("-C",),
    "runuser": ("-D",),
}


def option_directory(program: str, argv: tuple[str, ...]) -> str | None:
    """The directory a command's paths are relative to, when an option sets it:
    `tar -C /etc -cf - shadow` reads /etc/shadow."""
    options = _DIRECTORY_OPTIONS.get(program)
    if options is None:
        return None
    found = None
    args = argv[1:]
    for i, arg in enumerate(args):
        if arg in options and i + 1 < len(args):
            found = args[i + 1]
        elif arg.startswith("--") and arg.split("=", 1)[0] in options and "=" in arg:
            found = arg.split("=", 1)[1]
        elif arg[:2] in options and len(arg) > 2 and not arg.startswith("--"):
            found = arg[2:]
    return found


def tool_code(program: str, argv: tuple[str, ...]) -> list[str]:
    """Commands an ordinary tool is told to run by its options: `git -c core.pager=CMD`,
    `git config core.pager CMD`, `tar --checkpoint-action=exec=CMD`, `tar -I CMD`,
    `man -P CMD`, `zip --unzip-command=CMD`."""
    args = list(argv[1:])
    found: list[str] = []
    if program == "git":
        for i, arg in enumerate(args):
            if arg == "-c" and i + 1 < len(args):
                found += _git_setting(*args[i + 1].partition("=")[::2])
            elif arg.startswith("-c") and "=" in arg:
                found += _git_setting(*arg[2:].partition("=")[::2])
        if "config" in args:
            rest = [a for a in args[args.index("config") + 1 :] if not a.startswith("-")]
            if len(rest) >= 2:
                found += _git_setting(rest[0], rest[1])
        found += [_git_ext(a[5:]) for a in args if a.startswith("ext::")]
    elif program in ("tar", "gtar", "bsdtar"):
        for i, arg in enumerate(args):
            name, _, value = arg.partition("=")
            if name == "--checkpoint-action" and value.startswith("exec="):
                found.append(value[5:])
            elif (
                name
                in (
                    "--to-command",
                    "--use-compress-program",
                    "--rsh-command",
                    "--info-script",
                    "--new-volume-script",
                )
                and value
            ):
                found.append(value)
            elif arg in ("-I", "-F", "--use-compress-program", "--to-command") and i + 1 < len(
                args
            ):
                found.append(args[i + 1])
    elif program in ("man", "zip"):
        for i, arg in enumerate(args):
            name, _, value = arg.partition("=")
            if name in ("--pager", "--unzip-command") and value:
                found.append(value)
            elif arg in ("-P", "-TT") and i + 1 < len(args):
                found.append(args[i + 1])
    return found[:MAX_EXPANDED]


def _git_ext(command: str) -> str:
    """git's ext:: transport: words split on spaces, `% ` a literal space, `%%` a percent."""
    words = re.split(r"(?<!%) ", command)
    return " ".join(shlex.quote(w.replace("% ", " ").replace("%%", "%")) for w in words if w)


def _git_setting(key: str, value: str) -> list[str]:
    key = key.lower()
    if key.startswith("alias.") and value.startswith("!"):
        return [value[1:]]
    if key in _GIT_COMMAND_KEYS or key.startswith("pager."):
        return [value] if value else []
    return []
