"""Where session recordings are stored: the recording-store interface and its backends.

    store = open_recording_store(config.recordings, state.root, catalog, node)
    sink = store.open_session(header, on_failure=report)  # RecordingSink: output/input/...
    with open_recording(row, config.recordings, state.root) as stream: ...  # blocking

- store.py: `RecordingStore` (shared spool/sink/flush logic) and `LocalRecordingStore`
- s3/: `S3RecordingStore`: objects (obstore), layout, uploader, completer
- sink.py: `RecordingSink`, one session's recording as the relay sees it
- spool.py: the local file every recording is written to first; whole-line reading
- catalog.py: `RecordingCatalog`, what the database must provide
- config.py: `[recordings]`

A name -> implementation table picks the backend from `[recordings] url`.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from bastion.recordings.catalog import RecordingCatalog, RecordingRow
from bastion.recordings.config import RecordingsConfig, parse_s3_url
from bastion.recordings.sink import RecordingHeader, RecordingSink
from bastion.recordings.spool import open_whole_lines
from bastion.recordings.store import LocalRecordingStore, RecordingStore, RecordingUnavailable

__all__ = [
    "RecordingCatalog",
    "RecordingHeader",
    "RecordingRow",
    "RecordingSink",
    "RecordingStore",
    "RecordingUnavailable",
    "open_recording",
    "open_recording_store",
    "spool_dir",
]


def spool_dir(config: RecordingsConfig, state_root: Path) -> Path:
    """Where this machine writes recordings first (for "local", where they stay)."""
    return Path(config.spool).expanduser() if config.spool else state_root / "recordings"


def open_recording_store(
    config: RecordingsConfig, state_root: Path, catalog: RecordingCatalog, node: str
) -> RecordingStore:
    directory = spool_dir(config, state_root)
    if config.url == "local":
        return LocalRecordingStore(directory, catalog, node, config)
    from bastion.recordings.s3.store import S3RecordingStore  # obstore only when configured

    return S3RecordingStore(parse_s3_url(config.url), directory, catalog, node, config)


def open_recording(row: RecordingRow, config: RecordingsConfig, state_root: Path) -> BinaryIO:
    """Blocking: read a recording from whichever store holds it (the row says which)."""
    directory = spool_dir(config, state_root)
    if row.store == "local":
        try:
            return open_whole_lines(directory / row.key)
        except OSError as exc:
            raise RecordingUnavailable(
                f"recording of session {row.session_id}: {exc.strerror}"
            ) from None
    if row.store.startswith("s3://"):
        from bastion.recordings.s3.objects import ObjectStorage
        from bastion.recordings.s3.store import open_s3_recording

        storage = ObjectStorage(parse_s3_url(row.store), config)
        return open_s3_recording(row, storage, directory)
    raise RecordingUnavailable(
        f"recording of session {row.session_id}: unknown store {row.store!r}"
    )
