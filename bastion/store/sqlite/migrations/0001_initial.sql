-- Targets the bastion may relay to; upstream host keys are always pinned.
CREATE TABLE targets (
    name        TEXT PRIMARY KEY,
    host        TEXT NOT NULL,
    port        INTEGER NOT NULL,
    host_key    TEXT,            -- OpenSSH public key line, pinned
    host_ca     TEXT,            -- or an OpenSSH CA public key line
    labels      TEXT NOT NULL DEFAULT '{}',
    created     REAL NOT NULL,
    CHECK (host_key IS NOT NULL OR host_ca IS NOT NULL)
);

-- Every user certificate the bastion signed, so serials can be listed and revoked.
CREATE TABLE certificates (
    serial          INTEGER PRIMARY KEY,
    identity        TEXT NOT NULL,
    principals      TEXT NOT NULL,   -- JSON list
    groups          TEXT NOT NULL,   -- JSON list
    key_fingerprint TEXT NOT NULL,
    valid_after     REAL NOT NULL,
    valid_before    REAL NOT NULL,
    issued          REAL NOT NULL,
    source          TEXT NOT NULL,   -- "cli", "oidc:<issuer>"
    revoked         REAL
);
CREATE INDEX certificates_identity ON certificates (identity);

-- One row per channel session relayed to a target.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    identity    TEXT NOT NULL,
    serial      INTEGER,
    login       TEXT NOT NULL,
    target      TEXT NOT NULL,
    kind        TEXT NOT NULL,       -- exec | shell | subsystem
    command     TEXT,
    peer        TEXT,
    started     REAL NOT NULL,
    ended       REAL,
    exit_status INTEGER,
    exit_signal TEXT,
    bytes_in    INTEGER NOT NULL DEFAULT 0,
    bytes_out   INTEGER NOT NULL DEFAULT 0,
    recording   TEXT,
    error       TEXT
);
CREATE INDEX sessions_started ON sessions (started);

-- Commands (exec strings and lines entered in shells) and connection events.
CREATE TABLE audit (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    time        REAL NOT NULL,
    kind        TEXT NOT NULL,       -- exec | line | subsystem | refused | upstream-error
    session_id  TEXT,
    identity    TEXT,
    target      TEXT,
    login       TEXT,
    command     TEXT,
    certain     INTEGER,             -- shell lines: did the terminal model trust what it saw
    decision    TEXT,
    rule        TEXT,
    started     REAL,
    ended       REAL,
    exit_status INTEGER,
    bytes_in    INTEGER,
    bytes_out   INTEGER,
    detail      TEXT
);
CREATE INDEX audit_session ON audit (session_id);
