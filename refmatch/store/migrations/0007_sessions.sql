-- 7: sessions that really end, and users who can be disabled
-- session_epoch: every browser session carries the epoch its user had at sign-in; raising it
-- (sign-out, a new password, disabling) ends every session of that user at once
ALTER TABLE users ADD COLUMN session_epoch INTEGER NOT NULL DEFAULT 0;
-- disabled_at: set while the user may not sign in or use its API tokens (ISO-8601 UTC)
ALTER TABLE users ADD COLUMN disabled_at TEXT;
