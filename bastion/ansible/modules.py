"""Each Ansible module invocation as the shell command lines with the same reach.

The bastion decides a module the way it decides SFTP (bastion/relay/sftp_guard.py):
by the commands that would have the same effect, so one rule set covers a
shell, an upload and a playbook. `command`/`shell` arguments are shell lines;
file modules are `tee -- DEST` (a write), `rm -rf -- PATH` (a delete),
`chmod`/`chown`; accounts, cron, services and packages are `useradd`,
`crontab`, `systemctl`, `apt-get`... Reads are `cat -- PATH` (slurp) or
`stat -- PATH`.

    >>> from bastion.ansible.ansiballz import AnsibleModule
    >>> module_commands(AnsibleModule("file", {"path": "/srv/old", "state": "absent"}, {}, "", "")).commands
    ('rm -rf -- /srv/old',)

A module this table does not know, or an argument of a known module that it
does not know, raises NotUnderstood (unless Ansible told the module to drop
unknown arguments, as its own `stat` calls do). Arguments that only make a
module skip work or choose how it reports (`creates`, `backup`, `force`...)
are accepted and ignored.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bastion.ansible.ansiballz import KNOWN_SHELLS, AnsibleModule

MAX_COMMANDS = 64


class NotUnderstood(Exception):
    """The module or one of its arguments has no known equivalent; the message says which."""


@dataclass(frozen=True)
class ModuleEffect:
    """What to decide for one module run, and what it does to files the bastion carried."""

    commands: tuple[str, ...]  # shell lines, each decided like an exec
    copies: tuple[tuple[str, str], ...] = ()  # (src, dest): dest holds src's bytes on success


def q(word: str) -> str:
    return shlex.quote(word)


class Args:
    """A module's arguments, read one by one; what is left unread at the end is refused."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self._left = dict(module.args)

    def take(self, name: str, *aliases: str) -> Any:
        value = None
        for key in (name, *aliases):
            if key in self._left:
                found = self._left.pop(key)
                if value is None:
                    value = found
        return value

    def text(self, name: str, *aliases: str, required: bool = False) -> str | None:
        value = self.take(name, *aliases)
        if value is None:
            if required:
                raise NotUnderstood(f"{self.module.name}: {name} is missing")
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise NotUnderstood(f"{self.module.name}: {name} is not text")
        return str(value)

    def words(self, name: str, *aliases: str) -> list[str]:
        value = self.take(name, *aliases)
        if value is None:
            return []
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(i, (str, int)) for i in items):
            raise NotUnderstood(f"{self.module.name}: {name} is not a list of names")
        return [str(i).strip() for i in items if str(i).strip()]

    def flag(self, name: str, *aliases: str) -> bool:
        value = self.take(name, *aliases)
        if isinstance(value, str):
            return value.lower() in ("yes", "true", "on", "1", "y")
        return bool(value)

    def ignore(self, *names: str) -> None:
        for name in names:
            self._left.pop(name, None)

    def done(self) -> None:
        if self._left and not self.module.ignores_unknown_args:
            raise NotUnderstood(f"{self.module.name}: arguments {sorted(self._left)} not known")


_FILE_ATTRS = ("mode", "owner", "group", "attributes", "seuser", "serole", "setype", "selevel")


def _attributes(args: Args, path: str, *, recurse: bool = False) -> list[str]:
    """chmod/chown/chgrp/chattr/chcon for the common file arguments."""
    r = "-R " if recurse else ""
    out = []
    mode = args.text("mode")
    if mode is not None:
        out.append(f"chmod {r}{q(mode)} -- {q(path)}")
    owner = args.text("owner")
    if owner is not None:
        out.append(f"chown {r}{q(owner)} -- {q(path)}")
    group = args.text("group")
    if group is not None:
        out.append(f"chgrp {r}{q(group)} -- {q(path)}")
    attributes = args.text("attributes", "attr")
    if attributes is not None:
        out.append(f"chattr {q(attributes)} -- {q(path)}")
    for part, option in (("seuser", "-u"), ("serole", "-r"), ("setype", "-t"), ("selevel", "-l")):
        value = args.text(part)
        if value is not None:
            out.append(f"chcon {option} {q(value)} -- {q(path)}")
    args.ignore("unsafe_writes")
    return out


def _validate(args: Args, path: str) -> list[str]:
    """`validate: visudo -cf %s` runs a command on the new file."""
    validate = args.text("validate")
    if validate is None:
        return []
    if "%s" not in validate:
        raise NotUnderstood(f"{args.module.name}: validate without %s")
    return [validate.replace("%s", q(path))]


# --- the modules ----------------------------------------------------------------------


def _ping(args: Args) -> ModuleEffect:
    args.ignore("data")
    return ModuleEffect(("true",))


def _setup(args: Args) -> ModuleEffect:
    args.ignore("gather_subset", "gather_timeout", "filter")
    commands = ["cat -- /etc/os-release"]
    fact_path = args.text("fact_path")
    if fact_path is not None and fact_path != "/etc/ansible/facts.d":
        commands.append(f"run-parts -- {q(fact_path)}")  # executable *.fact files there run
    return ModuleEffect(tuple(commands))


def _stat(args: Args) -> ModuleEffect:
    path = args.text("path", "dest", "name", required=True)
    args.ignore(
        "follow", "get_checksum", "checksum_algorithm", "checksum", "checksum_algo",
        "get_mime", "mime", "mime_type", "mime-type", "get_attributes", "attr",
        "attributes", "get_selinux_context", "get_size",
    )  # fmt: skip
    assert path is not None
    return ModuleEffect((f"stat -- {q(path)}",))


def _slurp(args: Args) -> ModuleEffect:
    path = args.text("src", "path", required=True)
    assert path is not None
    return ModuleEffect((f"cat -- {q(path)}",))


def _command(args: Args, *, shell: bool = False) -> ModuleEffect:
    uses_shell = args.flag("_uses_shell") or shell
    raw = args.text("_raw_params", "cmd")
    argv = args.take("argv")
    chdir = args.text("chdir")
    executable = args.text("executable")
    stdin = args.text("stdin")
    add_newline = args.take("stdin_add_newline")
    expand = args.take("expand_argument_vars")
    args.ignore("creates", "removes", "strip_empty_ends", "warn")
    if argv is not None:
        if raw is not None or not isinstance(argv, list) or not argv:
            raise NotUnderstood("command: argv must be a list given alone")
        words = [str(a) for a in argv]
        if expand is not False and any(c in w for w in words for c in "$~"):
            raise NotUnderstood("command: argv words with variables to expand")
        line = shlex.join(words)
    elif raw is not None:
        line = raw
    else:
        raise NotUnderstood("command: no command given")
    shell_path = executable or args.module.internal.get("_ansible_shell_executable", "/bin/sh")
    if uses_shell and shell_path not in KNOWN_SHELLS:
        raise NotUnderstood(f"shell: executable {shell_path!r} is not a known shell")
    if executable is not None and not uses_shell:
        raise NotUnderstood("command: executable without a shell")
    if chdir is not None:
        line = f"cd -- {q(chdir)} && {line}"
    if stdin is not None:
        data = stdin + ("\n" if add_newline is not False else "")
        line = f"printf %s {q(data)} | {{ {line}\n}}"
    return ModuleEffect((line,))


def _raw(args: Args) -> ModuleEffect:
    line = args.text("_raw_params", required=True)
    args.ignore("executable")
    assert line is not None
    return ModuleEffect((line,))


def _copy(args: Args) -> ModuleEffect:
    dest = args.text("dest", required=True)
    src = args.text("src")
    remote_src = args.flag("remote_src")
    base = args.text("_original_basename")
    assert dest is not None
    args.ignore(
        "backup", "force", "follow", "local_follow", "checksum", "directory_mode", "decrypt",
        "content",
    )  # fmt: skip
    if src is None:
        raise NotUnderstood("copy: no src (the content was not uploaded)")
    name = base or src.rstrip("/").rsplit("/", 1)[-1]
    if dest.endswith("/"):
        targets = [dest + name]
    else:
        targets = [dest, f"{dest}/{name}"]  # dest may be an existing directory
    commands = []
    if remote_src:
        commands.append(f"cat -- {q(src)}")
    for path in targets:
        commands.append(f"tee -- {q(path)}")
    commands += _validate(args, src)
    commands += _attributes(args, targets[0])
    return ModuleEffect(tuple(commands), tuple((src, path) for path in targets))


def _file(args: Args) -> ModuleEffect:
    path = args.text("path", "dest", "name", required=True)
    state = args.text("state") or "file"
    src = args.text("src")
    recurse = args.flag("recurse")
    args.ignore(
        "force", "follow", "modification_time", "modification_time_format", "access_time",
        "access_time_format", "_diff_peek", "_original_basename",
    )  # fmt: skip
    assert path is not None
    p = q(path)
    if state == "absent":
        commands = [f"rm -rf -- {p}"]
    elif state == "directory":
        commands = [f"mkdir -p -- {p}"]
    elif state == "touch":
        commands = [f"touch -- {p}"]
    elif state in ("link", "hard"):
        if src is None:
            raise NotUnderstood(f"file: state={state} without src")
        commands = [f"ln {'-sfn' if state == 'link' else '-f'} -- {q(src)} {p}"]
    elif state == "file":
        commands = [f"stat -- {p}"]
    else:
        raise NotUnderstood(f"file: state {state!r}")
    commands += _attributes(args, path, recurse=recurse)
    return ModuleEffect(tuple(commands))


def _edit_in_place(args: Args) -> ModuleEffect:
    """lineinfile, blockinfile, replace: the file is rewritten in place."""
    path = args.text("path", "dest", "destfile", "name", required=True)
    assert path is not None
    args.ignore(
        "regexp", "regex", "search_string", "state", "line", "value", "backrefs", "insertafter",
        "insertbefore", "create", "backup", "firstmatch", "block", "content", "marker",
        "marker_begin", "marker_end", "append_newline", "prepend_newline", "replace", "after",
        "before", "encoding", "others", "follow",
    )  # fmt: skip
    commands = [f"tee -a -- {q(path)}", *_validate(args, path), *_attributes(args, path)]
    return ModuleEffect(tuple(commands))


def _unarchive(args: Args) -> ModuleEffect:
    src = args.text("src", required=True)
    dest = args.text("dest", required=True)
    assert src is not None and dest is not None
    if args.take("extra_opts"):
        raise NotUnderstood("unarchive: extra_opts reach tar and unzip unchecked")
    args.ignore(
        "remote_src", "copy", "creates", "list_files", "keep_newer", "exclude", "include",
        "io_buffer_size", "validate_certs", "decrypt",
    )  # fmt: skip
    commands = []
    if "://" in src:
        commands.append(f"curl -fsSL -o {q(dest + '/.download')} -- {q(src)}")
        src = dest + "/.download"
    else:
        commands.append(f"cat -- {q(src)}")
    commands += [f"tar -x -f {q(src)} -C {q(dest)}", f"tee -- {q(dest.rstrip('/') + '/*')}"]
    commands += _attributes(args, dest, recurse=True)
    return ModuleEffect(tuple(commands))


def _user(args: Args) -> ModuleEffect:
    name = args.text("name", "user", required=True)
    assert name is not None
    state = args.text("state") or "present"
    if state == "absent":
        remove = "-r " if args.flag("remove") else ""
        args.ignore("force")
        return ModuleEffect((f"userdel {remove}{q(name)}",))
    options = []
    for key, option in (
        ("uid", "-u"), ("group", "-g"), ("shell", "-s"), ("home", "-d"), ("comment", "-c"),
        ("expires", "-e"), ("umask", "-K"),
    ):  # fmt: skip
        value = args.text(key)
        if value is not None:
            options.append(f"{option} {q(value)}")
    groups = args.words("groups")
    if groups:
        options.append(f"-G {q(','.join(groups))}")
    if args.text("password") is not None:
        options.append("-p '********'")
    commands = [f"useradd {' '.join(options + [q(name)])}".replace("  ", " ")]
    if groups and args.flag("append"):
        commands.append(f"usermod -aG {q(','.join(groups))} {q(name)}")
    if args.flag("generate_ssh_key"):
        key_file = args.text("ssh_key_file") or ".ssh/id_rsa"
        commands.append(f"ssh-keygen -f {q(key_file)}")
    args.ignore(
        "create_home", "createhome", "move_home", "system", "non_unique", "update_password",
        "ssh_key_bits", "ssh_key_type", "ssh_key_comment", "ssh_key_passphrase", "force",
        "remove", "local", "password_lock", "hidden", "seuser", "profile", "authorization",
        "role", "login_class", "password_expire_max", "password_expire_min",
        "password_expire_warn", "password_expire_account_disable", "uid_min", "uid_max",
    )  # fmt: skip
    return ModuleEffect(tuple(commands))


def _group(args: Args) -> ModuleEffect:
    name = args.text("name", required=True)
    assert name is not None
    state = args.text("state") or "present"
    gid = args.text("gid")
    args.ignore("system", "local", "non_unique", "gid_min", "gid_max", "force")
    if state == "absent":
        return ModuleEffect((f"groupdel {q(name)}",))
    gid_option = f"-g {q(gid)} " if gid is not None else ""
    return ModuleEffect((f"groupadd {gid_option}{q(name)}",))


def _authorized_key(args: Args) -> ModuleEffect:
    user = args.text("user", required=True)
    assert user is not None
    path = args.text("path") or f"~{user}/.ssh/authorized_keys"
    args.ignore(
        "key", "state", "manage_dir", "key_options", "exclusive", "validate_certs", "comment",
        "follow",
    )  # fmt: skip
    return ModuleEffect((f"tee -a -- {q(path)}",))


def _cron(args: Args) -> ModuleEffect:
    user = args.text("user")
    job = args.text("job", "value")
    cron_file = args.text("cron_file")
    args.ignore(
        "name", "state", "minute", "hour", "day", "dom", "month", "weekday", "dow",
        "special_time", "reboot", "disabled", "env", "insertafter", "insertbefore", "backup",
    )  # fmt: skip
    commands = []
    if cron_file is not None:
        path = cron_file if cron_file.startswith("/") else f"/etc/cron.d/{cron_file}"
        commands.append(f"tee -a -- {q(path)}")
    else:
        commands.append(f"crontab -u {q(user)} -" if user else "crontab -")
    if job is not None:
        commands.append(job)  # what will run later, judged now as a line
    return ModuleEffect(tuple(commands))


def _systemd(args: Args) -> ModuleEffect:
    name = args.text("name", "service", "unit")
    state = args.text("state")
    enabled = args.take("enabled")
    masked = args.take("masked")
    scope = args.text("scope")
    user = "--user " if scope == "user" else "--global " if scope == "global" else ""
    commands = []
    if args.flag("daemon_reload", "daemon-reload"):
        commands.append(f"systemctl {user}daemon-reload")
    if args.flag("daemon_reexec", "daemon-reexec"):
        commands.append(f"systemctl {user}daemon-reexec")
    args.ignore("force", "no_block")
    verbs = {"started": "start", "stopped": "stop", "restarted": "restart", "reloaded": "reload"}
    if name is None and (state or enabled is not None or masked is not None):
        raise NotUnderstood("systemd: a state without a unit name")
    if masked is not None:
        commands.append(f"systemctl {user}{'mask' if masked else 'unmask'} {q(name or '')}")
    if enabled is not None:
        commands.append(f"systemctl {user}{'enable' if enabled else 'disable'} {q(name or '')}")
    if state is not None:
        if state not in verbs:
            raise NotUnderstood(f"systemd: state {state!r}")
        commands.append(f"systemctl {user}{verbs[state]} {q(name or '')}")
    return ModuleEffect(tuple(commands) or ("systemctl list-units",))


def _service(args: Args) -> ModuleEffect:
    name = args.text("name", required=True)
    state = args.text("state")
    enabled = args.take("enabled")
    arguments = args.text("arguments", "args")
    args.ignore("pattern", "sleep", "runlevel", "use")
    if arguments:
        raise NotUnderstood("service: arguments are passed to the init script")
    verbs = {"started": "start", "stopped": "stop", "restarted": "restart", "reloaded": "reload"}
    commands = []
    if enabled is not None:
        commands.append(f"systemctl {'enable' if enabled else 'disable'} {q(name or '')}")
    if state is not None:
        if state not in verbs:
            raise NotUnderstood(f"service: state {state!r}")
        commands.append(f"systemctl {verbs[state]} {q(name or '')}")
    return ModuleEffect(tuple(commands) or (f"systemctl status {q(name or '')}",))


def _packages(tool: str, args: Args) -> ModuleEffect:
    """apt, dnf, yum, package: install, remove, upgrade, refresh."""
    names = args.words("name", "pkg", "package")
    state = args.text("state") or "present"
    commands = []
    if args.flag("update_cache", "update-cache", "expire-cache"):
        commands.append(f"{tool} update" if tool == "apt-get" else f"{tool} makecache")
    deb = args.text("deb")
    if deb is not None:
        commands.append(f"dpkg -i -- {q(deb)}")
    upgrade = args.text("upgrade")
    if upgrade not in (None, "no", "false", "False"):
        commands.append(f"{tool} {'dist-upgrade' if upgrade == 'dist' else 'upgrade'} -y")
    if args.flag("autoremove"):
        commands.append(f"{tool} autoremove -y")
    listed = " ".join(q(n) for n in names)
    if names:
        if state in ("absent", "removed"):
            purge = "--purge " if args.flag("purge") else ""
            commands.append(f"{tool} remove -y {purge}-- {listed}")
        elif state in ("present", "installed", "latest", "fixed", "build-dep"):
            commands.append(f"{tool} install -y -- {listed}")
        else:
            raise NotUnderstood(f"{args.module.name}: state {state!r}")
    if args.take("dpkg_options") not in (None, "force-confdef,force-confold"):
        raise NotUnderstood(f"{args.module.name}: dpkg_options")
    args.ignore(
        "cache_valid_time", "install_recommends", "default_release", "force", "force_apt_get",
        "allow_unauthenticated", "allow_downgrade", "allow_change_held_packages", "lock_timeout",
        "only_upgrade", "fail_on_autoremove", "clean", "policy_rc_d", "autoclean", "purge",
        "update_cache_retries", "update_cache_retry_max_delay", "disable_gpg_check",
        "enablerepo", "disablerepo", "conf_file", "installroot", "exclude", "security",
        "bugfix", "skip_broken", "nobest", "best", "releasever", "validate_certs",
        "sslverify", "install_weak_deps", "download_only", "download_dir", "cacheonly",
        "use_backend", "allowerasing", "disable_excludes", "disable_plugin", "enable_plugin",
        "list", "update_only", "install_repoquery", "allow_unauthenticated", "auto_install_module_deps",
    )  # fmt: skip
    return ModuleEffect(tuple(commands) or (f"{tool} --version",))


def _pip(args: Args) -> ModuleEffect:
    names = args.words("name")
    version = args.text("version")
    requirements = args.text("requirements")
    state = args.text("state") or "present"
    executable = args.text("executable") or "pip"
    virtualenv = args.text("virtualenv")
    chdir = args.text("chdir")
    extra = args.text("extra_args")
    venv_command = args.text("virtualenv_command")
    args.ignore(
        "editable",
        "umask",
        "virtualenv_site_packages",
        "virtualenv_python",
        "break_system_packages",
    )
    prefix = f"cd -- {q(chdir)} && " if chdir else ""
    commands = []
    if virtualenv is not None:
        commands.append(f"{prefix}{venv_command or 'virtualenv'} {q(virtualenv)}")
        executable = f"{virtualenv}/bin/pip"
    pip = q(executable)
    tail = f" {extra}" if extra else ""
    if names and version and len(names) == 1:
        names = [f"{names[0]}=={version}"]
    listed = " ".join(q(n) for n in names)
    if state == "absent":
        commands.append(f"{prefix}{pip} uninstall -y{tail} {listed}".rstrip())
    else:
        upgrade = "-U " if state in ("latest", "forcereinstall") else ""
        if requirements:
            commands.append(f"{prefix}{pip} install {upgrade}-r {q(requirements)}{tail}")
        if names:
            commands.append(f"{prefix}{pip} install {upgrade}{listed}{tail}")
    return ModuleEffect(tuple(commands) or (f"{pip} --version",))


def _get_url(args: Args) -> ModuleEffect:
    url = args.text("url", required=True)
    dest = args.text("dest", required=True)
    assert url is not None and dest is not None
    args.ignore(
        "checksum", "force", "backup", "timeout", "validate_certs", "use_proxy", "http_agent",
        "force_basic_auth", "url_username", "url_password", "username", "password", "headers",
        "tmp_dest", "use_gssapi", "use_netrc", "ciphers", "unredirected_headers",
        "decompress", "client_cert", "client_key", "sha256sum",
    )  # fmt: skip
    commands = [f"curl -fsSL -o {q(dest)} -- {q(url)}", *_attributes(args, dest)]
    return ModuleEffect(tuple(commands))


def _getent(args: Args) -> ModuleEffect:
    database = args.text("database", required=True)
    key = args.text("key")
    args.ignore("split", "fail_key", "service")
    assert database is not None
    return ModuleEffect((f"getent {q(database)}" + (f" {q(key)}" if key else ""),))


def _find(args: Args) -> ModuleEffect:
    paths = args.words("paths", "name", "path")
    args.ignore(
        "patterns", "pattern", "excludes", "exclude", "contains", "read_whole_file", "file_type",
        "recurse", "size", "age", "age_stamp", "hidden", "follow", "get_checksum", "use_regex",
        "depth", "mode", "exact_mode", "encoding", "checksum_algorithm", "limit",
    )  # fmt: skip
    if not paths:
        raise NotUnderstood("find: no paths")
    return ModuleEffect((f"find {' '.join(q(p) for p in paths)} -maxdepth 0",))


def _tempfile(args: Args) -> ModuleEffect:
    state = args.text("state") or "file"
    args.ignore("path", "prefix", "suffix")
    return ModuleEffect(("mktemp -d" if state == "directory" else "mktemp",))


MODULES: dict[str, Callable[[Args], ModuleEffect]] = {
    "ping": _ping,
    "setup": _setup,
    "stat": _stat,
    "slurp": _slurp,
    "command": _command,
    "shell": lambda args: _command(args, shell=True),
    "raw": _raw,
    "copy": _copy,
    "template": _copy,  # the template action renders locally, then runs copy
    "file": _file,
    "lineinfile": _edit_in_place,
    "blockinfile": _edit_in_place,
    "replace": _edit_in_place,
    "unarchive": _unarchive,
    "user": _user,
    "group": _group,
    "authorized_key": _authorized_key,  # ansible.posix's: only with a manifest for it
    "cron": _cron,
    "systemd": _systemd,
    "systemd_service": _systemd,
    "service": _service,
    "apt": lambda args: _packages("apt-get", args),
    "dnf": lambda args: _packages("dnf", args),
    "dnf5": lambda args: _packages("dnf", args),
    "yum": lambda args: _packages("yum", args),
    "package": lambda args: _packages("apt-get", args),
    "pip": _pip,
    "get_url": _get_url,
    "getent": _getent,
    "find": _find,
    "tempfile": _tempfile,
}


def module_commands(module: AnsibleModule) -> ModuleEffect:
    """The equivalent commands of one module run, or NotUnderstood."""
    handler = MODULES.get(module.name)
    if handler is None:
        raise NotUnderstood(f"module {module.name!r} has no known equivalent commands")
    args = Args(module)
    effect = handler(args)
    args.done()
    if not effect.commands or len(effect.commands) > MAX_COMMANDS:
        raise NotUnderstood(f"{module.name}: no commands to decide")
    return effect
