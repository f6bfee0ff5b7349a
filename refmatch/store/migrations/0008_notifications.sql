-- 8: notifications through a durable outbox, where people can be reached, and request due dates

-- where a user can be reached: an e-mail address, and a Slack member id (U0123ABCD) for direct messages
ALTER TABLE users ADD COLUMN email TEXT;
ALTER TABLE users ADD COLUMN slack_user_id TEXT;

-- what a user does not want, per event and channel; absent means wanted
CREATE TABLE notify_muted (
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    channel TEXT NOT NULL,
    PRIMARY KEY (user_id, event, channel)
);

-- a request is due this long after it was made (the setting request_turnaround_hours, when made);
-- overdue_notified_at: when reference managers were told it is late (once)
ALTER TABLE reference_requests ADD COLUMN due_at TEXT;
ALTER TABLE reference_requests ADD COLUMN overdue_notified_at TEXT;
UPDATE reference_requests SET due_at = strftime('%Y-%m-%dT%H:%M:%S+00:00', created_at, '+72 hours')
    WHERE due_at IS NULL;
CREATE INDEX reference_requests_due ON reference_requests (status, due_at);

-- one row per message to deliver, written in the transaction of the change that causes it;
-- a delivery worker claims due rows (claimed_until: a lease, so a crashed worker's claim expires),
-- sends them, and marks them sent, or schedules the next attempt (back-off), or failed after the last
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    event TEXT NOT NULL,
    request_id INTEGER REFERENCES reference_requests (id) ON DELETE SET NULL,
    channel TEXT NOT NULL CHECK (channel IN ('email', 'webhook', 'slack')),
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    claimed_until TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    sent_at TEXT
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at);
