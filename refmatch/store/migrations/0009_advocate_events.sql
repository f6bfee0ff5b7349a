-- 9: changes to an advocate made in the app (consent, reference types, capacity, blackout, do-not-match),
-- each with who, when, the old and the new value; append-only, like request_events
CREATE TABLE advocate_events (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    field TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT,
    note TEXT
);
CREATE INDEX advocate_events_account ON advocate_events (account_id, id);

CREATE TRIGGER advocate_events_no_update BEFORE UPDATE ON advocate_events
BEGIN
    SELECT RAISE(ABORT, 'advocate_events is append-only');
END;
