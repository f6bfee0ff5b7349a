-- 5: failed web sign-ins, for throttling (bookkeeping: written without bumping data_version)
-- key: 'user:' + the casefolded username, or 'addr:' + the client address; at: ISO-8601 UTC
CREATE TABLE login_failures (
    key TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX login_failures_key_at ON login_failures (key, at);
