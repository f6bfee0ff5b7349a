"""What references did: influenced ARR and deals by quarter, product and industry; advocates' acceptance,
completion and ratings; and how prospects fared with a reference and without one.

Everything is totalled from the recorded requests (``reference_requests``):

- a **deal** is a completed reference request with a deal outcome; won deals carry the influenced
  ARR recorded when the request was completed, counted in the quarter it was completed;
- a request's product is not recorded, so a deal counts under each product its seeker uses (the
  by-product totals can add up to more than the whole) and under its seeker's industry;
- per advocate: **acceptance** is accepted (approved, scheduled or completed) over accepted plus
  declined; **completion** is completed over accepted; the **rating** is the mean of the ratings given;
- **with and without a reference**: of the prospects that asked for a reference (a prospect when
  first recorded), those with a completed one and those whose every request was declined or
  cancelled, the share won: a won deal recorded, or a stage past the first now. A deal lost
  without a reference is recorded nowhere, so this share, not a win rate, is what compares like
  with like.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from refmatch.app.service import Service
from refmatch.domain.vocabulary import USING_CAPACITY

_ACCEPTED = ",".join(f"'{s}'" for s in USING_CAPACITY)


def quarter_of(day: str) -> str:
    d = date.fromisoformat(day[:10])
    return f"{d.year}-Q{(d.month - 1) // 3 + 1}"


@dataclass
class DealTotals:
    key: str
    won: int = 0
    lost: int = 0
    open: int = 0
    influenced_arr: float = 0.0

    @property
    def win_rate(self) -> float | None:
        decided = self.won + self.lost
        return round(self.won / decided, 3) if decided else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "win_rate": self.win_rate}


@dataclass
class AdvocateOutcome:
    external_id: str
    name: str
    asked: int
    accepted: int
    declined: int
    completed: int
    ratings: int
    rating: float | None
    influenced_arr: float

    @property
    def acceptance(self) -> float | None:
        decided = self.accepted + self.declined
        return round(self.accepted / decided, 3) if decided else None

    @property
    def completion(self) -> float | None:
        return round(self.completed / self.accepted, 3) if self.accepted else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "acceptance": self.acceptance, "completion": self.completion}


@dataclass
class Outcomes:
    deals: DealTotals
    by_quarter: list[DealTotals]
    by_product: list[DealTotals]
    by_industry: list[DealTotals]
    advocates: list[AdvocateOutcome]
    ratings: int
    rating: float | None
    converted: dict[str, dict[str, Any]] = field(default_factory=dict)  # "with" / "without" a reference

    def as_dict(self) -> dict[str, Any]:
        return {
            "deals": self.deals.as_dict(),
            "by_quarter": [t.as_dict() for t in self.by_quarter],
            "by_product": [t.as_dict() for t in self.by_product],
            "by_industry": [t.as_dict() for t in self.by_industry],
            "advocates": [a.as_dict() for a in self.advocates],
            "ratings": self.ratings,
            "rating": self.rating,
            "converted": self.converted,
        }


def _add(totals: DealTotals, outcome: str, arr: float | None) -> None:
    if outcome == "won":
        totals.won += 1
        totals.influenced_arr += arr or 0.0
    elif outcome == "lost":
        totals.lost += 1
    else:
        totals.open += 1


def outcomes(service: Service, purpose: str | None = "reference") -> Outcomes:
    """The totals over every recorded request of ``purpose`` (None: every purpose, for the advocates' rates)."""
    conn = service.conn
    where, params = ("WHERE r.purpose = ?", [purpose]) if purpose else ("", [])
    deals = conn.execute(
        "SELECT r.completed_at, r.deal_outcome, r.influenced_arr, a.industry, a.products FROM reference_requests r "
        f"LEFT JOIN accounts a ON a.id = r.seeker_account_id {where}{' AND' if where else 'WHERE'} "
        "r.status = 'completed' AND r.deal_outcome IS NOT NULL AND r.completed_at IS NOT NULL",
        params,
    ).fetchall()
    total = DealTotals("all")
    quarters: dict[str, DealTotals] = {}
    products: dict[str, DealTotals] = {}
    industries: dict[str, DealTotals] = {}
    for completed_at, outcome, arr, industry, products_json in deals:
        _add(total, outcome, arr)
        q = quarter_of(completed_at)
        _add(quarters.setdefault(q, DealTotals(q)), outcome, arr)
        name = industry or "(unknown)"
        _add(industries.setdefault(name, DealTotals(name)), outcome, arr)
        for p in json.loads(products_json or "[]") or ["(none)"]:
            _add(products.setdefault(p, DealTotals(p)), outcome, arr)

    def biggest(d: dict[str, DealTotals]) -> list[DealTotals]:
        return sorted(d.values(), key=lambda t: (-t.influenced_arr, -(t.won + t.lost + t.open), t.key))

    advocates = [
        AdvocateOutcome(e, n, asked, accepted, declined, completed, ratings, round(rating, 2) if rating else None, arr)
        for e, n, asked, accepted, declined, completed, ratings, rating, arr in conn.execute(
            "SELECT a.external_id, a.name, COUNT(*), "
            f"SUM(r.status IN ({_ACCEPTED})), SUM(r.status = 'declined'), SUM(r.status = 'completed'), "
            "COUNT(r.rating), AVG(r.rating), "
            "COALESCE(SUM(CASE WHEN r.deal_outcome = 'won' THEN r.influenced_arr END), 0) "
            f"FROM reference_requests r JOIN accounts a ON a.id = r.advocate_account_id {where} "
            "GROUP BY a.id ORDER BY COUNT(*) DESC, a.external_id",
            params,
        )
    ]
    ratings, rating = conn.execute(
        f"SELECT COUNT(r.rating), AVG(r.rating) FROM reference_requests r {where}", params
    ).fetchone()
    return Outcomes(
        deals=total,
        by_quarter=sorted(quarters.values(), key=lambda t: t.key),
        by_product=biggest(products),
        by_industry=biggest(industries),
        advocates=advocates,
        ratings=int(ratings),
        rating=round(rating, 2) if rating is not None else None,
        converted=_converted(service),
    )


def _converted(service: Service) -> dict[str, dict[str, Any]]:
    """Prospects that asked for a reference, with a completed one and without: how many were won (module doc)."""
    first = service.settings.stages[0]
    rows = service.conn.execute(
        "SELECT r.seeker_account_id, MAX(r.status = 'completed'), MAX(r.status IN ('requested', 'approved', "
        "'scheduled')), MAX(r.deal_outcome = 'won'), a.stage, "
        "(SELECT h.stage FROM stage_history h WHERE h.account_id = a.id "
        "ORDER BY COALESCE(h.entered_on, h.recorded_at), h.id LIMIT 1) "
        "FROM reference_requests r JOIN accounts a ON a.id = r.seeker_account_id "
        "WHERE r.purpose = 'reference' GROUP BY r.seeker_account_id"
    ).fetchall()
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for _, completed, pending, won, stage, first_stage in rows:
        if (first_stage or stage) != first:  # not a prospect when it was first seen: a customer asking
            continue
        if not completed and pending:  # still waiting: neither
            continue
        group = "with" if completed else "without"
        counts[group][0] += 1
        counts[group][1] += bool(won) or stage != first
    return {
        g: {"prospects": n, "won": won, "share": round(won / n, 3) if n else None}
        for g, (n, won) in ((g, counts[g]) for g in ("with", "without"))
    }
