"""The program catalog: it loads, it is large, and every program reads its own lines."""

from __future__ import annotations

import json
import tomllib
from importlib import resources

import pytest

from rules import Request, default_policy, evaluate
from rules.catalog import CATALOG, Catalog
from rules.catalog.model import CAPABILITIES, KINDS, Node

# What a word of each kind looks like in a line made from a program's own grammar.
SAMPLE = {
    "v": "x",
    "P": "pattern",
    "n": "1",
    "r": "file.txt",
    "w": "out.txt",
    "a": "file.txt",
    "D": "old.txt",
    "d": "dir",
    "W": "dir",
    "p": "file.txt",
    "k": "key.pem",
    "x": "script.sh",
    "c": "true",
    "C": "true",
    "s": "'select 1'",
    "u": "https://example.com",
    "h": "example.com",
    "m": "json.tool",
    "U": "app",
    "q": "1234",
}
# Programs whose words are a language of their own: their examples say it instead.
READS_INPUT = {"shell", "interpreter", "sql", "redis", "mongo", "su", "script"}
OWN_LANGUAGE = {
    "find",
    "dd",
    "awk",
    "sed",
    "socat",
    "parallel",
    "ip",
    "iptables",
    "nft",
    "ufw",
    "firewall-cmd",
    "test",
    "[",
    "tar",
    "busybox",
    "toybox",
    "crontab",
    "at",
    "su",
    "kill",
    "capsh",
    "env",
    "ssh",
    "autossh",
    "jq",
    "yq",
    "expr",
    "printf",
    "sudo",
    "doas",
}


def smoke_line(name: str, node: Node) -> str | None:
    """The program with its required subcommands and arguments, each a sample of its kind."""
    words = [name]
    current = node
    while current.needs_sub and current.subs:
        sub = next(
            (n for n, s in current.subs.items() if s.parent is current and not s.needs_sub),
            next(iter(current.subs)),
        )
        words.append(sub)
        current = current.subs[sub]
    if current.handler_cache in READS_INPUT:
        # alone, these read commands from the session: give them a file to run instead
        return (
            None
            if current.handler_cache in ("sql", "redis", "mongo", "su", "script")
            else f"{name} script"
        )
    for spec in current.args or ():
        if not spec.required:
            continue
        if spec.kind == "e":
            return None  # code on the line: never understood (by design)
        words.append(SAMPLE[spec.kind])
        if spec.kind == "c":
            break
    return " ".join(words)


def test_the_catalog_is_several_hundred_programs_with_capabilities() -> None:
    names = CATALOG.names()
    assert len(names) >= 600
    nodes = [CATALOG.program(name) for name in names]
    assert all(node is not None for node in nodes)
    assert sum(1 for n in nodes if n.caps) >= 550  # every program says what it does
    assert sum(len(n.options) for n in nodes if n is not None) > 10_000


def test_generated_data_names_its_sources_and_licence() -> None:
    root = resources.files("rules.catalog")
    fig = json.loads(root.joinpath("generated/fig.json").read_text())
    assert fig["source"] == "@withfig/autocomplete" and fig["license"] == "MIT"
    assert fig["version"]
    help_tables = json.loads(root.joinpath("generated/help.json").read_text())
    assert help_tables["programs"]["ls"]["o"]


def test_capabilities_and_kinds_in_the_data_are_known() -> None:
    for name in CATALOG.names():
        stack = [CATALOG.program(name)]
        seen: set[int] = set()
        while stack:
            node = stack.pop()
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            assert node.caps <= set(CAPABILITIES), name
            for option in node.options.values():
                assert option.value is None or option.value in KINDS, (name, option.names)
            for spec in node.args or ():
                assert spec.kind in KINDS, name
            stack.extend(node.subs.values())


@pytest.mark.parametrize("name", CATALOG.names())
def test_every_program_reads_a_line_made_from_its_own_grammar(name: str) -> None:
    node = CATALOG.program(name)
    assert node is not None
    examples = list(node.example)
    if name not in OWN_LANGUAGE:
        line = smoke_line(name, node)
        if line is not None:
            examples.append(line)
    for line in examples:
        decision = evaluate([default_policy()], Request(line, login="deploy"))
        assert decision.understood, (line, [str(r) for r in decision.not_understood])


def test_a_malformed_catalog_file_names_the_program() -> None:
    from rules.catalog import CatalogError, _merge_file

    tables: dict[str, dict[str, object]] = {}
    _merge_file(tables, tomllib.loads('[x]\ncaps = ["nonsense"]\n'), "t.toml")
    catalog = Catalog(tables, {}, {})
    with pytest.raises(CatalogError, match="'x'.*nonsense"):
        catalog.program("x")
