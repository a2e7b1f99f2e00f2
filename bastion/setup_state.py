"""`bastion init`: lay out a state directory without ever overwriting a key."""

from __future__ import annotations

import os
import socket

from bastion.config import DEFAULT_CONFIG, load_config
from bastion.identity.authorities import Authorities
from bastion.recordings import spool_dir
from bastion.recordings.config import RecordingsConfig
from bastion.statedir import StateDir
from bastion.store import BlockingStore, open_store


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
    url = state.store_url(load_config(state.config_file).store.url)
    had_db = state.database.exists()
    BlockingStore(open_store(url, node=f"init@{socket.gethostname()}", create=True)).close()
    if url == state.store_url() and state.database.exists():
        os.chmod(state.database, 0o600)
        if not had_db:
            created.append("bastion.db")
    return created
