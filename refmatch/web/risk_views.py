"""What the at-risk and onboarding views (API and UI) show: one page of accounts, each with its top peers.

Only the accounts of the page asked for are matched (k each), so a page costs ``limit``
matches whatever the number of accounts at risk.
"""

from __future__ import annotations

from typing import Any

from refmatch.app import risk as risk_service
from refmatch.app.service import Service
from refmatch.risk import LEVELS
from refmatch.web.state import WebState

PEERS = 3  # peers shown for each account
TREND_KINDS = ("health", "usage")  # the signal a sparkline draws: the first one an account has


def bring_current(state: WebState) -> None:
    """Bring the stored risk scores up to today (a write, so under the process's write lock)."""
    with state.writing() as svc:
        risk_service.ensure_current(svc)


def _marks(values: list[Any]) -> str:
    return ",".join("?" * len(values))


def renewal_dates(svc: Service, external_ids: list[str]) -> dict[str, str | None]:
    if not external_ids:
        return {}
    rows = svc.conn.execute(
        f"SELECT external_id, renewal_date FROM accounts WHERE external_id IN ({_marks(external_ids)})", external_ids
    )
    return {e: d or None for e, d in rows}


def trends(svc: Service, external_ids: list[str], points: int = 30) -> dict[str, dict[str, Any]]:
    """{external_id: {"kind", "points": [[date, value], ...]}}: the latest ``points`` of health (else usage)."""
    if not external_ids:
        return {}
    found: dict[str, dict[str, list[list[Any]]]] = {}
    rows = svc.conn.execute(
        "SELECT a.external_id, s.kind, s.observed_on, s.value FROM signals s JOIN accounts a ON a.id = s.account_id "
        f"WHERE a.external_id IN ({_marks(external_ids)}) AND s.kind IN ({_marks(list(TREND_KINDS))}) "
        "ORDER BY s.observed_on",
        [*external_ids, *TREND_KINDS],
    )
    for external_id, kind, day, value in rows:
        found.setdefault(external_id, {}).setdefault(kind, []).append([day, float(value)])
    out = {}
    for external_id, kinds in found.items():
        kind = next(k for k in TREND_KINDS if k in kinds)
        out[external_id] = {"kind": kind, "points": kinds[kind][-points:]}
    return out


def at_risk_page(svc: Service, *, level: str | None, limit: int, offset: int) -> tuple[list[dict[str, Any]], int, str]:
    """(items, total, level): accounts at ``level`` or above, riskiest first, each with renewal date and top peers.

    Raises ``InvalidInput`` naming ``level`` for an unknown level. Call ``bring_current`` first.
    """
    listing = risk_service.risk_list(svc, level=level, limit=offset + limit)
    total = sum(listing.counts.get(name, 0) for name in LEVELS[LEVELS.index(listing.level) :])
    shown = listing.accounts[offset : offset + limit]
    renewals = renewal_dates(svc, [a.external_id for a in shown])
    items = []
    for account in shown:
        result = svc.match_account(account.external_id, purpose="retention", k=PEERS)
        items.append(
            {
                **account.as_dict(),
                "renewal_date": renewals.get(account.external_id),
                "matches": [m.as_dict() for m in result.matches],
            }
        )
    return items, total, listing.level


def onboarding_page(
    svc: Service, *, limit: int, offset: int, stage: str = "onboarding"
) -> tuple[list[dict[str, Any]], int]:
    """(items, total): accounts in ``stage``, longest there first, each with its top mentors."""
    if stage not in svc.settings.stages:
        return [], 0
    (total,) = svc.conn.execute("SELECT count(*) FROM accounts WHERE stage = ?", (stage,)).fetchone()
    rows = svc.conn.execute(
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
            "matches": [m.as_dict() for m in svc.match_account(e, purpose="mentor", k=PEERS).matches],
        }
        for e, n, since, renewal in rows
    ]
    return items, total


def risk_of(svc: Service, external_id: str) -> dict[str, Any] | None:
    """The account's stored risk when it is at risk (for the account page), else None."""
    for account in risk_service.risk_list(svc).accounts:
        if account.external_id == external_id:
            return account.as_dict()
    return None
