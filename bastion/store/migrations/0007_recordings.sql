-- Where each session's recording lives, written by the recording store (bastion/recordings/).
-- Only the recording store interprets `store` and `key`; a local recording is
-- ('local', 'ID.cast') under <state>/recordings, an S3 one ('s3://bucket/prefix', 'ID.cast').
CREATE TABLE recordings (
    session_id    TEXT PRIMARY KEY,
    store         TEXT NOT NULL,
    key           TEXT NOT NULL,
    node          TEXT NOT NULL,     -- the process that spools it
    state         TEXT NOT NULL,     -- open | closed | complete
    started       REAL NOT NULL,
    closed        REAL,              -- the writer finished (session end, or recording failed)
    length        INTEGER,           -- bytes of whole lines the writer wrote (known once closed)
    uploaded      INTEGER NOT NULL DEFAULT 0,  -- bytes in create-only chunks so far
    chunks        INTEGER NOT NULL DEFAULT 0,
    size          INTEGER,           -- the completed object
    sha256        TEXT,
    completed     REAL,
    claimed_by    TEXT,              -- a completer's lease
    claimed_until REAL,
    error         TEXT
);
CREATE INDEX recordings_pending ON recordings (store, state);
CREATE TABLE recording_chunks (
    session_id TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    start      INTEGER NOT NULL,  -- byte offset of the chunk in the recording
    length     INTEGER NOT NULL,
    stored     REAL NOT NULL,
    PRIMARY KEY (session_id, seq)
);
-- Each serving process says it is alive; one silent past [recordings] abandon_after
-- has abandoned its open recordings, which any other node then completes.
CREATE TABLE recording_node_heartbeats (
    node TEXT PRIMARY KEY,
    seen REAL NOT NULL
);
-- Recordings made before this table existed were local files at <state>/recordings/ID.cast.
INSERT INTO recordings (session_id, store, key, node, state, started, closed)
    SELECT id, 'local', id || '.cast', 'before-0007', 'complete', started, ended
    FROM sessions WHERE recording IS NOT NULL;
ALTER TABLE sessions DROP COLUMN recording;
