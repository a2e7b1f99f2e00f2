"""An SSH bastion with command-level control for tool-using agents."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def installed_version() -> str:
    """The version pip installed (pyproject.toml's), or "unknown" in an uninstalled tree."""
    try:
        return version("bastion")
    except PackageNotFoundError:
        return "unknown"
