"""Where the bastion keeps its state, and what lives there.

The state dir comes from --state-dir, else $BASTION_HOME, else
~/.local/state/bastion (documented in the README).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_STATE_DIR = Path("~/.local/state/bastion")


@dataclass(frozen=True)
class StateDir:
    root: Path

    @classmethod
    def resolve(cls, explicit: Path | str | None = None) -> StateDir:
        if explicit:
            return cls(Path(explicit).expanduser().absolute())
        env = os.environ.get("BASTION_HOME")
        if env:
            return cls(Path(env).expanduser().absolute())
        return cls(DEFAULT_STATE_DIR.expanduser().absolute())

    @property
    def config_file(self) -> Path:
        return self.root / "bastion.toml"

    @property
    def database(self) -> Path:
        return self.root / "bastion.db"

    def store_url(self, configured: str | None = None) -> str:
        """The store's URL: `[store] url` if set, else this dir's SQLite file."""
        return configured or f"sqlite://{self.database}"

    @property
    def keys(self) -> Path:
        return self.root / "keys"

    def is_initialised(self) -> bool:
        return self.config_file.is_file() and self.keys.is_dir()
