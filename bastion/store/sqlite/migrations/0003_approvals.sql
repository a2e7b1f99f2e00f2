-- Reviews by identity: several approvers per request, grants, and liveness of the holder.
ALTER TABLE requests ADD COLUMN approvals_needed INTEGER NOT NULL DEFAULT 1;
-- The holding session refreshes this while it waits; a stale one means the session is gone.
ALTER TABLE requests ADD COLUMN heartbeat REAL;

-- One row per reviewer who approved; a request is approved when enough distinct ones have.
CREATE TABLE approvals (
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    reviewer    TEXT NOT NULL,
    decided     REAL NOT NULL,
    reason      TEXT,
    PRIMARY KEY (request_id, reviewer)
);

-- `approve --for 30m`: the same command line from the same identity on the same
-- target and login passes without another review until `expires`.
CREATE TABLE grants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    identity    TEXT NOT NULL,
    target      TEXT NOT NULL,
    login       TEXT NOT NULL,
    command     TEXT NOT NULL,
    granted_by  TEXT NOT NULL,
    created     REAL NOT NULL,
    expires     REAL NOT NULL
);
CREATE INDEX grants_lookup ON grants (identity, target, login, command);
