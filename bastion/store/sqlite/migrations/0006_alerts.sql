-- Alerts raised by bastion/alerts.py: stored, logged, and sent to the optional webhook.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    time        REAL NOT NULL,
    kind        TEXT NOT NULL,    -- rule | denied-streak | burst | forward-refused | output-volume
    identity    TEXT,
    session_id  TEXT,
    target      TEXT,
    rule        TEXT,
    command     TEXT,
    detail      TEXT NOT NULL
);
CREATE INDEX alerts_time ON alerts (time);
