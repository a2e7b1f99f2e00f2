"""`bastion init`: lay out a state directory without ever overwriting a key."""

from __future__ import annotations

import os

from bastion.config import DEFAULT_CONFIG
from bastion.identity.authorities import Authorities
from bastion.recordings import spool_dir
from bastion.recordings.config import RecordingsConfig
from bastion.statedir import StateDir
from bastion.store.db import Database


def initialise(state: StateDir, *, listen: str | None = None) -> list[str]:
    """Create what is missing; return what was created."""
    created: list[str] = []
    if not state.root.exists():
        state.root.mkdir(mode=0o700, parents=True)
        created.append(str(state.root))
    os.chmod(state.root, 0o700)
    if not state.config_file.exists():
        text = DEFAULT_CONFIG
        if listen:
            text = text.replace('listen = "127.0.0.1:2222"', f'listen = "{listen}"')
        fd = os.open(state.config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        created.append("bastion.toml")
    recordings = spool_dir(RecordingsConfig(), state.root)  # the default "local" store
    if not recordings.exists():
        recordings.mkdir(mode=0o700)
        created.append("recordings/")
    created += [f"keys/{name}" for name in Authorities.initialise(state.keys)]
    had_db = state.database.exists()
    Database(state.database, create=True).close()
    os.chmod(state.database, 0o600)
    if not had_db:
        created.append("bastion.db")
    return created
