-- 2: risk: the latest scores, risk episodes, churn events and fitted models (refmatch/risk)

-- one row per account: its score as of the last `risk update` (or import), read by matching
CREATE TABLE risk_scores (
    account_id INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    as_of TEXT NOT NULL,
    score REAL NOT NULL,
    level TEXT NOT NULL CHECK (level IN ('low', 'medium', 'high')),
    at_risk INTEGER NOT NULL,
    churned INTEGER NOT NULL DEFAULT 0,
    troubles TEXT NOT NULL DEFAULT '[]',  -- JSON list, the troubles of the rules that fired
    reasons TEXT NOT NULL DEFAULT '[]',   -- JSON list of {rule, trouble, points, text}
    computed_at TEXT NOT NULL
);
CREATE INDEX risk_scores_at_risk ON risk_scores (at_risk);

-- a stretch of time an account was at risk: entered, why, and how it ended
CREATE TABLE risk_episodes (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    entered_on TEXT NOT NULL,
    ended_on TEXT,
    outcome TEXT NOT NULL CHECK (outcome IN ('open', 'resolved', 'churned')),
    peak_score REAL NOT NULL,
    peak_level TEXT NOT NULL,
    last_score REAL NOT NULL,
    rules TEXT NOT NULL DEFAULT '[]',     -- JSON list: every rule that fired during the episode
    troubles TEXT NOT NULL DEFAULT '[]',  -- JSON list: their troubles
    reasons TEXT NOT NULL DEFAULT '[]',   -- JSON list: the reasons when it entered
    updated_at TEXT NOT NULL
);
CREATE INDEX risk_episodes_account ON risk_episodes (account_id, outcome);
CREATE UNIQUE INDEX risk_episodes_one_open ON risk_episodes (account_id) WHERE outcome = 'open';

-- labelled history: when an account was lost (refmatch risk churn import)
CREATE TABLE churn_events (
    id INTEGER PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    churned_on TEXT NOT NULL,
    reason TEXT,
    UNIQUE (account_id, churned_on)
);

-- each `refmatch risk fit`: the model's coefficients and how it did against the rules
CREATE TABLE risk_models (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    as_of TEXT NOT NULL,
    horizon_days INTEGER NOT NULL,
    report TEXT NOT NULL  -- JSON: features, coefficients, metrics, verdict
);

-- the date the stored scores and episodes are as of, and the rules (digest and source) they followed
INSERT INTO meta (key, value) VALUES ('risk_checkpoint', ''), ('risk_config', '');
