"""Where session recordings are stored: the recording-store interface and its backends.

    store = open_recording_store(config.recordings, state.root, metadata, node)
    sink = store.open_session(header, on_failure=report)  # RecordingSink: output/input/...
    with open_recording(location, config.recordings, state.root) as stream: ...  # blocking

- store.py: `RecordingStore` (shared spool/sink/flush logic) and `LocalRecordingStore`
- s3/: `S3RecordingStore`: objects (obstore), layout, uploader, completer
- sink.py: `RecordingSink`, one session's recording as the relay sees it
- spool.py: the local file every recording is written to first; whole-line reading
- what the database keeps: `RecordingMetadata` (bastion/store/base.py)
- config.py: `[recordings]`

A name -> implementation table picks the backend from `[recordings] url`.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from bastion.recordings.config import RecordingsConfig, parse_s3_url
from bastion.recordings.sink import RecordingHeader, RecordingSink
from bastion.recordings.spool import open_whole_lines
from bastion.recordings.store import LocalRecordingStore, RecordingStore, RecordingUnavailable
from bastion.store.base import RecordingMetadata

__all__ = [
    "RecordingHeader",
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
    config: RecordingsConfig, state_root: Path, metadata: RecordingMetadata, node: str
) -> RecordingStore:
    directory = spool_dir(config, state_root)
    if config.url == "local":
        return LocalRecordingStore(directory, metadata, node, config)
    from bastion.recordings.s3.store import S3RecordingStore  # obstore only when configured

    return S3RecordingStore(parse_s3_url(config.url), directory, metadata, node, config)


def open_recording(location: str, config: RecordingsConfig, state_root: Path) -> BinaryIO:
    """Blocking: read a recording from whichever store `location` names (what the store
    gave the database: a local path, or s3://bucket/prefix/ID.cast), as whole lines."""
    if location.startswith("s3://"):
        from bastion.recordings.s3.store import open_s3_recording

        return open_s3_recording(location, config, spool_dir(config, state_root))
    try:
        return open_whole_lines(Path(location))
    except OSError as exc:
        raise RecordingUnavailable(f"recording {location}: {exc.strerror}") from None
