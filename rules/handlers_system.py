"""Handlers for host configuration tools: network, disks, mounts, kernel, firewall.

Each tells reading (capability `info`) from changing (`system`, `disk`) by the
words the tool's own grammar uses for verbs, and records what it would change
as `targets` (`policy:DROP`, `flush`, `default-deny`) for rules to match.
"""

from __future__ import annotations

from collections.abc import Callable

from rules.effects import Facts
from rules.values import text_of

_IP_OBJECTS = {
    "a": "address",
    "addr": "address",
    "address": "address",
    "l": "link",
    "link": "link",
    "r": "route",
    "ro": "route",
    "route": "route",
    "n": "neigh",
    "neigh": "neigh",
    "neighbor": "neigh",
    "neighbour": "neigh",
    "rule": "rule",
    "ru": "rule",
    "netns": "netns",
    "tunnel": "tunnel",
    "tun": "tunnel",
    "maddr": "maddr",
    "mroute": "mroute",
    "xfrm": "xfrm",
    "tuntap": "tuntap",
    "monitor": "monitor",
    "mon": "monitor",
    "ntable": "ntable",
    "netconf": "netconf",
    "vrf": "vrf",
    "mptcp": "mptcp",
    "sr": "sr",
    "token": "token",
    "l2tp": "l2tp",
    "fou": "fou",
    "macsec": "macsec",
    "tcp_metrics": "tcp_metrics",
    "nexthop": "nexthop",
    "nh": "nexthop",
    "stats": "stats",
    "ioam": "ioam",
    "help": "help",
}
_IP_READ = frozenset(
    {"show", "list", "ls", "lst", "sh", "get", "help", "monitor", "identify", "pids", "dump"}
)


def ipcmd(facts: Facts) -> None:
    words = [text_of(w) for w in facts.words[1:]]
    i = 0
    while i < len(words) and words[i].startswith("-"):
        if words[i] in ("-n", "-netns", "-b", "-batch", "-rc", "-rcvbuf", "-f", "-family"):
            i += 1
        i += 1
    rest = words[i:]
    if not rest:
        return
    obj = _IP_OBJECTS.get(rest[0])
    if obj is None:
        facts.not_understood(rest[0], "not an object ip knows")
        return
    verb = rest[1] if len(rest) > 1 else "show"
    if obj == "netns" and verb == "exec" and len(rest) >= 4:
        facts.argv(list(facts.words[1:][i + 3 :]), f"ip netns exec {rest[2]}")
        return
    if verb in _IP_READ or obj in ("monitor", "help"):
        return
    facts.caps.discard("info")
    facts.caps.add("system")
    facts.targets.extend([obj, verb, *rest[2:]])


def ifconfig(facts: Facts) -> None:
    words = [text_of(w) for w in facts.words[1:] if not text_of(w).startswith("-")]
    if len(words) >= 2:
        facts.caps.discard("info")
        facts.caps.add("system")
        facts.targets.extend(words)


def routecmd(facts: Facts) -> None:
    words = [text_of(w) for w in facts.words[1:]]
    if any(w in ("add", "del", "delete", "flush", "change") for w in words):
        facts.caps.discard("info")
        facts.caps.add("system")
        facts.targets.extend(words)


_PARTED_READ = frozenset({"print", "p", "unit", "help", "version", "align-check", "list"})


def parted(facts: Facts) -> None:
    words = [text_of(w) for w in facts.words[1:] if not text_of(w).startswith("-")]
    commands = [w for w in words if not w.startswith("/dev/")]
    if (
        "-l" in [text_of(w) for w in facts.words]
        or "--list" in [text_of(w) for w in facts.words]
        or (
            commands
            and all(
                w in _PARTED_READ
                or w.isdigit()
                or w in ("s", "B", "MB", "GB", "MiB", "GiB", "%", "chs", "cyl", "compact", "free")
                for w in commands
            )
        )
    ):
        facts.caps.discard("disk")
        facts.caps.add("info")
        return
    if not commands:
        facts.caps.add("interactive")
    facts.targets.extend(words)


def mount(facts: Facts) -> None:
    texts = [text_of(w) for w in facts.words[1:]]
    positional = [t for t in texts if not t.startswith("-")]
    options = " ".join(texts)
    if not positional and not any(t in ("-a", "--all") for t in texts) and "remount" not in options:
        facts.caps.discard("disk")
        facts.caps.add("info")
        return
    facts.caps.add("system")
    facts.targets.extend(positional)
    if "remount" in options:
        facts.targets.append("remount")
    if "ro" in options.replace(",", " ").split():
        facts.targets.append("ro")


def sysctl(facts: Facts) -> None:
    for word in facts.words[1:]:
        text = text_of(word)
        if "=" in text and not text.startswith("-"):
            facts.caps.discard("info")
            facts.caps.add("system")
            facts.targets.append(text)


_IPTABLES_READ = frozenset(
    "-L --list -S --list-rules -n --numeric -v --verbose --line-numbers -x --exact -t --table -C --check -h --help -V --version -w --wait".split()
)


def firewall(facts: Facts) -> None:
    texts = [text_of(w) for w in facts.words[1:]]
    program = facts.program
    change = False
    targets: list[str] = []
    if program.startswith(("iptables", "ip6tables")):
        for position, text in enumerate(texts):
            if (
                text.startswith("-")
                and text not in _IPTABLES_READ
                and not text.startswith("--line")
            ):
                if text in ("-F", "--flush"):
                    targets.append("flush")
                elif text in ("-X", "--delete-chain"):
                    targets.append("flush")
                elif text in ("-P", "--policy") and position + 2 < len(texts):
                    targets.append(f"policy:{texts[position + 2].upper()}")
                if text in (
                    "-A",
                    "--append",
                    "-I",
                    "--insert",
                    "-D",
                    "--delete",
                    "-R",
                    "--replace",
                    "-F",
                    "--flush",
                    "-X",
                    "--delete-chain",
                    "-P",
                    "--policy",
                    "-Z",
                    "--zero",
                    "-N",
                    "--new-chain",
                    "-E",
                    "--rename-chain",
                ):
                    change = True
        if any(t.upper() in ("DROP", "REJECT") for t in texts) and "-j" in texts:
            targets.append("drop")
    elif program == "nft":
        verbs = [t for t in texts if not t.startswith("-")]
        if verbs and verbs[0] not in ("list", "describe", "monitor", "-h", "help"):
            change = True
            if verbs[0] in ("flush", "delete", "destroy"):
                targets.append("flush")
            if "policy" in verbs and any(v.rstrip(";}") in ("drop", "reject") for v in verbs):
                targets.append("policy:DROP")
            if "-f" in texts or "--file" in texts:
                targets.append("load")
        elif "-f" in texts:
            change = True
            targets.append("load")
    elif program == "ufw":
        verbs = [t for t in texts if not t.startswith("-")]
        if verbs and verbs[0] not in ("status", "version", "show", "app", "help"):
            change = True
            if verbs[0] in ("disable", "reset"):
                targets.append("flush")
            if verbs[0] == "default" and any(v in ("deny", "reject") for v in verbs[1:]):
                targets.append("policy:DROP")
            if verbs[0] == "enable":
                targets.append("enable")
    elif program == "firewall-cmd":
        for text in texts:
            if not text.startswith(
                (
                    "--list",
                    "--get",
                    "--query",
                    "--state",
                    "--info",
                    "--help",
                    "-h",
                    "--version",
                    "--zone",
                    "--permanent",
                )
            ):
                change = True
            if text in ("--panic-on", "--complete-reload"):
                targets.append("flush" if text == "--complete-reload" else "policy:DROP")
            if text.startswith("--set-target") and any(
                t in text.upper() for t in ("DROP", "REJECT")
            ):
                targets.append("policy:DROP")
    if change:
        facts.caps.discard("info")
        facts.caps.add("system")
    facts.targets.extend(targets)


# --- NetworkManager ------------------------------------------------------------------------

# nmcli's objects and the verbs that change the host, as targets network rules name
# (`down`, `delete`, `off`); nmcli takes any prefix of a word (`nmcli n off`, `nmcli c down`).
_NMCLI_OBJECTS = ("general", "networking", "radio", "connection", "device", "agent", "monitor")
_NMCLI_VERBS = (
    "connectivity on off show status hostname permissions logging up down delete disconnect "
    "connect modify add reload list wifi".split()
)
_NMCLI_READ = frozenset({"show", "status", "connectivity", "permissions", "list"})
_NMCLI_VALUE = frozenset(
    "-f --fields -g --get-values -m --mode -c --colors -e --escape -w --wait".split()
)


def _nmcli_word(word: str, choices: tuple[str, ...]) -> str:
    return next((c for c in choices if word and c.startswith(word)), word)


def nmcli(facts: Facts) -> None:
    words: list[str] = []
    raw = [text_of(w) for w in facts.words[1:]]
    i = 0
    while i < len(raw):
        if raw[i] in _NMCLI_VALUE:
            i += 2
            continue
        if not raw[i].startswith("-"):
            words.append(raw[i])
        i += 1
    if not words:
        return
    what = _nmcli_word(words[0], _NMCLI_OBJECTS)
    rest = words[1:]
    if what in ("agent", "monitor") or not rest:
        return
    verb = _nmcli_word(rest[0], tuple(_NMCLI_VERBS))
    if what == "radio":
        verb = rest[-1] if rest[-1] in ("on", "off") else "show"
    if what == "general" and verb in ("hostname", "logging") and len(rest) == 1:
        return  # prints them
    if verb in _NMCLI_READ:
        return
    facts.caps.discard("info")
    facts.caps.add("system")
    if verb in ("off", "down", "delete", "disconnect"):
        facts.targets.append("down" if verb == "disconnect" else verb)


# --- packages ----------------------------------------------------------------------------


def apt_install(facts: Facts) -> None:
    """apt/apt-get/aptitude install: `PKG-` (and aptitude's `PKG_`) removes PKG; a path or a
    .deb file is a package no repository signed, whose maintainer scripts run (kind `x`)."""
    for word in facts.parsed.positionals:
        text = text_of(word[0])
        if text.startswith(("/", "./", "../", "~")) or text.endswith(".deb"):
            facts.path(word[0], "x")
        elif text.endswith(("-", "_")) and len(text) > 1:
            facts.caps.add("delete")
            facts.targets.append(text[:-1])


HANDLERS: dict[str, Callable[[Facts], None]] = {
    "nmcli": nmcli,
    "apt-install": apt_install,
    "ipcmd": ipcmd,
    "ifconfig": ifconfig,
    "routecmd": routecmd,
    "parted": parted,
    "mount": mount,
    "sysctl": sysctl,
    "firewall": firewall,
}
