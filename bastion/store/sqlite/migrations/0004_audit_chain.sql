-- A journal of every write to `audit`, each entry hashing the one before it
-- (bastion/store/audit_chain.py). `bastion audit verify` replays it.
CREATE TABLE audit_chain (
    seq       INTEGER PRIMARY KEY AUTOINCREMENT,
    audit_id  INTEGER NOT NULL,
    op        TEXT NOT NULL,      -- insert | update
    fields    TEXT NOT NULL,      -- canonical JSON of the fields written
    prev      TEXT NOT NULL,
    hash      TEXT NOT NULL
);
