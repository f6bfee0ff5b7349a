-- 10: match weights learned from past requests (refmatch weights fit); at most one is in use
CREATE TABLE weight_fits (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    weights TEXT NOT NULL,   -- JSON {setting name: weight}: w_need, w_profile, ...
    report TEXT NOT NULL,    -- JSON: requests used, held-out ROC AUC of the fitted and the hand-set weights
    in_use INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX weight_fits_one_in_use ON weight_fits (in_use) WHERE in_use = 1;
