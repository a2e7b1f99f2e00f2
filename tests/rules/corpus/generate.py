"""Expand dangerous_base.tsv into dangerous.tsv: each base command plus evasions.

Run: python tests/rules/corpus/generate.py (deterministic; the output is committed).
Evasions: quoting and escaping the program, absolute and odd paths, wrappers,
sh -c / bash -c nesting (twice), lists, subshells and groups, command
substitution, ANSI-C strings, ssh to another host, busybox, xargs.
"""

from __future__ import annotations

import shlex
from pathlib import Path

HERE = Path(__file__).parent


def _split(command: str) -> tuple[str, str] | None:
    """(program, rest) when the line starts with a plain program word."""
    head, _, rest = command.partition(" ")
    if not head or not head.replace("-", "").replace(".", "").replace("_", "").isalnum():
        return None
    return head, rest


def variants(command: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    split = _split(command)
    if split:
        program, rest = split
        tail = f" {rest}" if rest else ""
        out += [
            (
                "quoted",
                f"{program[0]}'{program[1:]}'{tail}" if len(program) > 1 else f"'{program}'{tail}",
            ),
            ("backslash", f"\\{program}{tail}"),
            ("abspath", f"/usr/bin/../bin/{program}{tail}"),
            ("doubled-slash", f"//bin//{program}{tail}"),
            ("sudo", f"sudo -u root {command}"),
            ("env", f"env -i PATH=/bin {command}"),
            ("nice-timeout", f"nice -n 5 timeout 30 {command}"),
            ("ansi-c", "$'" + "".join(f"\\x{ord(c):02x}" for c in program) + "'" + tail),
            ("busybox", f"busybox {command}"),
            ("command", f"command {command}"),
        ]
    out += [
        ("sh-c", f"sh -c {shlex.quote(command)}"),
        ("bash-c-twice", f"bash -c {shlex.quote('sh -c ' + shlex.quote(command))}"),
        ("list", f"ls -la; {command}"),
        ("and", f"true && {command}"),
        ("subshell", f"( {command} )"),
        ("group", f"{{ {command}; }}"),
        ("substitution", f"echo $({command})"),
        ("ssh", f"ssh db1 {shlex.quote(command)}"),
        ("su-c", f"su -c {shlex.quote(command)} root"),
        ("if", f"if true; then {command}; fi"),
    ]
    return out


def main() -> None:
    lines = []
    for raw in (HERE / "dangerous_base.tsv").read_text().splitlines():
        if not raw.strip():
            continue
        category, command = raw.split("\t", 1)
        lines.append(f"{category}\tbase\t{command}")
        for index, (name, variant) in enumerate(variants(command)):
            # Keep the corpus reviewable: every base gets a rotating subset of evasions.
            if (index + len(command)) % 4 == 0:
                lines.append(f"{category}\t{name}\t{variant}")
    (HERE / "dangerous.tsv").write_text("\n".join(lines) + "\n")
    print(f"{len(lines)} dangerous commands")


if __name__ == "__main__":
    main()
