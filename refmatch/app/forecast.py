"""Which segments run out of references, and when: reference demand against the capacity advocates have left.

A segment is an industry x product x region (or any of them alone or in pairs, ``by``). For each
of the next ``quarters`` calendar quarters, starting with the current one:

- **demand** is the larger of two estimates. The *run rate*: reference requests for seekers in
  the segment per quarter over the ``lookback`` complete quarters before this one (for the current
  quarter, only the share of it still to come). The *pipeline*: the segment's open prospects (with
  at least one open need) times the references a prospect asked for in the lookback (requests per
  prospect that asked; 1 when none did), spread over the first ``pipeline_quarters`` quarters. The
  larger one, because the run rate already holds the pipeline of a usual quarter: a fuller
  pipeline than usual raises demand, a thinner one does not lower it below the rate.
- **capacity** is the quarterly slots of the advocates who could serve the segment: consenting,
  live, not at risk, not known to be below ``min_health``, offering the reference type references
  use, and in the segment (same industry, using the product, same region). The current quarter
  counts only the slots left; an advocate in a blackout counts from the quarter it ends in.

A segment **runs dry** in the first quarter whose demand exceeds its capacity; the shortfall is
the demand not covered, per quarter and in total. A request's product is not recorded, so a
seeker with two products counts in both products' segments.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from itertools import product as cartesian
from typing import Any

import numpy as np

from refmatch.app.risk import parse_day
from refmatch.app.service import Service
from refmatch.domain import clock
from refmatch.domain.errors import InvalidInput
from refmatch.domain.vocabulary import DEFAULT_REFERENCE_TYPE
from refmatch.match.catalog import Catalog
from refmatch.match.eligibility import capacity_of

DIMENSIONS = ("industry", "product", "region")
MAX_QUARTERS = 12
FIRST_DAY, LAST_DAY = date(1900, 1, 1), date(9000, 12, 31)


@dataclass(frozen=True)
class Quarter:
    label: str  # 2027-Q1
    start: date
    end: date  # the last day


def quarters_from(today: date, n: int) -> list[Quarter]:
    """The current calendar quarter and the ``n - 1`` after it."""
    out, start = [], clock.quarter_start(today)
    for _ in range(n):
        month = start.month + 3
        nxt = date(start.year + (month > 12), (month - 1) % 12 + 1, 1)
        out.append(Quarter(f"{start.year}-Q{(start.month - 1) // 3 + 1}", start, nxt - timedelta(days=1)))
        start = nxt
    return out


@dataclass
class QuarterFigure:
    quarter: str
    demand: float
    capacity: int
    shortfall: float


@dataclass
class Segment:
    key: dict[str, str]
    prospects: int
    run_rate: float
    advocates: int
    quarters: list[QuarterFigure]
    dry: str | None  # the first quarter whose demand exceeds the capacity, or None
    shortfall: float  # over the horizon

    @property
    def name(self) -> str:
        return " / ".join(self.key.values())


@dataclass
class Forecast:
    as_of: str
    by: tuple[str, ...]
    quarters: list[str]
    lookback: int
    pipeline_quarters: int
    per_prospect: float
    segments: list[Segment] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["by"] = list(self.by)
        for seg, raw in zip(self.segments, out["segments"]):
            raw["name"] = seg.name
        return out

    def running_dry(self) -> list[Segment]:
        return [s for s in self.segments if s.dry]


def parse_by(value: str | Sequence[str] | None) -> tuple[str, ...]:
    """``industry,product,region`` (the default), any one or two of them, or ``all`` for the three."""
    if value is None or value == "" or value == "all":
        return DIMENSIONS
    parts = [p.strip() for p in (value.split(",") if isinstance(value, str) else value) if p.strip()]
    bad = [p for p in parts if p not in DIMENSIONS]
    if bad or not parts or len(set(parts)) != len(parts):
        raise InvalidInput(f"by: a comma-separated choice of {', '.join(DIMENSIONS)} (each once), got {value!r}")
    return tuple(d for d in DIMENSIONS if d in parts)


def _keys(catalog: Catalog, row: int, by: tuple[str, ...]) -> list[tuple[str, ...]]:
    """The segments account ``row`` falls in (one per product for ``product``); none when a value is unknown."""
    values: list[Iterable[str]] = []
    for dim in by:
        if dim == "product":
            values.append(sorted(catalog.products[row]))
        else:
            value = (catalog.industry if dim == "industry" else catalog.region)[row]
            values.append([value.casefold()] if value else [])
    return [tuple(v) for v in cartesian(*values)]


def _display(service: Service, catalog: Catalog) -> dict[tuple[str, str], str]:
    """(dimension, casefolded value) -> the value as written, for the labels (the catalog casefolds products)."""
    shown: dict[tuple[str, str], str] = {}
    for dim, column in (("industry", catalog.industry), ("region", catalog.region)):
        for v in column:
            if v:
                shown.setdefault((dim, v.casefold()), v)
    spelled = service.conn.execute("SELECT DISTINCT j.value FROM accounts, json_each(accounts.products) AS j")
    for (name,) in spelled:
        if isinstance(name, str):
            shown.setdefault(("product", name.casefold()), name)
    return shown


def forecast(
    service: Service,
    *,
    by: str | Sequence[str] | None = None,
    quarters: int = 4,
    lookback: int = 4,
    pipeline_quarters: int = 2,
    today: date | str | None = None,
) -> Forecast:
    """The forecast of every segment with any demand, those that run dry first (soonest, largest shortfall)."""
    dims = parse_by(by)
    for name, value in (("quarters", quarters), ("lookback", lookback), ("pipeline_quarters", pipeline_quarters)):
        if not isinstance(value, int) or not 1 <= value <= MAX_QUARTERS:
            raise InvalidInput(f"{name}: a whole number of quarters from 1 to {MAX_QUARTERS}, got {value!r}")
    today = parse_day(today, "as_of") if today else clock.today()
    if not FIRST_DAY <= today <= LAST_DAY:  # the lookback and the horizon must stay inside the calendar
        raise InvalidInput(f"as_of: a day from {FIRST_DAY} to {LAST_DAY}, got {today.isoformat()!r}")
    catalog = service.catalog(today)
    settings = service.settings
    horizon = quarters_from(today, quarters)

    # demand: the run rate of past quarters and the open pipeline
    first = clock.quarter_start(today)
    since = quarters_from(first - timedelta(days=92 * lookback), lookback + 2)
    window = [q for q in since if q.end < first][-lookback:]
    rows = service.conn.execute(
        "SELECT seeker_account_id FROM reference_requests WHERE purpose = 'reference' "
        "AND seeker_account_id IS NOT NULL AND substr(created_at, 1, 10) BETWEEN ? AND ?",
        (window[0].start.isoformat(), window[-1].end.isoformat()),
    ).fetchall()
    asked: dict[tuple[str, ...], int] = defaultdict(int)
    seekers: set[int] = set()
    for (seeker_id,) in rows:
        try:
            row = catalog.row(seeker_id)
        except KeyError:  # an account removed since
            continue
        seekers.add(seeker_id)
        for key in _keys(catalog, row, dims):
            asked[key] += 1
    per_prospect = len(rows) / len(seekers) if seekers else 1.0
    open_needs = np.diff(catalog.open_need_start)
    prospects: dict[tuple[str, ...], int] = defaultdict(int)
    for row in np.flatnonzero((catalog.stage_rank == 0) & (open_needs > 0)).tolist():
        for key in _keys(catalog, row, dims):
            prospects[key] += 1

    # capacity: who could serve each segment, and in which quarters
    ref_type = DEFAULT_REFERENCE_TYPE["reference"]
    serving = (
        catalog.is_advocate & catalog.consent & (catalog.stage_rank >= catalog.live_rank) & catalog.offers(ref_type)
    )
    serving[catalog.risk.at_risk_rows] = False
    serving &= ~(catalog.health < settings.min_health)
    capacity = capacity_of(catalog, settings.default_capacity)
    slots: dict[tuple[str, ...], np.ndarray] = defaultdict(lambda: np.zeros(len(horizon), dtype=np.int64))
    advocates: dict[tuple[str, ...], int] = defaultdict(int)
    starts = np.array([q.start.toordinal() for q in horizon])
    for row in np.flatnonzero(serving).tolist():
        free = np.where(catalog.blackout_until[row] <= np.maximum(starts, today.toordinal()), int(capacity[row]), 0)
        free[0] = max(0, int(capacity[row]) - int(catalog.used_quarter[row])) if free[0] else 0
        for key in _keys(catalog, row, dims):
            slots[key] += free
            advocates[key] += 1

    left_share = ((horizon[0].end - today).days + 1) / ((horizon[0].end - horizon[0].start).days + 1)
    shown = _display(service, catalog)
    segments = []
    for key in set(asked) | set(prospects):
        rate = asked.get(key, 0) / lookback
        figures = []
        for i, q in enumerate(horizon):
            run = rate * (left_share if i == 0 else 1.0)
            pipeline = prospects.get(key, 0) * per_prospect / pipeline_quarters if i < pipeline_quarters else 0.0
            demand = max(run, pipeline)
            cap = int(slots[key][i]) if key in slots else 0
            figures.append(QuarterFigure(q.label, round(demand, 2), cap, round(max(0.0, demand - cap), 2)))
        dry = next((f.quarter for f in figures if f.shortfall > 0), None)
        segments.append(
            Segment(
                key={d: shown.get((d, v), v) for d, v in zip(dims, key)},
                prospects=prospects.get(key, 0),
                run_rate=round(rate, 2),
                advocates=advocates.get(key, 0),
                quarters=figures,
                dry=dry,
                shortfall=round(sum(f.shortfall for f in figures), 2),
            )
        )
    order = {q.label: i for i, q in enumerate(horizon)}
    segments.sort(key=lambda s: (order.get(s.dry or "", len(horizon)), -s.shortfall, -s.prospects, s.name.casefold()))
    return Forecast(
        as_of=today.isoformat(),
        by=dims,
        quarters=[q.label for q in horizon],
        lookback=lookback,
        pipeline_quarters=pipeline_quarters,
        per_prospect=round(per_prospect, 3),
        segments=segments,
    )


@dataclass
class Recruit:
    external_id: str
    name: str
    stage: str
    health: float | None
    nps: float | None  # the latest NPS answer, where one is known
    status: str  # "never asked" (no advocate record) or "not consenting"
    segments: list[str]  # the segments running dry that it would serve
    covers: float  # shortfall slots it would cover over the horizon, at the default capacity


def recruits(service: Service, f: Forecast, *, limit: int | None = None) -> list[Recruit]:
    """Who to ask to become an advocate: healthy customers (known health at least ``min_health``), promoters
    where their NPS is known (9-10), live, not at risk, never asked or not consenting; ranked by the
    shortfall of the forecast ``f`` they would cover (in each quarter of each segment running dry that they
    are in, up to ``default_capacity`` slots), then NPS and health. Each is scored alone: two recruits in
    one segment may cover the same shortfall."""
    catalog = service.catalog(date.fromisoformat(f.as_of))
    settings = service.settings
    dry = {tuple(v.casefold() for v in s.key.values()): s for s in f.segments if s.dry}  # as _keys has them
    nps = dict(
        service.conn.execute(
            "SELECT account_id, value FROM signals s WHERE kind = 'nps' AND observed_on = "
            "(SELECT MAX(observed_on) FROM signals t WHERE t.account_id = s.account_id AND t.kind = 'nps')"
        ).fetchall()
    )
    consenting = catalog.is_advocate & catalog.consent
    candidates = (catalog.stage_rank >= catalog.live_rank) & ~consenting & (catalog.health >= settings.min_health)
    candidates[catalog.risk.at_risk_rows] = False
    out = []
    for row in np.flatnonzero(candidates).tolist():
        score = nps.get(int(catalog.ids[row]))
        if score is not None and score < 9:
            continue
        served = [dry[k] for k in _keys(catalog, row, f.by) if k in dry]
        covers = sum(min(q.shortfall, settings.default_capacity) for s in served for q in s.quarters)
        out.append(
            Recruit(
                external_id=catalog.external_ids[row],
                name=catalog.names[row],
                stage=catalog.stages[catalog.stage_rank[row]],
                health=float(catalog.health[row]),
                nps=score,
                status="not consenting" if catalog.is_advocate[row] else "never asked",
                segments=[s.name for s in served],
                covers=round(covers, 2),
            )
        )
    out.sort(key=lambda r: (-r.covers, -(r.nps if r.nps is not None else -1), -(r.health or 0), r.external_id))
    return out[:limit] if limit else out
