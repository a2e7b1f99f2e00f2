"""Handlers for network clients, version control, archives, containers and schedulers."""

from __future__ import annotations

import re
from collections.abc import Callable

from rules import git_remotes, handlers_api
from rules.effects import Facts
from rules.shell import Feed
from rules.values import UNKNOWN, Word, text_of

# ssh -o options that run a command on this host, and the ones that open tunnels.
_SSH_COMMAND_OPTIONS = frozenset(
    "proxycommand localcommand knownhostscommand remotecommand permitlocalcommand "
    "match securitykeyprovider pkcs11provider identityagent controlpath".split()
)
_SSH_TUNNEL_OPTIONS = frozenset(
    "localforward remoteforward dynamicforward tunnel tunneldevice gatewayports".split()
)


def _values(facts: Facts, *names: str) -> list[str | Word]:
    return facts.option_values(*names)


def _given(facts: Facts, *names: str) -> bool:
    return bool(facts.parsed.flags & {n.lstrip("-") for n in names})


def _positional(facts: Facts) -> list[str | Word]:
    return facts.positional_words()


def ssh_options(facts: Facts) -> None:
    for value in _values(facts, "-o"):
        text = text_of(value)
        key, _, setting = re.split(r"\s*=\s*|\s+", text, maxsplit=1)[0], "", ""
        parts = re.split(r"\s*=\s*|\s+", text, maxsplit=1)
        key = parts[0].lower()
        setting = parts[1] if len(parts) > 1 else ""
        if not isinstance(value, str):
            facts.not_understood(text, "an ssh option whose text is not known")
        elif key in _SSH_COMMAND_OPTIONS and setting.lower() not in ("none", "no", ""):
            if key in ("proxycommand", "localcommand", "knownhostscommand"):
                facts.line(setting.replace("%h", "HOST").replace("%p", "22"), f"ssh -o {parts[0]}")
            facts.not_understood(text, f"{parts[0]} runs a command on this host")
        elif key in _SSH_TUNNEL_OPTIONS:
            facts.caps.add("send")
            facts.hosts.append(setting)
        elif key == "proxyjump":
            facts.hosts.append(setting)
        elif key in ("sendenv", "setenv", "forwardagent", "forwardx11") and setting.lower() not in (
            "no",
            "none",
        ):
            facts.caps.add("send")
    for value in _values(facts, "-F"):
        if text_of(value) != "/dev/null":
            facts.not_understood(
                f"-F {text_of(value)}", "an ssh configuration file can run commands"
            )


def ssh(facts: Facts) -> None:
    """ssh [opts] HOST [CMD...]: CMD is a line run on HOST, with this command's input."""
    ssh_options(facts)
    words = _positional(facts)
    if not words:
        return
    facts.host(words[0])
    for value in _values(facts, "-L", "-R", "-D", "-W", "-w"):
        facts.caps.add("send")
        facts.hosts.append(text_of(value))
    command = words[1:] + list(facts.parsed.rest or [])
    facts.parsed.rest = None
    if command:
        if all(isinstance(w, str) for w in command):
            from rules.context import Context, ShellState

            remote = ShellState.from_context(Context.start())
            facts.walker.line(
                " ".join(command),
                remote,  # type: ignore[arg-type]
                via=(*facts.via, f"ssh {text_of(words[0])}"),
                depth=facts.depth + 1,
                feed=facts.feed,
            )
        else:
            facts.not_understood(
                " ".join(text_of(w) for w in command)[:60],
                "a remote command whose text is not known",
            )
        if facts.feed.kind in ("pipe", "file"):
            facts.caps.add("send")
    elif not _given(facts, "N", "f", "G", "V", "Q", "O"):
        facts.not_understood(text_of(words[0]), "an interactive session on another host")
        facts.runs_input = True


def _remote(text: str) -> bool:
    if (
        text.startswith(("/", "./", "~"))
        or "://" in text
        and not text.startswith(("scp://", "sftp://", "rsync://"))
    ):
        return False
    head = text.split("/", 1)[0]
    return (
        ":" in head
        and not head.startswith("[")
        or text.startswith(("scp://", "sftp://", "rsync://"))
    )


def copy_remote(facts: Facts) -> None:
    """scp/rsync SRC... DEST: a HOST:PATH names another host; local files sent there."""
    ssh_options(facts)
    words = _positional(facts)
    if len(words) < 1:
        return
    destination = words[-1] if len(words) > 1 else None
    sources = words[:-1] if len(words) > 1 else words
    remote_dest = destination is not None and _remote(text_of(destination))
    for source in sources:
        text = text_of(source)
        if _remote(text):
            facts.hosts.append(text.split(":", 1)[0].split("@")[-1].replace("rsync", ""))
            facts.caps.add("net")
        else:
            found = facts.path(source, "r")
            if remote_dest:
                facts.sends.extend(found)
            if _given(facts, "remove-source-files"):
                facts.path(source, "D")  # every file it copies is deleted from the source
    if destination is not None:
        text = text_of(destination)
        if remote_dest:
            facts.hosts.append(text.split(":", 1)[0].split("@")[-1])
            facts.caps.update({"net", "send"})
        else:
            facts.path(destination, "w")
            if _given(
                facts,
                "delete",
                "delete-before",
                "delete-after",
                "delete-during",
                "delete-excluded",
                "del",
            ):
                facts.path(destination, "D")
    for shell in _values(facts, "-e", "--rsh"):
        facts.line(shell, f"{facts.program} -e")
    for remote in _values(facts, "-S"):
        facts.line(remote, f"{facts.program} -S")
    for program in _values(facts, "--rsync-path"):
        # the other side runs `PROGRAM --server ...` through a shell (this host's, when the
        # remote is localhost): judged as that command line
        if isinstance(program, str):
            facts.line(f"{program} --server .", "rsync --rsync-path")
        else:
            facts.line(program, "rsync --rsync-path")


# --- git --------------------------------------------------------------------------------

_GIT_COMMAND_KEYS = frozenset(
    "core.pager core.sshcommand core.editor core.fsmonitor core.askpass core.hookspath "
    "sequence.editor diff.external gpg.program gpg.ssh.program credential.helper "
    "uploadpack.packobjectshook core.gitproxy interactive.difffilter "
    "merge.tool diff.tool protocol.ext.allow core.alternaterefscommand".split()
)
_GIT_COMMAND_PATTERNS = re.compile(
    r"^(alias\.|pager\.|filter\..*\.(clean|smudge|process)$|difftool\..*\.cmd$|mergetool\..*\.cmd$|"
    r"merge\..*\.driver$|diff\..*\.(textconv|command)$|credential\..*\.helper$|remote\..*\.(uploadpack|receivepack|vcs)$|"
    r"url\..*\.insteadof$|include\.path$|includeif\.|core\.hookspath$|init\.templatedir$|"
    r"submodule\..*\.update$)"
)


def git_setting(facts: Facts, key: str, value: str | Word, where: str) -> None:
    lowered = key.lower()
    if lowered in _GIT_COMMAND_KEYS or _GIT_COMMAND_PATTERNS.match(lowered):
        text = text_of(value)
        if lowered.startswith("alias.") and not text.startswith("!"):
            return
        if lowered in ("protocol.ext.allow",) and text == "never":
            return
        if (
            isinstance(value, str)
            and lowered
            in ("core.pager", "core.editor", "sequence.editor", "core.sshcommand", "diff.external")
            or (lowered.startswith("alias.") and isinstance(value, str))
        ):
            facts.line(text.lstrip("!"), f"git {key}")
        facts.not_understood(f"{key}={text}"[:60], f"git runs {key} as a command ({where})")


def git(facts: Facts) -> None:
    for value in _values(facts, "-c"):
        text = text_of(value)
        key, _, setting = text.partition("=")
        git_setting(
            facts, key, setting if isinstance(value, str) else Word(UNKNOWN, None, 2), "git -c"
        )
    for value in _values(facts, "--config-env"):
        facts.not_understood(text_of(value), "git configuration from an environment variable")
    for value in _values(facts, "--exec-path"):
        facts.not_understood(text_of(value), "git runs its commands from this directory")
    path = facts.parsed.node.path()
    sub = path[0] if path else None
    words = _positional(facts)
    if sub == "config":
        keys = [w for w in words if not text_of(w).startswith("-")]
        if len(keys) >= 2:
            git_setting(facts, text_of(keys[0]), keys[1], "git config")
        if any(g.spelling in ("--edit", "-e") for g in facts.parsed.options):
            facts.caps.add("interactive")
    elif sub in ("clone", "fetch", "pull", "push", "ls-remote", "submodule", "remote", "archive"):
        for word in words:
            text = text_of(word)
            if text.startswith("ext::"):
                facts.not_understood(text, "git's ext:: transport runs a command")
                facts.line(_git_ext(text[5:]), "git ext::")
            elif "://" in text or re.match(r"^[\w.-]+@[\w.-]+:", text):
                facts.url(word)
        for option in ("--upload-pack", "-u", "--receive-pack", "--exec"):
            for value in _values(facts, option):
                facts.not_understood(
                    f"{option} {text_of(value)}",
                    "git runs this program on the remote side through a shell here",
                )
    if sub in ("remote", "config"):
        git_remotes.note_remote_change(facts, sub, words)
    if sub == "push":
        _git_push(facts, words)
        git_remotes.push_destination(
            facts, words[1:] if words and text_of(words[0]) == "push" else words,
            [text_of(v) for v in _values(facts, "-c")],
        )
    if (
        sub in ("submodule",)
        and len(path) > 1
        and path[1] == "foreach"
        or (sub == "submodule" and words and text_of(words[0]) == "foreach")
    ):
        command = words[1:] if words and text_of(words[0]) == "foreach" else words
        if command and all(isinstance(w, str) for w in command):
            facts.line(" ".join(command), "git submodule foreach")  # type: ignore[arg-type]
    if sub == "rebase":
        for value in _values(facts, "--exec", "-x"):
            facts.line(value, "git rebase --exec")
    if sub == "bisect" and words and text_of(words[0]) == "run":
        facts.argv(words[1:], "git bisect run")
    if sub == "filter-branch":
        facts.not_understood("filter-branch", "git filter-branch runs filters as shell code")
    if sub in ("difftool", "mergetool"):
        for value in _values(facts, "-x", "--extcmd", "-t", "--tool"):
            facts.not_understood(text_of(value), "a diff or merge tool named on the line")
    if sub == "grep":
        for given in facts.parsed.options:
            if given.spelling.startswith(("-O", "--open-files-in-pager")):
                facts.not_understood(given.spelling, "git grep -O runs a pager")
    if sub == "clean" and _given(facts, "f", "force"):
        # deletes the untracked files of the work tree (`git -C /etc clean -fdx`)
        trees = _values(facts, "-C") or ["."]
        base = trees[-1]
        in_home = base == "." and facts.state.cwd == "~"  # the login's own checkout
        if isinstance(base, str) and not in_home:
            facts.path(base.rstrip("/") + "/**/*", "D")
    if sub == "credential":
        facts.caps.add("secret")
    if sub in ("diff", "show") and "--no-index" in [text_of(w) for w in facts.words]:
        # compares two paths outside any repository, and prints them: both are read
        for word in words:
            if text_of(word) != "--":
                facts.path(word, "r")
    if sub in ("show", "cat-file", "archive", "grep", "blame", "log", "diff"):
        for word in words:
            text = text_of(word)
            if ":" in text and not text.startswith(("-", ":")) and "://" not in text:
                path = text.split(":", 1)[1]
                if path:
                    facts.path(path, "r")  # REV:PATH prints PATH as it was in REV


def _git_push(facts: Facts, words: list[str | Word]) -> None:
    """What a push overwrites or deletes on the remote, as targets rules match:
    `force:BRANCH` for a forced update (`-f`, or a `+SRC:DST` refspec), `delete:BRANCH`
    for a deletion (`:DST`, or `--delete`), `?` where the branch is not known. A push
    that names no refspec pushes the current branch: `HEAD`."""
    forced_all = _given(facts, "f", "force", "force-with-lease", "force-if-includes", "mirror")
    deleting = _given(facts, "delete", "d")
    refspecs = words[1:]
    forced = False
    for word in refspecs:
        text = text_of(word)
        known = isinstance(word, str)
        plus = text.startswith("+")
        destination = text.lstrip("+").split(":")[-1]
        branch = _branch(destination) if known else "?"
        facts.targets.append(destination)
        if known and text.startswith(":") or deleting:
            facts.targets.append(f"delete:{branch}")
        elif plus or forced_all:
            facts.targets.append(f"force:{branch}")
        forced = forced or plus
    if forced_all and not refspecs and not _given(facts, "all", "mirror", "tags"):
        facts.targets.append("force:HEAD")
    if forced or forced_all:
        facts.caps.add("delete")
        facts.targets.append("--force")
    if deleting or any(isinstance(w, str) and w.startswith(":") for w in refspecs):
        facts.caps.add("delete")


def _branch(ref: str) -> str:
    """`refs/heads/main` and `main` are one branch; `HEAD` stays itself."""
    return ref.removeprefix("refs/heads/") or "?"


def _git_ext(command: str) -> str:
    """git's ext:: transport: words split on spaces, `% ` a literal space, `%%` a percent."""
    import shlex

    words = re.split(r"(?<!%) ", command)
    return " ".join(shlex.quote(w.replace("% ", " ").replace("%%", "%")) for w in words if w)


# --- archives ------------------------------------------------------------------------------

_TAR_CODE = (
    "--to-command",
    "--use-compress-program",
    "-I",
    "--rsh-command",
    "--info-script",
    "-F",
    "--new-volume-script",
    "--checkpoint-action",
)


def tar(facts: Facts) -> None:
    """tar MODE: c reads files (recursively) and writes the archive; x writes files."""
    words = [text_of(w) for w in facts.words[1:]]
    first = words[0] if words else ""
    mode = set()
    if first and not first.startswith("-"):
        mode = set(first)
    for given in facts.parsed.options:
        for name in given.option.names:
            short = name.lstrip("-")
            if short in ("c", "create"):
                mode.add("c")
            elif short in ("x", "extract", "get"):
                mode.add("x")
            elif short in ("t", "list"):
                mode.add("t")
            elif short in ("r", "append", "u", "update", "A", "catenate", "concatenate"):
                mode.add("r")
            elif short in ("delete",):
                mode.add("r")
    for given in facts.parsed.options:
        if given.spelling in _TAR_CODE or any(n in _TAR_CODE for n in given.option.names):
            value = text_of(given.value) if given.value is not None else ""
            if given.spelling == "--checkpoint-action" and not value.startswith("exec="):
                continue
            if value in ("gzip", "xz", "zstd", "bzip2", "pigz", "lz4", "zstd -T0", "xz -T0"):
                continue
            facts.not_understood(f"{given.spelling}={value}"[:60], "tar runs this command")
            if isinstance(given.value, str):
                facts.line(value.removeprefix("exec="), f"tar {given.spelling}")
    archives = _values(facts, "-f", "--file")
    directory = _values(facts, "-C", "--directory")
    state = facts.state
    saved_cwd = state.cwd
    if directory:
        found = facts.path(directory[0], "d")
        state.cwd = found[0] if found else None
    try:
        files = _positional(facts)
        if first and not first.startswith("-"):
            files = files[1:] if files and text_of(files[0]) == first else files
            # `tar czf ARCHIVE files`: f in the cluster takes the next word
            if "f" in first and files:
                archives = [files[0]]
                files = files[1:]
        facts.recursive = True
        if "c" in mode:
            for word in files:
                facts.path(word, "r")
            facts.caps.add("read")
        if "x" in mode:
            for word in files:
                facts.path(word, "w")
            if state.cwd:
                facts.writes.append(state.cwd.rstrip("/") + "/")  # extracted into
            if _given(facts, "P", "absolute-names"):
                facts.writes.append("/")  # members keep their absolute paths: anywhere
            facts.caps.add("write")
    finally:
        state.cwd = saved_cwd
    for archive in archives:
        if text_of(archive) == "-":
            continue
        if "c" in mode or "r" in mode:
            facts.recursive = False
            facts.path(archive, "w")
        else:
            facts.recursive = False
            facts.path(archive, "r")
    if any(g.spelling == "--remove-files" for g in facts.parsed.options):
        for word in _positional(facts):
            facts.path(word, "D")


# --- network clients ------------------------------------------------------------------------


def curl(facts: Facts) -> None:
    """Data given as @FILE is read and sent; -T sends a file; -o writes; -K reads options."""
    for given in facts.parsed.options:
        names = set(given.option.names)
        value = given.value
        if value is None:
            continue
        text = text_of(value)
        if (
            names
            & {
                "-d",
                "--data",
                "--data-binary",
                "--data-ascii",
                "--data-urlencode",
                "-F",
                "--form",
                "--json",
                "--data-raw",
            }
            and "--data-raw" not in names
        ):
            at = (
                text.find("@")
                if names & {"-F", "--form", "--data-urlencode"}
                else (0 if text.startswith("@") else -1)
            )
            if names & {"-F", "--form"}:
                match = re.search(r"=[@<]([^;]+)", text)
                file = match.group(1) if match else None
            elif at >= 0 and text[at : at + 1] == "@":
                file = text[at + 1 :]
            else:
                file = None
            if file:
                if file == "-":
                    facts.caps.add("send")
                    if facts.feed.kind in ("pipe", "file", "agent"):
                        facts.sends.append("-")
                else:
                    found = facts.path(file if isinstance(value, str) else Word(file, None, 2), "r")
                    facts.sends.extend(found)
                    facts.caps.add("send")
        elif names & {"-T", "--upload-file"}:
            if text == "-":
                facts.sends.append("-")
                facts.caps.add("send")
            else:
                facts.sends.extend(facts.path(value, "r"))
                facts.caps.add("send")
        elif names & {"-K", "--config"}:
            facts.not_understood(f"-K {text}", "curl reads its options from a file")
        elif names & {"-O", "--remote-name"}:
            pass
        if names & {"-d", "--data", "--data-urlencode", "--data-raw", "--data-binary"}:
            handlers_api.query_sql(facts, value)
    methods = _values(facts, "-X", "--request")
    handlers_api.request(facts, text_of(methods[-1]) if methods else None, _positional(facts))
    if any(
        g.spelling in ("-O", "--remote-name", "--remote-name-all") for g in facts.parsed.options
    ) or (any(g.option.names and "-O" in g.option.names for g in facts.parsed.options)):
        for word in _positional(facts):
            name = text_of(word).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            if name:
                facts.path(name, "w")
    _downloaded(facts)


def _downloaded(facts: Facts) -> None:
    """Files a network client wrote are remembered: running one later is not understood."""
    for path in facts.writes:
        facts.state.downloaded.add(path)
        facts.state.files.pop(path, None)


def wget(facts: Facts) -> None:
    methods = _values(facts, "--method")
    handlers_api.request(facts, text_of(methods[-1]) if methods else None, _positional(facts))
    for value in _values(facts, "--post-file", "--body-file"):
        facts.sends.extend(facts.path(value, "r"))
        facts.caps.add("send")
    for value in _values(facts, "-e", "--execute"):
        text = text_of(value)
        if not re.match(r"^\s*(robots|use_proxy|https?_proxy|no_proxy|timeout|tries)\s*=", text):
            facts.not_understood(f"-e {text}", "a wgetrc command the bastion does not know")
    if not _values(facts, "-O", "--output-document"):
        prefix = _values(facts, "-P", "--directory-prefix")
        for word in _positional(facts):
            name = text_of(word).split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or "index.html"
            if "://" not in name:
                base = text_of(prefix[0]).rstrip("/") + "/" if prefix else ""
                facts.path(base + name, "w")
    _downloaded(facts)


_SOCAT_EXEC = re.compile(r"^(exec|system)[:,]", re.I)
_SOCAT_NET = re.compile(
    r"^(tcp|tcp4|tcp6|udp|udp4|udp6|openssl|ssl|sctp|socks4a?|proxy|tcp-connect|udp-connect|"
    r"tcp-listen|tcp4-listen|tcp6-listen|udp-listen|openssl-listen|udp-recvfrom|ip|ip4|ip6|"
    r"dccp|vsock)[-:]",
    re.I,
)
_SOCAT_FILE = re.compile(
    r"^(file|open|create|gopen|pipe|unix|unix-connect|unix-listen|abstract)[:,]", re.I
)


def socat(facts: Facts) -> None:
    for word in _positional(facts):
        text = text_of(word)
        if not isinstance(word, str):
            facts.not_understood(text, "a socat address that is not known")
            continue
        if _SOCAT_EXEC.match(text):
            facts.caps.add("exec")
            command = text.split(":", 1)[1].split(",", 1)[0] if ":" in text else ""
            facts.line(command, "socat exec")
        elif _SOCAT_NET.match(text):
            facts.caps.add("net")
            parts = text.split(":")
            facts.hosts.append(parts[1] if len(parts) > 1 else text)
        elif _SOCAT_FILE.match(text):
            path = text.split(":", 1)[1].split(",", 1)[0]
            facts.path(path, "p")
        elif text.lower() in ("-", "stdio", "stdin", "stdout", "readline"):
            pass
        else:
            facts.not_understood(text, "a socat address the bastion does not know")


def netcat(facts: Facts) -> None:
    words = _positional(facts)
    for value in _values(facts, "-e", "-c", "--exec", "--sh-exec", "--lua-exec"):
        facts.caps.add("exec")
        facts.line(value, f"{facts.program} -e")
    if words:
        facts.host(words[0])
    if _given(facts, "l", "listen"):
        facts.caps.add("net")
    if facts.feed.kind in ("pipe", "file", "agent") and not _given(facts, "z"):
        facts.caps.add("send")


# --- containers and clusters -------------------------------------------------------------


def docker(facts: Facts) -> None:
    path = facts.parsed.node.path()
    sub = path[-1] if path else None
    words = _positional(facts)
    if sub in ("run", "create"):
        for value in _values(facts, "-v", "--volume", "--mount"):
            text = text_of(value)
            source = text.split(":", 1)[0] if "--mount" not in text else ""
            if "source=" in text or "src=" in text:
                match = re.search(r"(?:source|src)=([^,]+)", text)
                source = match.group(1) if match else ""
            if source.startswith(("/", "~", ".")):
                facts.path(source, "p")
                if source in (
                    "/",
                    "/etc",
                    "/root",
                    "/var/run/docker.sock",
                    "/run/docker.sock",
                    "/proc",
                    "/sys",
                    "/dev",
                    "/boot",
                    "/usr",
                    "/var",
                    "/home",
                ) or source.startswith("/etc/"):
                    facts.caps.add("privilege")
        for given in facts.parsed.options:
            value = text_of(given.value) if given.value is not None else ""
            if (
                given.spelling == "--privileged"
                or (
                    given.spelling in ("--pid", "--ipc", "--userns", "--uts", "--network", "--net")
                    and value == "host"
                    and given.spelling in ("--pid", "--ipc", "--userns", "--uts")
                )
                or (
                    given.spelling == "--cap-add"
                    and value.upper()
                    in ("ALL", "SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH")
                )
                or (
                    given.spelling == "--security-opt"
                    and ("unconfined" in value or "apparmor=unconfined" in value)
                )
                or given.spelling == "--device"
            ):
                facts.caps.add("privilege")
        if words:
            facts.targets.append(text_of(words[0]))
            command = words[1:]
            if command:
                facts.argv(command, f"{facts.program} {sub} {text_of(words[0])}")
            elif _given(facts, "i", "interactive") or _given(facts, "t", "tty"):
                facts.caps.add("interactive")
    elif sub == "exec":
        if len(words) >= 2:
            facts.argv(words[1:], f"{facts.program} exec {text_of(words[0])}")
    elif sub == "cp":
        _container_copy(facts, words)
    elif sub in ("rm", "kill", "stop", "restart", "pause") and any(
        not isinstance(w, str) for w in words
    ):
        # `docker kill $(docker ps -q)`: the containers are whatever the list holds, all of them
        facts.not_understood(
            f"{facts.program} {sub}", "containers named by a command's output (possibly all)"
        )
    elif sub in ("build", "buildx") or path[:2] == ("buildx", "build"):
        if words:
            facts.path(words[-1], "d") if "://" not in text_of(words[-1]) else facts.url(words[-1])
    for given in facts.parsed.options:
        if given.spelling in ("-H", "--host") and given.value is not None:
            facts.host(given.value)


def _container_copy(facts: Facts, words: list[str | Word]) -> None:
    """docker/kubectl cp SRC DST: `CONTAINER:PATH` is a path in the container. Copied out,
    it is read there: its path is what credential rules name (`web:/etc/shadow`)."""
    for word in words[:-1]:
        inside = _in_container(text_of(word))
        if inside is None:
            facts.path(word, "r")
        elif inside and isinstance(word, str):
            facts.path(inside, "r")
    if words and _in_container(text_of(words[-1])) is None:
        facts.path(words[-1], "w")


def _in_container(text: str) -> str | None:
    """The path of `[NAMESPACE/]POD:PATH` or `CONTAINER:PATH`; None for a local path."""
    head, colon, inside = text.partition(":")
    if not colon or head.startswith(("/", ".", "~")) or head.count("/") > 1:
        return None
    return inside


# kubectl resource kinds whose deletion is cluster-wide or takes workloads down
_KUBE_WIDE_KINDS = frozenset(
    "ns namespace namespaces node nodes pv persistentvolume persistentvolumes crd "
    "customresourcedefinition customresourcedefinitions clusterrole clusterrolebinding pvc "
    "persistentvolumeclaim persistentvolumeclaims deployment deployments statefulset "
    "statefulsets daemonset daemonsets service services svc deploy sts ds".split()
)
# pod fields that give a container the host's processes, network, files or privileges
_KUBE_HOST_ACCESS = re.compile(
    r'"?(hostPID|hostNetwork|hostIPC|hostPath|privileged|allowPrivilegeEscalation)"?\s*:\s*'
    r'(true|\{|"/)',
    re.I,
)


def _kube_kinds(resource: str) -> list[str]:
    """The kinds a resource word names: `ns,deploy` two, `secrets.v1.` and
    `secret/db` one (`secret`): the group and version after the first dot are dropped."""
    kinds = resource.split("/", 1)[0]
    return [kind.split(".", 1)[0] for kind in kinds.split(",")]


def kubectl(facts: Facts) -> None:
    path = facts.parsed.node.path()
    sub = path[0] if path else None
    words = _positional(facts)
    rest = facts.parsed.rest
    if sub in ("exec", "debug", "run", "attach") and "--" in facts.words:
        index = [text_of(w) for w in facts.words].index("--")
        command = facts.words[index + 1 :]
        if command:
            facts.argv(command, f"kubectl {sub}")
        facts.parsed.rest = None
    elif sub in ("exec", "attach", "debug") or (
        sub == "run" and (_given(facts, "i", "stdin") or _given(facts, "t", "tty"))
    ):
        facts.not_understood(f"kubectl {sub}", "an interactive session in the cluster")
        facts.runs_input = True
    del rest
    resources = [text_of(w).lower() for w in words]
    facts.targets.extend(resources)
    kinds = {kind for r in resources for kind in _kube_kinds(r)}
    output = " ".join(text_of(v) for v in _values(facts, "-o", "--output")).lower()
    if _values(facts, "--template"):
        output += " template"
    secret = bool(kinds & {"secret", "secrets"})
    if (
        sub in ("get",)
        and secret
        and re.search(r"yaml|json|jsonpath|go-template|template|custom-columns", output)
    ):
        facts.caps.add("secret")
    if sub == "get" and _given(facts, "raw") and any("/secrets" in r for r in resources):
        facts.caps.add("secret")  # `get --raw /api/v1/.../secrets`: the API's own answer
    if sub == "cp":
        _container_copy(facts, words)
    overrides = _values(facts, "--overrides")
    if sub == "run" and any(_KUBE_HOST_ACCESS.search(text_of(v)) for v in overrides):
        facts.caps.add("privilege")
    if sub == "create" and (kinds | set(path[1:2])) & {"clusterrolebinding", "rolebinding"}:
        facts.caps.add("privilege")  # binds a role (cluster-admin...) to a user or account
    if sub in ("edit",) and secret:
        facts.caps.add("secret")
    handlers_api.kube_change(facts, sub, kinds, _values(facts, "-p", "--patch"))
    if sub == "config" and path[1:2] == ("view",) and _given(facts, "raw", "flatten"):
        facts.caps.add("secret")
    if sub in ("delete",):
        if _given(facts, "all", "A", "all-namespaces") or kinds & _KUBE_WIDE_KINDS:
            facts.caps.add("infra")
        if (
            _values(facts, "-l", "--selector")
            or _values(facts, "-f", "--filename")
            or _values(facts, "-k", "--kustomize")
        ):
            facts.caps.add("infra")  # whatever the selector or the files name
    for value in _values(facts, "-f", "--filename"):
        text = text_of(value)
        if text == "-":
            continue
        if "://" in text:
            facts.url(value)
        else:
            facts.path(value, "r")


# --- schedulers ------------------------------------------------------------------------------


def crontab(facts: Facts) -> None:
    words = _positional(facts)
    if _given(facts, "l", "list"):
        return
    facts.caps.add("schedule")
    if _given(facts, "r", "remove"):
        facts.caps.add("delete")
        return
    if _given(facts, "e", "edit"):
        facts.caps.add("interactive")
        return
    source = text_of(words[0]) if words else "-"
    if source == "-":
        text = facts.feed.text if facts.feed.kind in ("text", "pipe") else None
        if text is None:
            facts.not_understood("crontab", "installs jobs read from its input")
            return
        _cron_lines(facts, text)
    else:
        carried = (
            facts.state.files.get(facts.path(words[0], "r")[0])
            if facts.path(words[0], "r")
            else None
        )
        if carried is not None and carried.content is not None:
            _cron_lines(facts, carried.content)
        else:
            facts.not_understood(source, "installs jobs from a file the bastion cannot read")


def _cron_lines(facts: Facts, text: str) -> None:
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or re.match(r"^[A-Z_]+=", line):
            continue
        fields = line.split(None, 5 if not line.startswith("@") else 1)
        command = fields[-1] if len(fields) >= (2 if line.startswith("@") else 6) else None
        if command is None:
            facts.not_understood(line[:40], "not a crontab line")
            continue
        facts.line(command.replace("%", " "), "crontab")


def at(facts: Facts) -> None:
    facts.caps.add("schedule")
    if _given(facts, "l", "list", "d", "r", "c"):
        return
    files = _values(facts, "-f", "--file")
    if files:
        facts.not_understood(f"-f {text_of(files[0])}", "schedules commands from a file")
        return
    text = facts.feed.text if facts.feed.kind in ("text", "pipe") else None
    if text is None:
        facts.not_understood(facts.program, "schedules commands read from its input")
        facts.runs_input = True
        return
    facts.line(text, facts.program, feed=Feed("none"))


def make(facts: Facts) -> None:
    for word in _positional(facts):
        text = text_of(word)
        name, eq, value = text.partition("=")
        if eq and name.strip() in ("SHELL", ".SHELLFLAGS", "MAKESHELL"):
            facts.not_understood(text, "make runs its recipes with this shell")
    for value in _values(facts, "-f", "--file", "--makefile"):
        if text_of(value) in ("-", "/dev/stdin", "/dev/fd/0", "/proc/self/fd/0"):
            facts.not_understood(f"-f {text_of(value)}", "a makefile read from the input")
            continue
        found = facts.path(value, "x")
        if found and found[0] in facts.state.written:
            facts.not_understood(text_of(value), "a makefile this session wrote")
    for value in _values(facts, "--eval"):
        facts.not_understood(f"--eval {text_of(value)}", "make code given on the line")
    if not _values(facts, "-f", "--file", "--makefile"):
        for directory in _values(facts, "-C", "--directory"):
            # `make -C DIR` runs DIR's Makefile: a script, judged by where it is
            if isinstance(directory, str):
                facts.path(directory.rstrip("/") + "/Makefile", "x")


def ansible(facts: Facts) -> None:
    module = " ".join(text_of(v) for v in _values(facts, "-m", "--module-name"))
    args = _values(facts, "-a", "--args")
    if module in (
        "shell",
        "command",
        "raw",
        "ansible.builtin.shell",
        "ansible.builtin.command",
        "ansible.builtin.raw",
    ):
        for value in args:
            facts.line(value, f"ansible -m {module}")
    elif module in ("script", "ansible.builtin.script"):
        for value in args:
            facts.path(text_of(value).split()[0] if text_of(value) else value, "x")
    elif module and module not in (
        "ping",
        "setup",
        "ansible.builtin.ping",
        "ansible.builtin.setup",
        "service",
        "systemd",
        "apt",
        "yum",
        "dnf",
        "copy",
        "file",
        "shell",
        "user",
        "package",
        "stat",
        "debug",
        "gather_facts",
        "ansible.builtin.service",
        "ansible.builtin.systemd",
        "ansible.builtin.apt",
        "ansible.builtin.copy",
        "ansible.builtin.file",
        "ansible.builtin.stat",
        "ansible.builtin.debug",
    ):
        facts.not_understood(f"-m {module}", "an ansible module the bastion does not know")
    for value in args:
        handlers_api.ansible_module_args(facts, module, value)
    if module in ("service", "systemd", "ansible.builtin.service", "ansible.builtin.systemd"):
        facts.caps.add("service")
    if module in ("apt", "yum", "dnf", "package", "ansible.builtin.apt"):
        facts.caps.add("package")


def systemctl(facts: Facts) -> None:
    facts.units.extend(text_of(w) for w, kind in facts.parsed.positionals if kind != "U")


def openssl(facts: Facts) -> None:
    for value in _values(facts, "-connect"):
        facts.host(
            Word(text_of(value).rsplit(":", 1)[0], None, 0)
            if not isinstance(value, str)
            else value.rsplit(":", 1)[0]
        )
    for value in _values(facts, "-engine"):
        facts.not_understood(f"-engine {text_of(value)}", "an OpenSSL engine loads code")
    for value in _values(facts, "-provider-path"):
        facts.not_understood(f"-provider-path {text_of(value)}", "OpenSSL loads providers from it")
    words = _positional(facts)
    if words and text_of(words[0]) == "engine" and len(words) > 1:
        # `openssl engine ID|PATH` loads the engine: a shared library's code runs
        facts.not_understood(f"engine {text_of(words[1])}", "an OpenSSL engine loads code")


# --- terminal multiplexers -----------------------------------------------------------------

# tmux commands that run a shell command (their last words), with the options of each that
# take a value; one word is a shell line (`sh -c`), several a command and its arguments.
_TMUX_RUNS = {
    **dict.fromkeys(("new-session", "new"), "cefFnstxy"),
    **dict.fromkeys(("new-window", "neww"), "cenFt"),
    **dict.fromkeys(("split-window", "splitw"), "celtF"),
    **dict.fromkeys(("respawn-pane", "respawnp", "respawn-window", "respawnw"), "cet"),
    **dict.fromkeys(("display-popup", "popup"), "bcdehsStTwxy"),
    **dict.fromkeys(("run-shell", "run"), "dt"),
    **dict.fromkeys(("pipe-pane", "pipep"), "t"),
}
# tmux commands that type into a pane, run tmux commands from elsewhere, or bind keys to
# commands: what runs is not on the line.
_TMUX_OPAQUE = frozenset(
    "send-keys send paste-buffer pasteb if-shell if source-file source command-prompt "
    "confirm-before confirm bind-key bind set-hook".split()
)


def tmux(facts: Facts) -> None:
    words = list(facts.words[1:])
    i = 0
    while i < len(words) and text_of(words[i]).startswith("-") and text_of(words[i]) != "--":
        flag = text_of(words[i])
        if flag in ("-L", "-S", "-T"):
            i += 1
        elif flag == "-f":
            if i + 1 < len(words) and text_of(words[i + 1]) != "/dev/null":
                facts.not_understood("-f", "a tmux configuration file runs tmux commands")
            i += 1
        elif flag == "-c" and i + 1 < len(words):
            facts.line(words[i + 1], "tmux -c")  # runs it like `sh -c`
            i += 1
        i += 1
    command: list[str | Word] = []
    for word in [*words[i:], ";"]:
        if text_of(word) != ";":
            command.append(word)
            continue
        if command:
            _tmux_command(facts, command)
        command = []


def _tmux_command(facts: Facts, words: list[str | Word]) -> None:
    name = text_of(words[0])
    if name in _TMUX_OPAQUE or (
        name.startswith("set") and any("default-" in text_of(w) for w in words)
    ):
        facts.not_understood(f"tmux {name}", "tmux runs or types commands the line does not show")
        return
    takes_value = _TMUX_RUNS.get(name)
    if takes_value is None:
        return
    i = 1
    while i < len(words) and text_of(words[i]).startswith("-") and len(text_of(words[i])) > 1:
        flag = text_of(words[i])
        if flag == "--":
            i += 1
            break
        for at, letter in enumerate(flag[1:], 1):
            if letter in takes_value:
                if at == len(flag) - 1:
                    i += 1  # the value is the next word
                break
        i += 1
    rest = words[i:]
    if len(rest) == 1:
        facts.line(rest[0], f"tmux {name}")
    elif rest:
        facts.argv(rest, f"tmux {name}")


_SCREEN_VALUE = frozenset("ceEhpsStTX")  # screen options that take a value


def screen(facts: Facts) -> None:
    """screen [-dmS NAME ...] CMD ARGS: CMD runs in the new session."""
    words = list(facts.words[1:])
    i = 0
    attach = False  # -r/-x/-R: the words after the options name a session, not a command
    while i < len(words):
        flag = text_of(words[i])
        if not flag.startswith("-") or flag == "-":
            break
        if flag in ("-ls", "-list", "-wipe", "-Logfile", "-fn", "-fa", "-fA"):
            attach = attach or flag != "-Logfile"
            i += 2 if flag == "-Logfile" else 1
            continue
        for at, letter in enumerate(flag[1:], 1):
            attach = attach or letter in "rRx"
            if letter in _SCREEN_VALUE:
                value = flag[at + 1 :] or (text_of(words[i + 1]) if i + 1 < len(words) else "")
                if letter == "X":
                    facts.not_understood("-X", "screen runs a command in a running session")
                elif letter in "cs" and value != "/dev/null":
                    facts.not_understood(f"-{letter}", "screen runs this file or shell")
                if at == len(flag) - 1:
                    i += 1
                break
        i += 1
    if i < len(words) and not attach:
        facts.argv(words[i:], "screen")


# --- package managers -----------------------------------------------------------------------

_LOCAL_PACKAGE = re.compile(r"^(?:file:)?(?:/|\./|\.\./|~|\.$|\.\.$)|\.(?:whl|tar\.gz|tgz|zip)$")


def package_paths(facts: Facts) -> None:
    """pip/npm install PATH: a local package's build or install scripts run, like a script
    in that place (`pip install /tmp/x` runs /tmp/x/setup.py)."""
    editable = _values(facts, "-e", "--editable")
    for word in [*editable, *_positional(facts)]:
        text = text_of(word)
        if "://" in text or text.startswith("git+"):
            continue
        if word in editable or _LOCAL_PACKAGE.search(text):
            facts.path(text.removeprefix("file:") if isinstance(word, str) else word, "x")


def gh_config(facts: Facts) -> None:
    """`gh config get KEY`: older gh keeps the account's token as a key (`oauth_token`)."""
    if any("token" in text_of(w).lower() for w in _positional(facts)):
        facts.caps.add("secret")


_SECRET_NAME = re.compile(
    r"SECRET|TOKEN|PASSW|PASSPHRASE|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_KEY", re.I
)


def printenv(facts: Facts) -> None:
    """`printenv NAME`: a variable whose name says it holds a secret prints that secret."""
    for word in _positional(facts):
        if _SECRET_NAME.search(text_of(word)):
            facts.targets.append("secret-variable")


def compress(facts: Facts) -> None:
    """gzip/bzip2/xz FILE replace FILE by FILE.gz (or the other way): the original is
    deleted, unless the output goes to stdout or is kept; `gzip -r /etc` replaces every
    file under /etc."""
    if _given(facts, "c", "stdout", "to-stdout", "k", "keep", "l", "list", "t", "test"):
        return
    for word in _positional(facts):
        facts.path(word, "D")


def cloud_copy(facts: Facts) -> None:
    """aws s3 cp|sync|mv, gsutil cp|rsync|mv: local files sent to a bucket, or written
    from one."""
    path = facts.parsed.node.path()
    for given in facts.parsed.options:
        value = text_of(given.value) if given.value is not None else ""
        if given.spelling in (
            "--body",
            "--zip-file",
            "--template-body",
            "--policy-document",
            "--user-data",
            "--cli-input-json",
            "--cli-input-yaml",
            "--key-material",
            "--public-key-material",
            "--document",
            "--source-file",
            "--file",
        ) or value.startswith(("file://", "fileb://")):
            local = value.split("://", 1)[1] if "://" in value else value
            if local and not value.startswith(("s3://", "http")):
                found = facts.path(local, "r")
                if given.spelling in ("--body", "--source-file", "--file", "--zip-file") or (
                    "send" in facts.caps  # sns publish, sqs send-message: the file is the message
                ):
                    facts.sends.extend(found)
                    facts.caps.add("send")
    if path[-1:] not in (("cp",), ("sync",), ("mv",), ("rsync",)):
        return
    words = _positional(facts)
    if len(words) < 2:
        return
    source, destination = words[0], words[-1]
    remote = ("s3://", "gs://", "az://", "https://", "http://")
    source_remote = text_of(source).startswith(remote)
    destination_remote = text_of(destination).startswith(remote)
    if not source_remote:
        facts.recursive = facts.recursive or path[-1] in ("sync", "rsync")
        found = facts.path(source, "r")
        if destination_remote:
            facts.sends.extend(found)
            facts.caps.add("send")
    if not destination_remote:
        facts.path(destination, "w")
    if path[-1] == "mv" and not source_remote:
        facts.path(source, "D")


HANDLERS: dict[str, Callable[[Facts], None]] = {
    "cloud-copy": cloud_copy,
    "ssh": ssh,
    "copy-remote": copy_remote,
    "git": git,
    "tar": tar,
    "curl": curl,
    "wget": wget,
    "socat": socat,
    "netcat": netcat,
    "docker": docker,
    "kubectl": kubectl,
    "crontab": crontab,
    "at": at,
    "make": make,
    "ansible": ansible,
    "systemctl": systemctl,
    "openssl": openssl,
    "tmux": tmux,
    "screen": screen,
    "package-paths": package_paths,
    "gh-config": gh_config,
    "printenv": printenv,
    "compress": compress,
}
