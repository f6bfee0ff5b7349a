"""Risk for every shell: what the CLI, the API, the UI and the batch job call.

Each function takes a ``refmatch.app.service.Service`` and returns dataclasses with
``as_dict()`` or plain dicts, so a shell only parses its input and renders. Bad input
raises the domain errors (``InvalidInput`` naming the field, ``NotFound``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

from refmatch import importing
from refmatch.app.service import ImportReport, Service
from refmatch.domain import clock
from refmatch.domain.errors import Conflict, InvalidInput, NotFound
from refmatch.domain.limits import check_page
from refmatch.domain.models import MatchResult
from refmatch.risk import LEVELS, RiskConfig, Scores, load_accounts, load_config, load_signals, score_accounts
from refmatch.risk import update as update_risk
from refmatch.risk.churn import upsert_churn
from refmatch.risk.config import defaults_text, user_file_for
from refmatch.risk.episodes import UpdateReport
from refmatch.risk.fit import FitReport, fit_history
from refmatch.store import transaction
from refmatch.store.repo import now_iso

PEERS = 3  # peers shown for each account in the at-risk and onboarding pages
TREND_KINDS = ("health", "usage")  # the signal a sparkline draws: the first one an account has


def parse_day(value: date | str | None, name: str = "as_of") -> date:
    """A date argument: a ``date``, an ISO ``YYYY-MM-DD`` string, or None for today."""
    if value is None or value == "":
        return clock.today()
    if isinstance(value, date):
        return value
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
    except ValueError:
        pass
    raise InvalidInput(f"{name}: not a valid date (expected YYYY-MM-DD): {value!r}")


def _level(value: str | None, config: RiskConfig) -> str:
    level = value or config.at_risk
    if level not in LEVELS:
        raise InvalidInput(f"level: must be one of {', '.join(LEVELS)}, got {value!r}")
    return level


def risk_config(service: Service, config_path: str | Path | None = None) -> RiskConfig:
    """The rules in force: ``config_path``, else ``risk.toml`` beside the database, else the packaged defaults."""
    return load_config(config_path, db_path=service.settings.db_path)


def config_info(service: Service, config_path: str | Path | None = None) -> dict[str, Any]:
    """The effective rules (source, levels, every rule's points, thresholds and trouble)."""
    return risk_config(service, config_path).as_dict()


def init_config(service: Service, *, force: bool = False) -> Path:
    """Write the documented defaults to ``risk.toml`` beside the database, for editing."""
    target = user_file_for(service.settings.db_path)
    if target.exists() and not force:
        raise Conflict(f"{target} exists already (use --force to overwrite it)")
    target.write_text(defaults_text(), encoding="utf-8")
    return target


@dataclass
class AccountRisk:
    external_id: str
    name: str
    stage: str
    score: float
    level: str
    at_risk: bool
    churned: bool
    troubles: list[str]
    reasons: list[dict[str, Any]]
    at_risk_since: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "score": round(self.score, 1)}


@dataclass
class RiskList:
    as_of: str
    config: str
    counts: dict[str, int]
    at_risk: int
    level: str
    accounts: list[AccountRisk] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "accounts": [a.as_dict() for a in self.accounts]}


def score_now(service: Service, as_of: date | str | None = None, config_path: str | Path | None = None) -> Scores:
    """Score every account as of a date from the stored signals (nothing is written)."""
    accounts = load_accounts(service.conn, service.settings.stages)
    return score_accounts(
        accounts, load_signals(service.conn, accounts), parse_day(as_of), risk_config(service, config_path)
    )


def _open_since(service: Service, scores: Scores) -> dict[int, str]:
    """Open episodes' start dates, when the stored episodes describe this as-of date."""
    row = service.conn.execute("SELECT value FROM meta WHERE key = 'risk_checkpoint'").fetchone()
    if not row or row[0] != scores.as_of.isoformat():
        return {}
    return dict(service.conn.execute("SELECT account_id, entered_on FROM risk_episodes WHERE outcome = 'open'"))


def _account_risk(scores: Scores, row: int, since: dict[int, str]) -> AccountRisk:
    frame = scores.accounts
    reasons = scores.reasons(row)
    return AccountRisk(
        frame.external_ids[row],
        frame.names[row],
        frame.stage_now[row],
        float(scores.score[row]),
        scores.level_name(row),
        bool(scores.at_risk[row]),
        bool(scores.churned[row]),
        list(dict.fromkeys(r.trouble for r in reasons)),
        [r.as_dict() for r in reasons],
        since.get(int(frame.ids[row])),
    )


def risk_list(
    service: Service,
    *,
    as_of: date | str | None = None,
    level: str | None = None,
    config_path: str | Path | None = None,
    limit: int | None = None,
) -> RiskList:
    """Accounts at ``level`` or above (default: the at-risk level) as of a date, riskiest first.

    As of today with the configured rules, the stored scores are read (brought up to date
    first if they are not); any other date or rules file is scored from the signals.
    """
    if limit is not None and limit < 1:
        raise InvalidInput(f"limit: must be at least 1, got {limit}")
    if parse_day(as_of) == clock.today() and config_path is None:
        ensure_current(service)
        return _stored_list(service, _level(level, risk_config(service)), limit)
    scores = score_now(service, as_of, config_path)
    level = _level(level, scores.config)
    live = ~scores.churned
    shown = np.flatnonzero(live & (scores.level >= LEVELS.index(level)))
    shown = shown[np.lexsort((np.array(scores.accounts.names, dtype=object)[shown], -scores.score[shown]))]
    since = _open_since(service, scores)
    return RiskList(
        scores.as_of.isoformat(),
        scores.config.source,
        {name: int(((scores.level == i) & live).sum()) for i, name in enumerate(LEVELS)},
        int(scores.at_risk.sum()),
        level,
        [_account_risk(scores, int(r), since) for r in shown[:limit]],
    )


_STORED = (
    "SELECT a.external_id, a.name, a.stage, r.score, r.level, r.at_risk, r.churned, r.troubles, r.reasons, "
    "e.entered_on FROM risk_scores r JOIN accounts a ON a.id = r.account_id "
    "LEFT JOIN risk_episodes e ON e.account_id = r.account_id AND e.outcome = 'open'"
)


def _stored(row: tuple) -> AccountRisk:
    e, n, stage, score, level, at_risk, churned, troubles, reasons, since = row
    return AccountRisk(
        e, n, stage, score, level, bool(at_risk), bool(churned), json.loads(troubles), json.loads(reasons), since
    )


def _stored_list(service: Service, level: str, limit: int | None) -> RiskList:
    levels = LEVELS[LEVELS.index(level) :]
    marks = ",".join("?" * len(levels))
    counts = dict.fromkeys(LEVELS, 0)
    counts.update(service.conn.execute("SELECT level, count(*) FROM risk_scores WHERE NOT churned GROUP BY level"))
    as_of, source, at_risk = service.conn.execute(
        "SELECT (SELECT value FROM meta WHERE key = 'risk_checkpoint'), (SELECT value FROM meta WHERE key = "
        "'risk_config'), (SELECT count(*) FROM risk_scores WHERE at_risk)"
    ).fetchone()
    rows = service.conn.execute(
        f"{_STORED} WHERE r.level IN ({marks}) AND NOT r.churned ORDER BY r.score DESC, a.name LIMIT ?",
        (*levels, -1 if limit is None else limit),
    )
    return RiskList(as_of or "", (source or "").split(" ", 1)[-1], counts, at_risk, level, [_stored(r) for r in rows])


def account_risk(
    service: Service, external_id: str, *, as_of: date | str | None = None, config_path: str | Path | None = None
) -> dict[str, Any]:
    """One account's risk page: score, level, reasons, every rule's measured value, its episodes and signals."""
    scores = score_now(service, as_of, config_path)
    frame = scores.accounts
    try:
        row = frame.external_ids.index(external_id)
    except ValueError:
        raise NotFound(f"unknown account: {external_id!r}") from None
    signals = load_signals(service.conn, frame)
    out = _account_risk(scores, row, _open_since(service, scores)).as_dict()
    out["as_of"] = scores.as_of.isoformat()
    out["rules"] = [
        {
            "rule": o.spec.name,
            "trouble": o.spec.trouble,
            "points": o.spec.points,
            "fired": bool(o.fired[row]),
            "measure": None if np.isnan(o.measure[row]) else round(float(o.measure[row]), 2),
        }
        for o in scores.outcomes
    ]
    out["episodes"] = episodes(service, external_id=external_id)
    out["signals"] = {kind: series.of(row) for kind, series in sorted(signals.series.items())}
    return out


def episodes(service: Service, *, external_id: str | None = None, outcome: str | None = None) -> list[dict[str, Any]]:
    """Stored risk episodes, newest first: entered, ended, outcome (open / resolved / churned), rules, troubles."""
    if outcome is not None and outcome not in ("open", "resolved", "churned"):
        raise InvalidInput(f"outcome: must be one of open, resolved, churned, got {outcome!r}")
    sql = (
        "SELECT a.external_id, a.name, e.entered_on, e.ended_on, e.outcome, e.peak_score, e.peak_level, "
        "e.last_score, e.rules, e.troubles, e.reasons FROM risk_episodes e JOIN accounts a ON a.id = e.account_id"
    )
    where, args = [], []
    if external_id is not None:
        where.append("a.external_id = ?")
        args.append(external_id)
    if outcome is not None:
        where.append("e.outcome = ?")
        args.append(outcome)
    sql += (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY e.entered_on DESC, a.external_id"
    keys = ("external_id", "name", "entered_on", "ended_on", "outcome", "peak_score", "peak_level", "last_score")
    return [
        {
            **dict(zip(keys, r[:8])),
            "rules": json.loads(r[8]),
            "troubles": json.loads(r[9]),
            "reasons_at_entry": json.loads(r[10]),
        }
        for r in service.conn.execute(sql, args)
    ]


def update(
    service: Service, *, as_of: date | str | None = None, rebuild: bool = False, config_path: str | Path | None = None
) -> UpdateReport:
    """Store the scores as of a date and bring the episodes up to it (what the nightly job runs)."""
    config = risk_config(service, config_path)
    with transaction(service.db) as conn:
        return update_risk(conn, service.settings.stages, parse_day(as_of), config, rebuild=rebuild)


def ensure_current(service: Service) -> UpdateReport | None:
    """Update the stored scores unless they are as of today and by the rules in force (matching reads them)."""
    stored = dict(service.conn.execute("SELECT key, value FROM meta WHERE key IN ('risk_checkpoint', 'risk_config')"))
    config = risk_config(service)
    current = stored.get("risk_checkpoint") == clock.today().isoformat()
    if current and stored.get("risk_config", "").split(" ", 1)[0] == config.digest:
        return None
    return update(service)


@dataclass
class RiskMatches:
    risk: AccountRisk
    result: MatchResult

    def as_dict(self) -> dict[str, Any]:
        return {**self.result.as_dict(), "risk": self.risk.as_dict()}


def _stored_risk(service: Service, external_id: str) -> AccountRisk:
    row = service.conn.execute(f"{_STORED} WHERE a.external_id = ?", (external_id,)).fetchone()
    if row is None:
        raise NotFound(f"unknown account: {external_id!r}")
    return _stored(row)


def retention_matches(service: Service, external_id: str, *, k: int | None = None) -> RiskMatches:
    """The best peers for an at-risk account, with its risk; reasons name the troubles each peer overcame."""
    ensure_current(service)
    result = service.match_account(external_id, purpose="retention", k=k)
    return RiskMatches(_stored_risk(service, external_id), result)


def mentor_matches(service: Service, external_id: str, *, k: int | None = None) -> RiskMatches:
    """Mentors for a new deployment: live on the same products, consenting to mentoring, not at risk."""
    ensure_current(service)
    result = service.match_account(external_id, purpose="mentor", k=k)
    return RiskMatches(_stored_risk(service, external_id), result)


def _marks(values: list[Any]) -> str:
    return ",".join("?" * len(values))


def renewal_dates(service: Service, external_ids: list[str]) -> dict[str, str | None]:
    if not external_ids:
        return {}
    rows = service.conn.execute(
        f"SELECT external_id, renewal_date FROM accounts WHERE external_id IN ({_marks(external_ids)})", external_ids
    )
    return {e: d or None for e, d in rows}


def _signal_points(
    service: Service, external_ids: list[str], kinds: tuple[str, ...]
) -> dict[str, dict[str, list[list[Any]]]]:
    """{external_id: {kind: [[date, value], ...] oldest first}} for the signals of ``kinds``."""
    found: dict[str, dict[str, list[list[Any]]]] = {}
    if not external_ids:
        return found
    rows = service.conn.execute(
        "SELECT a.external_id, s.kind, s.observed_on, s.value FROM signals s JOIN accounts a ON a.id = s.account_id "
        f"WHERE a.external_id IN ({_marks(external_ids)}) AND s.kind IN ({_marks(list(kinds))}) "
        "ORDER BY s.observed_on",
        [*external_ids, *kinds],
    )
    for external_id, kind, day, value in rows:
        found.setdefault(external_id, {}).setdefault(kind, []).append([day, float(value)])
    return found


def trends(service: Service, external_ids: list[str], points: int = 30) -> dict[str, dict[str, Any]]:
    """{external_id: {"kind", "points": [[date, value], ...]}}: the latest ``points`` of health (else usage)."""
    out = {}
    for external_id, kinds in _signal_points(service, external_ids, TREND_KINDS).items():
        kind = next(k for k in TREND_KINDS if k in kinds)
        out[external_id] = {"kind": kind, "points": kinds[kind][-points:]}
    return out


def timeline(service: Service, external_id: str, points: int = 24) -> dict[str, Any]:
    """An account's health and usage over time (the latest ``points`` of each) and the stretches
    it was at risk (its episodes, oldest first): what the account page charts."""
    kinds = _signal_points(service, [external_id], TREND_KINDS).get(external_id, {})
    return {
        "signals": {kind: kinds[kind][-points:] for kind in TREND_KINDS if kind in kinds},
        "episodes": episodes(service, external_id=external_id)[::-1],
    }


AT_RISK_MAX_LIMIT = 100  # each account of a page is matched: pages stay small


def at_risk_page(
    service: Service, *, level: str | None, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int, str]:
    """(items, total, level): accounts at ``level`` or above, riskiest first, each with renewal date and top peers.

    Only the accounts of the page asked for are matched (``PEERS`` each), so a page costs
    ``limit`` matches whatever the number at risk. Raises ``InvalidInput`` naming ``level``
    for an unknown level. Reads the stored scores: call ``ensure_current`` first.
    """
    check_page(limit, offset, AT_RISK_MAX_LIMIT)
    listing = risk_list(service, level=level, limit=offset + limit)
    total = sum(listing.counts.get(name, 0) for name in LEVELS[LEVELS.index(listing.level) :])
    shown = listing.accounts[offset : offset + limit]
    renewals = renewal_dates(service, [a.external_id for a in shown])
    items = []
    for account in shown:
        prospect = account.stage == service.settings.stages[0]  # scored, but not a customer to retain
        result = None if prospect else service.match_account(account.external_id, purpose="retention", k=PEERS)
        items.append(
            {
                **account.as_dict(),
                "renewal_date": renewals.get(account.external_id),
                "matches": [m.as_dict() for m in result.matches] if result else [],
            }
        )
    return items, total, listing.level


def at_risk_rows(service: Service, *, level: str | None, most: int) -> tuple[list[dict[str, Any]], bool]:
    """Every account at ``level`` or above (at most ``most``), riskiest first, with its renewal date and ARR,
    for a download: what ``at_risk_page`` lists, without its peers; and whether there were more."""
    items, total, _ = _at_risk_items(service, level, most)
    return items, total > len(items)


def _at_risk_items(service: Service, level: str | None, most: int) -> tuple[list[dict[str, Any]], int, str]:
    listing = risk_list(service, level=level, limit=most)
    total = sum(listing.counts.get(name, 0) for name in LEVELS[LEVELS.index(listing.level) :])
    ids = [a.external_id for a in listing.accounts]
    facts = {e: (d or None, arr) for e, d, arr in service.conn.execute(
        f"SELECT external_id, renewal_date, arr FROM accounts WHERE external_id IN ({_marks(ids)})", ids
    )} if ids else {}  # fmt: skip
    items = [
        {**a.as_dict(), "renewal_date": facts.get(a.external_id, (None, None))[0],
         "arr": facts.get(a.external_id, (None, None))[1]}
        for a in listing.accounts
    ]  # fmt: skip
    return items, total, listing.level


AT_RISK_SORTS = ("risk", "arr", "renewal", "name")  # the at-risk table's columns that sort it
AT_RISK_TABLE_MAX = 10_000  # accounts sorted in memory for the table


def at_risk_table(
    service: Service,
    *,
    level: str | None,
    sort: str = "risk",
    descending: bool | None = None,
    q: str | None = None,
    limit: int,
    offset: int,
) -> tuple[list[dict[str, Any]], int, str]:
    """(items, total, level): a page of the at-risk accounts as a table, without peers: filtered by ``q`` (in
    the name or id), sorted by ``sort`` (AT_RISK_SORTS): risk and ARR largest first, renewal soonest first
    and name A-Z unless ``descending`` says otherwise; unknown values last."""
    if sort not in AT_RISK_SORTS:
        raise InvalidInput(f"sort: must be one of {', '.join(AT_RISK_SORTS)}, got {sort!r}")
    check_page(limit, offset, 500)
    items, _, shown_level = _at_risk_items(service, level, AT_RISK_TABLE_MAX)
    if q:
        needle = q.casefold()
        items = [i for i in items if needle in i["name"].casefold() or needle in i["external_id"].casefold()]
    down = descending if descending is not None else sort in ("risk", "arr")
    field = {"risk": "score", "arr": "arr", "renewal": "renewal_date", "name": "name"}[sort]
    known = [i for i in items if i.get(field) is not None]
    unknown = [i for i in items if i.get(field) is None]
    key = (lambda i: i["name"].casefold()) if sort == "name" else (lambda i: i[field])
    known.sort(key=key, reverse=down)  # stable: equal values keep the riskiest-first order
    items = known + unknown
    return items[offset : offset + limit], len(items), shown_level


def onboarding_page(
    service: Service, *, limit: int, offset: int, stage: str = "onboarding"
) -> tuple[list[dict[str, Any]], int]:
    """(items, total): accounts in ``stage`` (new deployments), longest there first, each with its top mentors.

    A stage the configuration does not have holds no accounts.
    """
    if stage not in service.settings.stages:
        return [], 0
    (total,) = service.conn.execute("SELECT count(*) FROM accounts WHERE stage = ?", (stage,)).fetchone()
    rows = service.conn.execute(
        "SELECT external_id, name, stage_since, renewal_date FROM accounts WHERE stage = ? "
        "ORDER BY stage_since, external_id LIMIT ? OFFSET ?",
        (stage, limit, offset),
    ).fetchall()
    items = [
        {
            "external_id": e,
            "name": n,
            "stage_since": since,
            "renewal_date": renewal or None,
            "matches": [m.as_dict() for m in service.match_account(e, purpose="mentor", k=PEERS).matches],
        }
        for e, n, since, renewal in rows
    ]
    return items, total


def risk_of(service: Service, external_id: str) -> dict[str, Any] | None:
    """The account's stored risk when it is at risk (for the account page), else None."""
    for account in risk_list(service).accounts:
        if account.external_id == external_id:
            return account.as_dict()
    return None


def fit(
    service: Service,
    *,
    as_of: date | str | None = None,
    horizon_days: int = 90,
    test_share: float = 0.3,
    seed: int = 0,
    config_path: str | Path | None = None,
    save: bool = True,
) -> FitReport:
    """Fit a logistic regression on the churn history and compare it with the rules on held-out accounts."""
    accounts = load_accounts(service.conn, service.settings.stages)
    signals = load_signals(service.conn, accounts)
    day = parse_day(as_of)
    report = fit_history(
        accounts,
        signals,
        risk_config(service, config_path),
        day,
        horizon=horizon_days,
        test_share=test_share,
        seed=seed,
    )
    if save:
        with transaction(service.db) as conn:
            conn.execute(
                "INSERT INTO risk_models (created_at, as_of, horizon_days, report) VALUES (?, ?, ?, ?)",
                (now_iso(), report.as_of, horizon_days, json.dumps(report.as_dict())),
            )
    return report


def latest_fit(service: Service) -> dict[str, Any] | None:
    """The last saved ``fit`` report, or None."""
    row = service.conn.execute("SELECT report FROM risk_models ORDER BY id DESC LIMIT 1").fetchone()
    return json.loads(row[0]) if row else None


def import_churn(service: Service, path: str | Path, *, dry_run: bool = False) -> ImportReport:
    """Import churn events (account_external_id, churned_on, reason); episodes are replayed to end in them."""
    known = {r[0] for r in service.conn.execute("SELECT external_id FROM accounts")}
    result = importing.parse_file(path, "churn", known_accounts=known)
    records, errors, rows_read = result.records, result.errors, result.rows_read
    if errors:
        shown = "\n".join(f"  {e}" for e in errors[:20])
        more = f"\n  ... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise InvalidInput(
            f"{path}: {len(result.rejected_rows)} of {rows_read} rows are invalid; nothing was imported\n{shown}{more}",
            details=[e.__dict__ for e in errors],
        )
    report = ImportReport("churn", str(path), rows_read, dry_run=dry_run)
    config = risk_config(service)
    try:
        with transaction(service.db) as conn:
            counts = upsert_churn(conn, records)
            earliest = min((r["churned_on"] for r in records), default=None)
            update_risk(conn, service.settings.stages, clock.today(), config, changed_from=earliest)
            if dry_run:
                raise _DryRun
    except _DryRun:
        pass
    report.inserted, report.updated, report.unchanged = counts.inserted, counts.updated, counts.unchanged
    return report


class _DryRun(Exception):
    """Raised inside the transaction to undo a dry run."""
