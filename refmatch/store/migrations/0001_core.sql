-- 1: the core schema
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta (key, value) VALUES ('data_version', '0');

CREATE TABLE accounts (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    industry TEXT,
    employees INTEGER,
    size_band TEXT,
    country TEXT,
    region TEXT,
    products TEXT NOT NULL DEFAULT '[]',
    stage TEXT NOT NULL,
    stage_since TEXT,
    health REAL,
    arr REAL,
    renewal_date TEXT,
    owner TEXT,
    profile TEXT,
    do_not_match TEXT NOT NULL DEFAULT '[]',
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX accounts_stage ON accounts (stage);

CREATE TABLE stage_history (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    stage TEXT NOT NULL,
    entered_on TEXT,
    recorded_at TEXT NOT NULL
);
CREATE INDEX stage_history_account ON stage_history (account_id);

CREATE TABLE needs (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    text TEXT NOT NULL,
    text_key TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'met')),
    met_on TEXT,
    product TEXT,
    updated_at TEXT NOT NULL,
    UNIQUE (account_id, text_key)
);
CREATE INDEX needs_status ON needs (status);

CREATE TABLE advocates (
    account_id INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    consent INTEGER NOT NULL,
    reference_types TEXT NOT NULL DEFAULT '[]',
    capacity_per_quarter INTEGER,
    contact_name TEXT,
    contact_title TEXT,
    contact_email TEXT,
    blackout_until TEXT,
    topics TEXT,
    updated_at TEXT NOT NULL
);

CREATE TABLE signals (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    observed_on TEXT NOT NULL,
    kind TEXT NOT NULL,
    value REAL NOT NULL,
    UNIQUE (account_id, observed_on, kind)
);

CREATE TABLE reference_requests (
    id INTEGER PRIMARY KEY,
    seeker_account_id INTEGER REFERENCES accounts (id),
    advocate_account_id INTEGER NOT NULL REFERENCES accounts (id),
    purpose TEXT NOT NULL,
    reference_type TEXT,
    status TEXT NOT NULL,
    requested_by TEXT,
    note TEXT,
    override_reason TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    approved_at TEXT,
    completed_at TEXT,
    rating INTEGER,
    deal_outcome TEXT,
    influenced_arr REAL
);
CREATE INDEX reference_requests_advocate ON reference_requests (advocate_account_id, status);

CREATE TABLE request_events (
    id INTEGER PRIMARY KEY,
    request_id INTEGER NOT NULL REFERENCES reference_requests (id),
    at TEXT NOT NULL,
    actor TEXT,
    from_status TEXT,
    to_status TEXT NOT NULL,
    note TEXT
);

CREATE TABLE matches (
    id INTEGER PRIMARY KEY,
    run_id INTEGER,
    seeker_account_id INTEGER REFERENCES accounts (id) ON DELETE CASCADE,
    advocate_account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    rank INTEGER NOT NULL,
    score REAL NOT NULL,
    components TEXT NOT NULL,
    reasons TEXT NOT NULL,
    model TEXT NOT NULL,
    data_version INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE embeddings (
    model TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (model, content_hash)
) WITHOUT ROWID;
