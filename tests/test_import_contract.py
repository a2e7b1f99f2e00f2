"""The architecture checks itself: only bastion/store/ talks to a database."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE_MODULES = {"sqlite3", "psycopg", "psycopg_pool", "psycopg2"}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def offenders(folders: tuple[str, ...], forbidden: set[str], allowed_under: str | None = None):
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if allowed_under and relative.startswith(allowed_under):
                continue
            bad = imported_modules(path) & forbidden
            if bad:
                yield f"{relative} imports {', '.join(sorted(bad))}"


def test_nothing_outside_the_store_imports_a_database_driver() -> None:
    assert (
        list(
            offenders(("bastion", "rules", "recorder", "bench"), DATABASE_MODULES, "bastion/store/")
        )
        == []
    )


def test_the_libraries_do_not_import_the_bastion() -> None:
    assert list(offenders(("rules", "recorder"), {"bastion", "asyncssh", "typer"})) == []


def test_the_check_sees_an_offender(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nfrom psycopg import sql\nimport sqlite3 as lite\n")
    assert imported_modules(sample) >= {"psycopg", "sqlite3"}
