"""Storage: the only package that talks to a database.

One async interface of domain operations (`Store`: the public coroutines of
bastion/store/sql/store.py and its mixins; narrower protocols for other
packages in bastion/store/base.py), two implementations chosen by URL, as
uvicorn chooses its protocol classes:

    [store]
    url = "sqlite:///var/lib/bastion/bastion.db"       # default: the state dir's bastion.db
    url = "postgresql://bastion@db.example/bastion"    # several nodes

    store = open_store(url, node="bastion-1")          # then: await store.open()

Both share their SQL (bastion/store/sql/); each has its own connections,
full-text search (FTS5 / tsvector), wake-ups (polling / LISTEN-NOTIFY) and
numbered migrations (bastion/store/sqlite/migrations, .../postgres/migrations).
Values crossing the interface are the frozen dataclasses of records.py.
Sync code (the CLI) uses `BlockingStore`, which runs the same coroutines.

The operations, by domain (each a coroutine; values are records.py's):

- targets: add_target, get_target, list_targets, remove_target
- certificates: record_certificate (serial, identity, principals, groups,
  key_fingerprint, key_id, valid_after/before, source), get_certificate,
  list_certificates, revoke_serial, revoke_identity (also refuses the
  identity new certificates), identity_revocation, lift_identity_revocation,
  revoked_among; use_token_once(key, identity, expires) -> bool (atomic:
  True only the first time on any node)
- sessions: start_session, finish_session, get_session, list_sessions,
  close_interrupted_sessions(nodes, unassigned=False)
- audit: append_audit, update_audit, list_audit, verify_chain(anchor=None),
  chain_head, record_config(sha256, detail)
- requests: create_request, get_request, request_state, heartbeat_request,
  finish_request, list_requests, approve_request, deny_request,
  expire_requests(now, stale_before), add_grant, active_grant
- alerts: add_alert, list_alerts, count_command(identity, now, outcome, window)
- screen text: index_screen, screen_index_state, unindexed_sessions, search_screen
- nodes: heartbeat, get_node, list_nodes, stale_nodes
- event feed: publish, events_after, last_event_id, prune_events, subscribe
  (an async iterator of Event: request.created, request.decided,
  certificate.revoked, session.ended, sessions.interrupted, alert.raised,
  recording.completed, config.changed)
- copying: is_empty, export_rows, import_rows, ... (bastion/store/copy.py)

Recording metadata, for the recording store (local directory or S3;
`RecordingMetadata` in base.py):

- `set_recording(session_id, location)`: where the recording is written
  (a path or an object URL); called when the session starts.
- `add_recording_chunk(session_id, seq, key, size, sha256=None) -> bool`:
  an uploaded chunk; False if chunk `seq` was noted before (idempotent).
- `recording_chunks(session_id) -> list[RecordingChunk]`, in `seq` order.
- `recordings_to_complete(node_stale_before, limit) -> list[RecordingRecord]`:
  recordings not completed whose session ended, or whose node's heartbeat
  is older than `node_stale_before` (or has none): finished or abandoned.
- `claim_recording(session_id, seconds) -> bool`: a lease so one completer
  (on any node) joins a recording at a time; re-claimable by the same node.
- `complete_recording(session_id, location, sha256, size) -> bool`: the
  joined object; sets the session's `recording` to `location`, journals
  the sha256 in the audit chain, publishes `recording.completed`; False if
  it was completed already.
- `get_recording(session_id) -> RecordingRecord | None`.
"""

from __future__ import annotations

import importlib
from urllib.parse import urlsplit

from bastion.errors import UsageError
from bastion.store.blocking import BlockingStore
from bastion.store.errors import Conflict, RequestClosed, StoreError, StoreUnavailable
from bastion.store.records import AuditEvent, CertificateRecord, SessionRecord
from bastion.store.sql.store import SqlStore

# URL scheme -> "module:class"; imported only when used (psycopg is needed only for PostgreSQL).
BACKENDS = {
    "sqlite": "bastion.store.sqlite:SqliteStore",
    "postgresql": "bastion.store.postgres:PostgresStore",
    "postgres": "bastion.store.postgres:PostgresStore",
}

Store = SqlStore


def open_store(url: str, *, node: str, create: bool = False) -> SqlStore:
    """The store for `url` (not opened yet: `await store.open()` or `BlockingStore(store)`)."""
    scheme = urlsplit(url).scheme
    target = BACKENDS.get(scheme)
    if target is None:
        raise UsageError(f"store url must start with sqlite:// or postgresql:// (got {scheme!r}:)")
    module_name, class_name = target.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"the {scheme} store needs {exc.name}: pip install 'bastion[postgresql]'"
        ) from None
    return getattr(module, class_name)(url, node=node, create=create)


__all__ = [
    "BACKENDS",
    "AuditEvent",
    "BlockingStore",
    "CertificateRecord",
    "Conflict",
    "RequestClosed",
    "SessionRecord",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "open_store",
]
