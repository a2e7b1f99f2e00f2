"""Option tables from the `--help` text of the GNU/Linux tools installed here.

    python3 help_extract.py NAMES_FILE OUT.json

Fig's specs describe many core tools in their BSD (macOS) form; the GNU tools
on a Debian target print a regular table instead (`  -o, --output=FILE  ...`).
This reads that table for each program named in NAMES_FILE that is installed:
every option spelling, and whether it takes a value (`=X`, ` X`, `<x>`) or an
optional one (`[=X]`). The value's metavariable gives a first guess at its kind
(FILE: a path, DIR: a directory, COMMAND/PROG: a command), which the hand-written
overrides in rules/catalog/programs/ correct where it matters.

Run it on a Debian 12 machine with the packages the names file lists; it runs
each program with `--help` only (LC_ALL=C, 5 s timeout, no shell).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

# `-o, --output=FILE`, `--color[=WHEN]`, `-n NUM`, `--cacert <file>`, `-e PATTERNS`
_OPTION = re.compile(
    r"(?P<name>--?[A-Za-z0-9][A-Za-z0-9_.-]*)"
    r"(?P<value>\[=[^\]\s]+\]|=\S+|\[[^\]\s]+\]| <[^>]+>| (?=[A-Z])[A-Z][A-Z0-9_:.\[\]-]*(?![a-z]))?"
)
_ROW = re.compile(r"^\s{1,12}(-[^\s].*)$")
_KINDS = (
    (re.compile(r"COMMAND|CMD|PROG|PROGRAM|EXECUTABLE|COMMAND LINE", re.I), "c"),
    (re.compile(r"SCRIPT", re.I), "x"),
    (re.compile(r"^(DIR|DIRECTORY|FOLDER|dir)$", re.I), "d"),
    (re.compile(r"FILE|PATH|FILENAME|file name|LOGFILE|filename", re.I), "p"),
)


def kind_of(metavar: str) -> str:
    bare = metavar.strip("[]=<> ")
    for pattern, kind in _KINDS:
        if pattern.search(bare):
            return kind
    return "v"


def parse_help(text: str) -> dict[str, str]:
    """ "-o|--output" (the spellings of one row) -> "" (no value) | kind | kind + "?"
    (optional value)."""
    options: dict[str, str] = {}
    seen: set[str] = set()
    for raw in text.splitlines():
        row = _ROW.match(raw)
        if row is None:
            continue
        # The option list ends where the description starts: two spaces.
        head = re.split(r"\s{2,}|\t", row.group(1).strip(), maxsplit=1)[0]
        parts: list[tuple[str, str]] = []
        for part in re.split(r",\s*(?=[-+])|\s+or\s+(?=-)|\s*\|\s*(?=-)", head):
            match = _OPTION.fullmatch(part.strip()) or _OPTION.match(part.strip())
            if match is None:
                continue
            name, value = match.group("name"), match.group("value") or ""
            if name in ("-", "--") or len(name) > 64 or name in seen:
                continue
            if value.startswith("["):
                parts.append((name, kind_of(value) + "?"))
            elif value:
                parts.append((name, kind_of(value)))
            else:
                parts.append((name, ""))
        if not parts:
            continue
        # `-o, --output=FILE`: a bare spelling shares a mandatory value given on its row;
        # `-u, -U NUM, --unified[=NUM]`: -u takes none, -U and --unified take theirs.
        shared = next((code for _, code in parts if code and not code.endswith("?")), "")
        mixed = any(code for _, code in parts) and any(not code for _, code in parts)
        own_values = sum(1 for _, code in parts if code)
        groups: dict[str, list[str]] = {}
        for name, code in parts:
            if not code and mixed and own_values > 1:
                code = ""  # several spellings with values of their own: this one has none
            elif not code:
                code = shared
            groups.setdefault(code, []).append(name)
            seen.add(name)
        for code, names in groups.items():
            options["|".join(names)] = code
    return options


# Programs whose full option table needs more than --help.
_HELP_FLAGS = {"curl": ("--help all",), "wget": ("--help",), "ip": ("-h",)}


def help_text(program: str) -> str | None:
    path = shutil.which(program)
    if path is None:
        return None
    for flag in _HELP_FLAGS.get(program, ("--help", "-h", "help")):
        try:
            done = subprocess.run(
                [path, *flag.split()],
                capture_output=True,
                text=True,
                timeout=5,
                env={"LC_ALL": "C", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "COLUMNS": "200"},
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        text = done.stdout + "\n" + done.stderr
        if sum(1 for line in text.splitlines() if _ROW.match(line)) >= 2:
            return text
    return None


def main() -> None:
    names_file, out = sys.argv[1], sys.argv[2]
    names = [n.strip() for n in Path(names_file).read_text().splitlines()]
    programs = {}
    missing = []
    for name in names:
        if not name or name.startswith("#"):
            continue
        text = help_text(name)
        options = parse_help(text) if text else {}
        if options:
            programs[name] = {"o": options}
        else:
            missing.append(name)
    Path(out).write_text(
        json.dumps(
            {"source": "--help of installed tools", "programs": programs}, sort_keys=True, indent=0
        )
    )
    print(f"{len(programs)} programs read; no usable help: {' '.join(missing)}", file=sys.stderr)


if __name__ == "__main__":
    main()
