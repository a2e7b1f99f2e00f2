"""Print the programs the catalog describes (their `source` names), one a line.

The generators extract only these from their sources (generate/regenerate.sh).
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

PROGRAMS = Path(__file__).resolve().parents[1] / "programs"


def names() -> list[str]:
    found: set[str] = set()
    for path in sorted(PROGRAMS.glob("*.toml")):
        data = tomllib.loads(path.read_text())
        groups = data.pop("group", {})
        for name, table in data.items():
            found.add(table.get("source", name))
        for group in groups.values():
            for name in group.get("programs", []):
                found.add(data.get(name, {}).get("source", name))
    return sorted(found)


if __name__ == "__main__":
    sys.stdout.write("\n".join(names()) + "\n")
