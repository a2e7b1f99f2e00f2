-- Why a command was held, as the reviewer needs it (issue 10): for a command the bastion
-- does not understand, the exact word, option or feature and why; else what it found.
ALTER TABLE requests ADD COLUMN explanation TEXT;
