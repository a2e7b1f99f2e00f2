-- What sessions put on screen, for `bastion search` (filled after each session ends).
CREATE VIRTUAL TABLE screen_text USING fts5 (
    text,
    session_id UNINDEXED,
    at UNINDEXED                 -- seconds into the session of the chunk's first line
);
CREATE TABLE screen_indexed (
    session_id    TEXT PRIMARY KEY,
    indexed       REAL NOT NULL,
    lines         INTEGER NOT NULL,
    skipped_chars INTEGER NOT NULL,  -- output past the indexing budget, not indexed
    error         TEXT
);
