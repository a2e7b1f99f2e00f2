-- Several nodes on one store (issue 13) and a chain over more than the audit table (issue 15).

-- The node that served a session, and whose restart ends its open sessions.
ALTER TABLE sessions ADD COLUMN node TEXT;
CREATE INDEX sessions_open ON sessions (node) WHERE ended IS NULL;
ALTER TABLE requests ADD COLUMN node TEXT;

-- What a presented certificate must match besides its serial; who revoked it.
ALTER TABLE certificates ADD COLUMN key_id TEXT;
ALTER TABLE certificates ADD COLUMN revoked_by TEXT;

-- The chain journals writes to several tables: the table and the row's key (as text).
CREATE TABLE audit_chain_new (
    seq       INTEGER PRIMARY KEY,
    tbl       TEXT NOT NULL,
    row_key   TEXT NOT NULL,
    op        TEXT NOT NULL,      -- insert | update | delete
    fields    TEXT NOT NULL,      -- canonical JSON of the fields written
    prev      TEXT NOT NULL,
    hash      TEXT NOT NULL
);
INSERT INTO audit_chain_new (seq, tbl, row_key, op, fields, prev, hash)
    SELECT seq, 'audit', CAST(audit_id AS TEXT), op, fields, prev, hash FROM audit_chain;
DROP TABLE audit_chain;
ALTER TABLE audit_chain_new RENAME TO audit_chain;
CREATE INDEX audit_chain_row ON audit_chain (tbl, row_key);

-- The chain's head: writers update this one row first, which serialises them.
CREATE TABLE audit_head (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    seq   INTEGER NOT NULL,
    hash  TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1,
    COALESCE((SELECT MAX(seq) FROM audit_chain), 0),
    COALESCE((SELECT hash FROM audit_chain ORDER BY seq DESC LIMIT 1),
             '0000000000000000000000000000000000000000000000000000000000000000'));

-- An identity revoked as a whole: no new certificate until an operator lifts it.
CREATE TABLE identity_revocations (
    identity   TEXT PRIMARY KEY,
    time       REAL NOT NULL,
    by_whom    TEXT,
    lifted     REAL,
    lifted_by  TEXT
);

-- Tokens already exchanged for a certificate (jti, or a hash of the token).
CREATE TABLE token_uses (
    token     TEXT PRIMARY KEY,
    identity  TEXT NOT NULL,
    expires   REAL NOT NULL,
    used      REAL NOT NULL,
    node      TEXT
);
CREATE INDEX token_uses_expires ON token_uses (expires);

-- Bastion nodes sharing this store, and when each last said it was alive.
CREATE TABLE nodes (
    name       TEXT PRIMARY KEY,
    host       TEXT NOT NULL,
    pid        INTEGER NOT NULL,
    started    REAL NOT NULL,
    heartbeat  REAL NOT NULL,
    address    TEXT
);

-- The ordered event feed, written in the transaction of the change it announces.
CREATE TABLE outbox (
    id       INTEGER PRIMARY KEY,
    time     REAL NOT NULL,
    kind     TEXT NOT NULL,
    ref      TEXT,
    node     TEXT,
    payload  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX outbox_time ON outbox (time);
CREATE TABLE outbox_head (
    one  INTEGER PRIMARY KEY CHECK (one = 1),
    id   INTEGER NOT NULL
);
INSERT INTO outbox_head (one, id) VALUES (1, 0);

-- Alert counters every node adds to: denial streaks and the burst window.
CREATE TABLE alert_streaks (
    identity  TEXT PRIMARY KEY,
    denied    INTEGER NOT NULL
);
CREATE TABLE alert_window (
    identity  TEXT NOT NULL,
    time      REAL NOT NULL
);
CREATE INDEX alert_window_identity ON alert_window (identity, time);

-- Where each recording lives, its uploaded chunks, and its completion.
CREATE TABLE recordings (
    session_id   TEXT PRIMARY KEY,
    location     TEXT,
    node         TEXT,
    completed    REAL,
    sha256       TEXT,
    size         INTEGER,
    claimed_by   TEXT,
    claim_until  REAL
);
CREATE TABLE recording_chunks (
    session_id  TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    key         TEXT NOT NULL,
    size        INTEGER NOT NULL,
    sha256      TEXT,
    uploaded    REAL NOT NULL,
    PRIMARY KEY (session_id, seq)
);

-- The configuration (bastion.toml and the policies it names) each node started with.
CREATE TABLE config_changes (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    time    REAL NOT NULL,
    node    TEXT,
    sha256  TEXT NOT NULL,
    detail  TEXT NOT NULL
);
