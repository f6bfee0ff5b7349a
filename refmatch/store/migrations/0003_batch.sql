-- 3: batch runs (refmatch/batch): parameters and versions, the seekers each run covered,
-- and per-partition checkpoints so that an interrupted run resumes where it stopped.
-- A run's matches go to the `matches` table under its run_id.

CREATE TABLE batch_runs (
    id INTEGER PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('running', 'failed', 'done')),
    stage TEXT NOT NULL,             -- the stage it is in, or stopped in
    params TEXT NOT NULL,            -- JSON: purposes, k, as_of, mode, depth, caps, partition size
    model TEXT NOT NULL,
    data_version INTEGER NOT NULL,   -- the data it matched; a resume refuses any other
    index_versions TEXT NOT NULL,    -- JSON: per index, built_at, data_version, count, sha256
    seekers INTEGER NOT NULL DEFAULT 0,
    partitions INTEGER NOT NULL DEFAULT 0,
    report TEXT,                     -- JSON: coverage, advocate load, score against greedy
    error TEXT,
    export_path TEXT,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    resumes INTEGER NOT NULL DEFAULT 0
);

-- the run's plan: every seeker, in order, with its partition; results per seeker
CREATE TABLE batch_seekers (
    run_id INTEGER NOT NULL REFERENCES batch_runs (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    part INTEGER NOT NULL,
    purpose TEXT NOT NULL,
    account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    eligible INTEGER,                -- advocates eligible for it (after the search)
    matched INTEGER,                 -- matches it got (after the write)
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;
CREATE INDEX batch_seekers_part ON batch_seekers (run_id, part);

-- one row per finished (phase, partition): search (candidates, as data), assign
-- (the chosen candidates, as data), write (its matches are in `matches`)
CREATE TABLE batch_partitions (
    run_id INTEGER NOT NULL REFERENCES batch_runs (id) ON DELETE CASCADE,
    phase TEXT NOT NULL CHECK (phase IN ('search', 'assign', 'write')),
    part INTEGER NOT NULL,
    data BLOB,                       -- dropped when the run is done
    done_at TEXT NOT NULL,
    PRIMARY KEY (run_id, phase, part)
);

CREATE INDEX matches_run_seeker ON matches (run_id, purpose, seeker_account_id, rank);
