"""Paths as the kernel will open them: home, the working directory, `..` and the
system's own symbolic links resolved before rules see them.

    >>> resolve("/var/run/../etc/shadow", "~")
    ('/etc/shadow', '/var/etc/shadow')
    >>> resolve(HOME + "/.ssh/id_rsa", "/tmp")
    ('~/.ssh/id_rsa',)
    >>> resolve("../../../etc/shadow", "~/app", "/home/deploy")
    ('/etc/shadow',)
    >>> resolve("../../etc/shadow", "~")
    ('/etc/shadow',)

Every path is absolute or under `~` (the login's home). `..` is applied
after the symbolic links every Debian host has (`/bin -> usr/bin`,
`/var/run -> /run`, `/proc/self/root -> /`), which is how the kernel reads
`/var/run/../etc/shadow`; the plain lexical reading is kept beside it
when it differs, so a rule sees both. A relative path under an unknown
working directory, or one whose `..` follows a glob, cannot be known.
"""

from __future__ import annotations

import re

HOME = "\x01"  # an unquoted `~` the shell expands to the login's home
_SYSTEM_LINKS = {
    "/bin": "/usr/bin",
    "/sbin": "/usr/sbin",
    "/lib": "/usr/lib",
    "/lib32": "/usr/lib32",
    "/lib64": "/usr/lib64",
    "/libx32": "/usr/libx32",
    "/var/run": "/run",
    "/var/lock": "/run/lock",
    "/dev/fd": "/proc/self/fd",
    "/dev/stdin": "/proc/self/fd/0",
    "/dev/stdout": "/proc/self/fd/1",
    "/dev/stderr": "/proc/self/fd/2",
    "/proc/self/root": "/",
    "/proc/thread-self/root": "/",
    "/etc/mtab": "/proc/self/mounts",
}
_PROC_ROOT = re.compile(r"/proc/(\d+|self|thread-self)/root$")
_PROC_CWD = re.compile(r"/proc/(\d+|self|thread-self)/cwd$")
GLOB = re.compile(r"(?<!\\)[*?[]")


def canonical_prefix(path: str) -> str:
    """A rule's pattern in the same form: `/bin/*` -> `/usr/bin/*`."""
    for link, target in _SYSTEM_LINKS.items():
        if path == link or path.startswith(link + "/"):
            rest = path[len(link) :]
            return (target.rstrip("/") + rest) or "/"
    return path


def resolve(text: str, cwd: str | None, home: str | None = None) -> tuple[str, ...] | None:
    """The path's canonical spellings (first the kernel's), or None when unknowable."""
    if text.startswith(HOME):
        base = home or "~"
        rest = text[1:]
        if rest and not rest.startswith("/"):
            return None  # `~user` is expanded by the word reader; anything else is odd
    elif text.startswith("/"):
        base, rest = "", text
    else:
        if cwd is None:
            return None
        base, rest = (home + cwd[1:] if home and cwd.startswith("~") else cwd), "/" + text
    physical = _walk(base, rest, cwd, physical=True)
    if physical is None:
        return None
    lexical = _walk(base, rest, cwd, physical=False)
    spelled = tuple(dict.fromkeys(_home_form(p, home) for p in (physical, lexical) if p))
    return spelled


def _walk(base: str, rest: str, cwd: str | None, *, physical: bool) -> str | None:
    parts: list[str] = [p for p in base.split("/") if p] if base else []
    parts.insert(0, "~") if base.startswith("~") and parts[:1] != ["~"] else None
    if not base.startswith("~"):
        parts.insert(0, "")
    after_glob = False
    for name in rest.split("/"):
        if name in ("", "."):
            continue
        if name == "..":
            if after_glob and physical:
                return None  # a glob before `..` could name any symbolic link
            if parts == ["~"]:
                # above a home whose place is not known: read as reaching / (true for
                # /root, and stricter for /home/USER, whose `../../x` is /x either way)
                parts = [""]
                continue
            if physical and len(parts) == 3 and parts[1] == "home":
                # `~bob/..`: the word reader guesses /home/bob, but a home may sit at
                # /nonexistent or /root, whose parent is /; read the stricter way
                parts = [""]
                continue
            if len(parts) > 1:
                parts.pop()
            continue
        after_glob = after_glob or bool(GLOB.search(name))
        parts.append(name)
        if physical:
            current = "/".join(parts) or "/"
            target = _SYSTEM_LINKS.get(current)
            if target is None:
                if _PROC_ROOT.match(current):
                    target = "/"
                elif _PROC_CWD.match(current):
                    if not current.startswith(("/proc/self/", "/proc/thread-self/")):
                        return None  # another process's directory
                    if cwd is None:
                        return None
                    target = cwd
            if target is not None:
                parts = target.split("/") if target != "/" else [""]
                if target == "~":
                    parts = ["~"]
    joined = "/".join(parts)
    if joined == "":
        return "/"
    return joined


def _home_form(path: str, home: str | None) -> str:
    if home and home != "/" and (path == home or path.startswith(home + "/")):
        return "~" + path[len(home) :]
    return path


def join(directory: str, name: str) -> str:
    if directory.endswith("/"):
        return directory + name
    return f"{directory}/{name}"
