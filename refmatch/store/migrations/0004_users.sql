-- 4: users, API tokens, and what the reference-request workflow needs
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE COLLATE NOCASE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('sales', 'cs', 'reference_manager', 'admin')),
    display_name TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- bearer tokens are stored as their sha256; the plaintext is shown once, at creation
CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at TEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

ALTER TABLE reference_requests ADD COLUMN requested_by_user_id INTEGER REFERENCES users (id);
ALTER TABLE reference_requests ADD COLUMN scheduled_for TEXT;
CREATE INDEX reference_requests_requester ON reference_requests (requested_by_user_id);
CREATE INDEX reference_requests_status ON reference_requests (status, created_at);
CREATE INDEX request_events_request ON request_events (request_id);

-- the audit trail is append-only
CREATE TRIGGER request_events_no_update BEFORE UPDATE ON request_events
BEGIN
    SELECT RAISE(ABORT, 'request_events is append-only');
END;
CREATE TRIGGER request_events_no_delete BEFORE DELETE ON request_events
BEGIN
    SELECT RAISE(ABORT, 'request_events is append-only');
END;
