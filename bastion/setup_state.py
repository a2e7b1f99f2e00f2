"""`bastion init`: lay out a state directory without ever overwriting a key.

A new state directory is built beside its final place and renamed into it
only when complete, so a failed init (no space, a migration missing from a
broken install) leaves nothing behind for the next `bastion serve` to trip
over. In an existing directory only what is missing is created, and what this
run created is removed again if it fails.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bastion.config import DEFAULT_CONFIG, load_config, validate_host_name
from bastion.errors import BastionError, UsageError
from bastion.identity.authorities import Authorities
from bastion.recordings import spool_dir
from bastion.recordings.config import RecordingsConfig
from bastion.statedir import StateDir
from bastion.store import BlockingStore, open_store

DEFAULT_HOST_NAMES = ("localhost", "127.0.0.1")


def initialise(
    state: StateDir, *, listen: str | None = None, host_names: Sequence[str] = ()
) -> list[str]:
    """Create what is missing; return what was created."""
    for name in host_names:
        validate_host_name(name)
    root = state.root
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a directory: choose another --state-dir")
    if root.is_dir():
        return _fill(state, listen, host_names, undo_on_failure=True)
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{root.name}.init-", dir=root.parent))
    except OSError as exc:
        raise BastionError(f"cannot create {root}: {exc.strerror or exc}") from None
    try:
        created = _fill(StateDir(building), listen, host_names, undo_on_failure=False)
        os.rename(building, root)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return [str(root), *created]


def _fill(
    state: StateDir, listen: str | None, host_names: Sequence[str], *, undo_on_failure: bool
) -> list[str]:
    made: list[Path] = []
    try:
        return _create_missing(state, listen, host_names, made)
    except OSError as exc:
        if undo_on_failure:
            _undo(made)
        raise BastionError(f"cannot initialise {state.root}: {exc.strerror or exc}") from None
    except BaseException:
        if undo_on_failure:
            _undo(made)
        raise


def _create_missing(
    state: StateDir, listen: str | None, host_names: Sequence[str], made: list[Path]
) -> list[str]:
    created: list[str] = []
    os.chmod(state.root, 0o700)
    if not state.config_file.exists():
        fd = os.open(state.config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        made.append(state.config_file)
        with os.fdopen(fd, "w") as handle:
            handle.write(config_text(listen, host_names))
        created.append("bastion.toml")
    recordings = spool_dir(RecordingsConfig(), state.root)  # the default "local" store
    if not recordings.exists():
        recordings.mkdir(mode=0o700)
        made.append(recordings)
        created.append("recordings/")
    had_keys = state.keys.exists()
    new_keys = Authorities.initialise(state.keys)
    if not had_keys:
        made.append(state.keys)
    else:
        made += [state.keys / name for name in new_keys]
        made += [state.keys / f"{name}.pub" for name in new_keys]
    created += [f"keys/{name}" for name in new_keys]
    url = state.store_url(load_config(state.config_file).store.url)
    local = url == state.store_url()  # the SQLite file in the state dir
    if local and not state.database.exists():
        # sqlite3 would create it with the umask's mode; its -wal and -shm files
        # copy the database file's mode, so 0600 here covers all three.
        os.close(os.open(state.database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        made += [state.database, Path(f"{state.database}-wal"), Path(f"{state.database}-shm")]
        created.append("bastion.db")
    BlockingStore(open_store(url, node=f"init@{socket.gethostname()}", create=True)).close()
    if local:
        os.chmod(state.database, 0o600)
    return created


def config_text(listen: str | None, host_names: Sequence[str]) -> str:
    text = DEFAULT_CONFIG
    if listen:
        text = text.replace('listen = "127.0.0.1:2222"', f'listen = "{listen}"')
    if host_names:
        names = list(dict.fromkeys([*host_names, *DEFAULT_HOST_NAMES]))
        quoted = ", ".join(f'"{name}"' for name in names)
        text = text.replace('host_names = ["localhost", "127.0.0.1"]', f"host_names = [{quoted}]")
    return text


def _undo(made: list[Path]) -> None:
    for path in reversed(made):
        try:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError:
            pass
