-- Commands held by a `review` rule until a human decides or the request expires.
CREATE TABLE requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    identity    TEXT NOT NULL,
    target      TEXT NOT NULL,
    login       TEXT NOT NULL,
    command     TEXT NOT NULL,
    rule        TEXT,
    session_id  TEXT,
    created     REAL NOT NULL,
    expires     REAL NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',   -- pending | approved | denied | expired | cancelled
    decided     REAL,
    reviewer    TEXT,
    reason      TEXT
);
CREATE INDEX requests_state ON requests (state);
