"""Score every account and record risk episodes: when an account entered risk, why, and
whether it recovered or churned.

Episodes are what makes an advocate's history useful: an account that was at risk for
falling usage and recovered is the peer an account with falling usage now should meet.
They come from replaying the scores at a fixed cadence over the signal history, once,
then incrementally from the last checkpoint; older signals arriving later (or --rebuild)
replay the whole history, so the episodes always follow from the data and the rules.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np

from refmatch.config import Settings
from refmatch.domain import clock
from refmatch.risk.config import LEVELS, RiskConfig, load_config
from refmatch.risk.rules import Scores, score_accounts
from refmatch.risk.signals import AccountFrame, SignalTable, day_text, load_accounts, load_signals, ordinal
from refmatch.store.repo import now_iso

RISK_INPUTS = ("accounts", "signals")  # imports after which the scores are recomputed


@dataclass
class UpdateReport:
    as_of: str
    checkpoints: int
    rebuilt: bool
    scored: int
    levels: dict[str, int]
    at_risk: int
    opened: int = 0
    resolved: int = 0
    churned: int = 0
    open_episodes: int = 0
    config: str = "defaults"

    def summary(self) -> str:
        how = "replayed from the start" if self.rebuilt else "incremental"
        levels = ", ".join(f"{self.levels[name]} {name}" for name in reversed(LEVELS))
        return (
            f"risk as of {self.as_of}: {self.scored} accounts scored ({levels}); {self.at_risk} at risk. "
            f"Episodes: {self.opened} opened, {self.resolved} resolved, {self.churned} churned, "
            f"{self.open_episodes} open now ({self.checkpoints} checkpoint{'s' * (self.checkpoints != 1)}, {how}; "
            f"rules: {self.config})"
        )

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class _Episode:
    row: int
    entered: int
    peak_score: float
    peak_level: str
    last_score: float
    rules: dict[str, None] = field(default_factory=dict)  # ordered set
    troubles: dict[str, None] = field(default_factory=dict)
    reasons: list[dict[str, Any]] = field(default_factory=list)
    id: int | None = None
    ended: int = 0
    outcome: str = "open"


def _checkpoint(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'risk_checkpoint'").fetchone()
    return ordinal(row[0]) if row and row[0] else 0


def _open_episodes(conn: sqlite3.Connection, accounts: AccountFrame) -> dict[int, _Episode]:
    out = {}
    for eid, account_id, entered, peak, peak_level, last, rules, troubles, reasons in conn.execute(
        "SELECT id, account_id, entered_on, peak_score, peak_level, last_score, rules, troubles, reasons "
        "FROM risk_episodes WHERE outcome = 'open'"
    ):
        row = int(np.searchsorted(accounts.ids, account_id))
        out[row] = _Episode(
            row,
            ordinal(entered),
            peak,
            peak_level,
            last,
            dict.fromkeys(json.loads(rules)),
            dict.fromkeys(json.loads(troubles)),
            json.loads(reasons),
            id=eid,
        )
    return out


def _advance(open_: dict[int, _Episode], done: list[_Episode], scores: Scores, day: int) -> None:
    """Move every episode one checkpoint on: close the recovered and the churned, open the new."""
    at_risk = scores.at_risk
    _, churn_day = scores.accounts.churn.at(scores.accounts.n, day)
    for row, ep in list(open_.items()):
        if churn_day[row] >= ep.entered:
            ep.outcome, ep.ended = "churned", int(churn_day[row])
        elif not at_risk[row]:
            ep.outcome, ep.ended = "resolved", day
        else:
            score = float(scores.score[row])
            ep.last_score = score
            if score > ep.peak_score:
                ep.peak_score, ep.peak_level = score, scores.level_name(row)
            ep.rules.update(dict.fromkeys(scores.rules_fired(row)))
            ep.troubles.update(dict.fromkeys(scores.troubles(row)))
            continue
        done.append(open_.pop(row))
    for row in np.flatnonzero(at_risk).tolist():
        if row not in open_:
            score = float(scores.score[row])
            open_[row] = _Episode(
                row,
                day,
                score,
                scores.level_name(row),
                score,
                dict.fromkeys(scores.rules_fired(row)),
                dict.fromkeys(scores.troubles(row)),
                [r.as_dict() for r in scores.reasons(row)],
            )


def _write_episodes(conn: sqlite3.Connection, accounts: AccountFrame, episodes: list[_Episode]) -> None:
    stamp = now_iso()
    conn.executemany(
        "INSERT OR REPLACE INTO risk_episodes (id, account_id, entered_on, ended_on, outcome, peak_score, "
        "peak_level, last_score, rules, troubles, reasons, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                ep.id,
                int(accounts.ids[ep.row]),
                day_text(ep.entered),
                day_text(ep.ended) if ep.ended else None,
                ep.outcome,
                ep.peak_score,
                ep.peak_level,
                ep.last_score,
                json.dumps(list(ep.rules)),
                json.dumps(list(ep.troubles)),
                json.dumps(ep.reasons, ensure_ascii=False),
                stamp,
            )
            for ep in episodes
        ],
    )


def write_scores(conn: sqlite3.Connection, scores: Scores) -> None:
    """Replace the stored scores with these (what matching and the at-risk list read)."""
    stamp, as_of, at_risk = now_iso(), scores.as_of.isoformat(), scores.at_risk
    rows = []
    for row in range(scores.accounts.n):
        reasons = scores.reasons(row) if scores.score[row] > 0 else []
        rows.append(
            (
                int(scores.accounts.ids[row]),
                as_of,
                float(scores.score[row]),
                scores.level_name(row),
                int(at_risk[row]),
                int(scores.churned[row]),
                json.dumps(list(dict.fromkeys(r.trouble for r in reasons))),
                json.dumps([r.as_dict() for r in reasons], ensure_ascii=False),
                stamp,
            )
        )
    conn.execute("DELETE FROM risk_scores")
    conn.executemany("INSERT INTO risk_scores VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def update(
    conn: sqlite3.Connection,
    stages: Sequence[str],
    as_of: date,
    config: RiskConfig,
    *,
    rebuild: bool = False,
    changed_from: date | str | None = None,
    data: tuple[AccountFrame, SignalTable] | None = None,
) -> UpdateReport:
    """Score as of ``as_of``, store the scores and bring the episodes up to that date.

    Runs inside the caller's transaction. ``changed_from``: the earliest date of data just
    written; history before the last checkpoint changed, so the episodes are replayed.
    """
    if data is None:
        accounts = load_accounts(conn, stages)
        data = accounts, load_signals(conn, accounts)
    accounts, signals = data
    day, last, step = ordinal(as_of), _checkpoint(conn), config.replay_every_days
    stored = conn.execute("SELECT value FROM meta WHERE key = 'risk_config'").fetchone()
    rules_changed = (stored[0] if stored else "").split(" ", 1)[0] != config.digest
    replay = rebuild or rules_changed or not last or day < last
    replay = replay or (changed_from is not None and ordinal(changed_from) < last)
    if replay:
        conn.execute("DELETE FROM risk_episodes")
        first = signals.first_day() or day
        days, open_ = list(range(min(first, day), day, step)), {}
    else:
        days, open_ = list(range(last + step, day, step)), _open_episodes(conn, accounts)
    done: list[_Episode] = []
    report = UpdateReport(as_of.isoformat(), len(days) + 1, replay, 0, {}, 0, config=config.source)
    for d in [*days, day]:
        scores = score_accounts(accounts, signals, date.fromordinal(d), config)
        _advance(open_, done, scores, d)
    _write_episodes(conn, accounts, done + list(open_.values()))
    write_scores(conn, scores)
    conn.executemany(
        "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
        [("risk_checkpoint", as_of.isoformat()), ("risk_config", f"{config.digest} {config.source}")],
    )
    live = ~scores.churned
    report.scored = int(live.sum())
    report.levels = {name: int(((scores.level == i) & live).sum()) for i, name in enumerate(LEVELS)}
    report.at_risk = int(scores.at_risk.sum())
    report.resolved = sum(ep.outcome == "resolved" for ep in done)
    report.churned = sum(ep.outcome == "churned" for ep in done)
    report.opened = sum(ep.id is None for ep in done + list(open_.values()))
    report.open_episodes = len(open_)
    return report


def after_import(
    conn: sqlite3.Connection, kind: str, records: Sequence[Mapping[str, Any]], settings: Settings
) -> UpdateReport | None:
    """The import hook: scores follow their inputs, in the import's own transaction."""
    if kind not in RISK_INPUTS:
        return None
    config = load_config(db_path=settings.db_path)
    changed = min((r["observed_on"] for r in records), default=None) if kind == "signals" else None
    return update(conn, settings.stages, clock.today(), config, changed_from=changed)
