-- Why a command was held, as the reviewer needs it: for a command the bastion does not
-- understand, the exact word, option or feature and why; else the capabilities it found.
ALTER TABLE requests ADD COLUMN explanation TEXT;
