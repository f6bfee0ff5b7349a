"""Read models and account writes for the shells that browse data (API and UI).

Lists are filtered and paginated in SQL; account writes go through the importer's
validation and the store's upserts, so a row typed into the API obeys exactly the
rules of a row in a CSV file. Nothing here knows about HTTP.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np

from refmatch import importing
from refmatch.app.service import Service
from refmatch.config import Settings
from refmatch.domain import clock, limits, vocabulary
from refmatch.domain.errors import Conflict, InvalidInput, NotFound
from refmatch.domain.models import DEFAULT_REFERENCE_TYPE, Seeker
from refmatch.match.catalog import Catalog
from refmatch.match.eligibility import Rules, eligible_mask
from refmatch.risk import after_import as refresh_risk
from refmatch.store import UPSERTS, data_version, search, transaction
from refmatch.store.usage import near_capacity, slot_use_cte

ACCOUNT_FILTERS = ("industry", "stage", "region", "products")
MAX_LIMIT = 200
# an advocate with at most this many quarterly slots left is near capacity (as workflow.advocate_load says)


def _rows(conn: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cur = conn.execute(sql, tuple(params))
    names = [c[0] for c in cur.description]
    return [dict(zip(names, row)) for row in cur.fetchall()]


def check_page(limit: int, offset: int) -> None:
    limits.check_page(limit, offset, MAX_LIMIT)


def _search(columns: Sequence[str], q: str | None, where: list[str], params: list[Any]) -> None:
    """Case-insensitive substring search over ``columns`` (instr: no LIKE wildcards to escape)."""
    if q and q.strip():
        where.append("(" + " OR ".join(f"instr(lower(coalesce({c}, '')), ?) > 0" for c in columns) + ")")
        params.extend([q.strip().lower()] * len(columns))


# -- accounts ---------------------------------------------------------------


def list_accounts(
    service: Service,
    *,
    q: str | None = None,
    industry: str | None = None,
    stage: str | None = None,
    region: str | None = None,
    products: str | Sequence[str] | None = None,
    external_ids: Sequence[str] | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Accounts matching a search and exact filters; ``external_ids`` narrows to a set.

    ``q`` is a full-text search (``refmatch.store.search``) over name, id, industry,
    products and profile, and the text of the account's needs: every word must appear
    (a word also finds longer words it begins). With ``q``, accounts whose own text
    matches come first, best first; otherwise, and among equals, by name. ``products``
    (a list, or one string separated by ``;`` or ``,``) keeps accounts that use any of
    them, ignoring case.
    """
    check_page(limit, offset)
    where: list[str] = []
    params: list[Any] = []
    joins, order = "", "a.name COLLATE NOCASE, a.external_id"
    expression = search.match_expression(q)
    if q and q.strip() and expression is None:
        return [], 0  # only punctuation: nothing can match
    if expression is not None:
        joins = f" JOIN ({search.matching_accounts_sql()}) hit ON hit.account_id = a.id"
        params.extend([expression, expression])
        order = "hit.source, hit.rank, " + order
    for column, value in (("industry", industry), ("stage", stage), ("region", region)):
        if value:
            where.append(f"a.{column} = ?")
            params.append(value)
    wanted = _product_list(products)
    if wanted:
        where.append(
            "EXISTS (SELECT 1 FROM json_each(a.products) p WHERE lower(p.value) IN (SELECT value FROM json_each(?)))"
        )
        params.append(json.dumps([p.lower() for p in wanted]))
    if external_ids is not None:
        where.append("a.external_id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps(list(external_ids)))
    clause = joins + ((" WHERE " + " AND ".join(where)) if where else "")
    conn = service.conn
    total = conn.execute(f"SELECT count(*) FROM accounts a{clause}", params).fetchone()[0]
    items = _rows(
        conn,
        "SELECT a.external_id, a.name, a.industry, a.employees, a.size_band, a.country, a.region, a.products, "
        "a.stage, a.health, "
        "(SELECT count(*) FROM needs n WHERE n.account_id = a.id AND n.status != 'met') AS open_needs, "
        "EXISTS (SELECT 1 FROM advocates v WHERE v.account_id = a.id AND v.consent = 1) AS is_advocate "
        f"FROM accounts a{clause} ORDER BY {order} LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    for item in items:
        item["products"] = json.loads(item["products"])
        item["is_advocate"] = bool(item["is_advocate"])
    return items, total


def _product_list(products: str | Sequence[str] | None) -> list[str]:
    if products is None:
        return []
    values = products.replace(",", ";").split(";") if isinstance(products, str) else products
    return [p.strip() for p in values if p and p.strip()]


def facets(service: Service) -> dict[str, list[str]]:
    """The values each account filter can take: stages in journey order, the rest as found."""
    conn = service.conn
    out: dict[str, list[str]] = {"stage": list(service.settings.stages)}
    for column in ("industry", "region"):
        out[column] = [
            r[0] for r in conn.execute(f"SELECT DISTINCT {column} FROM accounts WHERE {column} IS NOT NULL ORDER BY 1")
        ]
    out["products"] = [
        r[0] for r in conn.execute("SELECT DISTINCT p.value FROM accounts a, json_each(a.products) p ORDER BY 1")
    ]
    return out


_RECORD_COLUMNS = [c.name for c in importing.columns_for("accounts")]


def _account_record(conn: sqlite3.Connection, external_id: str) -> dict[str, Any] | None:
    """The stored account as an import record (the shape create / update validate)."""
    rows = _rows(conn, f"SELECT {', '.join(_RECORD_COLUMNS)} FROM accounts WHERE external_id = ?", [external_id])
    if not rows:
        return None
    record = rows[0]
    record["products"] = json.loads(record["products"])
    record["do_not_match"] = json.loads(record["do_not_match"])
    return record


def get_account(service: Service, external_id: str, *, include_contact: bool = False) -> dict[str, Any]:
    """An account with its needs, stage history and (if it is one) its advocate profile and load."""
    conn = service.conn
    row = conn.execute(
        "SELECT id, size_band, created_at, updated_at FROM accounts WHERE external_id = ?", (external_id,)
    ).fetchone()
    if row is None:
        raise NotFound(f"unknown account: {external_id!r}")
    account_id, size_band, created_at, updated_at = row
    account = _account_record(conn, external_id) or {}
    account.update(size_band=size_band, created_at=created_at, updated_at=updated_at)
    account["needs"] = _rows(
        conn,
        "SELECT id, text AS need, status, met_on, product FROM needs WHERE account_id = ? "
        "ORDER BY CASE status WHEN 'open' THEN 0 WHEN 'in_progress' THEN 1 ELSE 2 END, id",
        [account_id],
    )
    account["stage_history"] = _rows(
        conn,
        "SELECT stage, entered_on FROM stage_history WHERE account_id = ? ORDER BY entered_on, id",
        [account_id],
    )
    advocates, _ = list_advocates(service, account_ids=[account_id], include_contact=include_contact)
    account["advocate"] = advocates[0] if advocates else None
    return account


def _validate_account(settings: Settings, raw: Mapping[str, Any]) -> dict[str, Any]:
    result = importing.parse_rows([dict(raw)], "accounts", source="request body", stages=settings.stages)
    if result.errors:
        details = [{"field": e.column, "message": e.message} for e in result.errors]
        listed = "; ".join(f"{d['field']}: {d['message']}" if d["field"] else str(d["message"]) for d in details)
        raise InvalidInput(f"invalid account: {listed}", details=details)
    record = result.records[0]
    record.pop("_row", None)
    return record


def _write_account(service: Service, record: dict[str, Any]) -> None:
    """Upsert one account exactly as an import of one row would (risk scores follow, as after an import)."""
    with transaction(service.db) as conn:
        UPSERTS["accounts"](conn, [record])
        refresh_risk(conn, "accounts", [record], service.settings)


def create_account(service: Service, raw: Mapping[str, Any], *, include_contact: bool = False) -> dict[str, Any]:
    """Validate like an import row and insert. Conflict if the external id exists."""
    record = _validate_account(service.settings, raw)
    if _account_record(service.conn, record["external_id"]) is not None:
        raise Conflict(
            f"account {record['external_id']!r} exists: update it instead",
            details=[{"field": "external_id", "message": "already exists"}],
        )
    _write_account(service, record)
    return get_account(service, record["external_id"], include_contact=include_contact)


def update_account(
    service: Service, external_id: str, changes: Mapping[str, Any], *, include_contact: bool = False
) -> dict[str, Any]:
    """Apply ``changes`` (null clears an optional field) to the stored record, validate it whole, upsert."""
    current = _account_record(service.conn, external_id)
    if current is None:
        raise NotFound(f"unknown account: {external_id!r}")
    if "external_id" in changes and changes["external_id"] != external_id:
        raise InvalidInput(
            "external_id: cannot be changed (it is the CRM's key)",
            details=[{"field": "external_id", "message": "cannot be changed"}],
        )
    record = _validate_account(service.settings, {**current, **changes})
    _write_account(service, record)
    return get_account(service, external_id, include_contact=include_contact)


# -- needs and advocates ----------------------------------------------------


def list_needs(
    service: Service,
    *,
    account: str | None = None,
    status: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    check_page(limit, offset)
    if status is not None and status not in vocabulary.NEED_STATUSES:
        raise InvalidInput(
            f"status: must be one of {', '.join(vocabulary.NEED_STATUSES)}, got {status!r}",
            details=[{"field": "status", "message": f"must be one of {', '.join(vocabulary.NEED_STATUSES)}"}],
        )
    where: list[str] = []
    params: list[Any] = []
    if account:
        where.append("a.external_id = ?")
        params.append(account)
    if status:
        where.append("n.status = ?")
        params.append(status)
    _search(("n.text",), q, where, params)
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    base = f"FROM needs n JOIN accounts a ON a.id = n.account_id{clause}"
    conn = service.conn
    total = conn.execute(f"SELECT count(*) {base}", params).fetchone()[0]
    items = _rows(
        conn,
        "SELECT n.id, a.external_id AS account_external_id, a.name AS account_name, n.text AS need, n.status, "
        f"n.met_on, n.product {base} ORDER BY a.name COLLATE NOCASE, n.id LIMIT ? OFFSET ?",
        [*params, limit, offset],
    )
    return items, total


def list_advocates(
    service: Service,
    *,
    q: str | None = None,
    consent: bool | None = None,
    reference_type: str | None = None,
    near_capacity_only: bool = False,
    account_ids: Sequence[int] | None = None,
    include_contact: bool = False,
    today: date | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[dict[str, Any]], int]:
    """Advocates with consent, reference types and this quarter's load.

    Load counts the requests matching counts (``USING_CAPACITY`` since the quarter began),
    so the bar a person sees is the rule eligibility applies.
    """
    check_page(limit, offset)
    if reference_type is not None and reference_type not in vocabulary.REFERENCE_TYPES:
        raise InvalidInput(
            f"reference_type: must be one of {', '.join(vocabulary.REFERENCE_TYPES)}, got {reference_type!r}",
            details=[{"field": "reference_type", "message": f"must be one of {', '.join(vocabulary.REFERENCE_TYPES)}"}],
        )
    today = today or clock.today()
    use, use_params = slot_use_cte(today)
    used = "COALESCE(u.used_quarter, 0)"
    capacity = "COALESCE(v.capacity_per_quarter, ?)"
    where: list[str] = []
    params: list[Any] = []
    _search(("a.name", "a.external_id", "v.topics"), q, where, params)
    if consent is not None:
        where.append("v.consent = ?")
        params.append(int(consent))
    if reference_type:
        where.append("EXISTS (SELECT 1 FROM json_each(v.reference_types) WHERE value = ?)")
        params.append(reference_type)
    if account_ids is not None:
        where.append("v.account_id IN (SELECT value FROM json_each(?))")
        params.append(json.dumps([int(i) for i in account_ids]))
    if near_capacity_only:
        where.append(near_capacity(capacity, used))
        params.extend([service.settings.near_capacity_share, service.settings.default_capacity])
    clause = (" WHERE " + " AND ".join(where)) if where else ""
    base = (
        f"FROM advocates v JOIN accounts a ON a.id = v.account_id "
        f"LEFT JOIN slot_use u ON u.account_id = v.account_id{clause}"
    )
    conn = service.conn
    total = conn.execute(f"WITH {use} SELECT count(*) {base}", [*use_params, *params]).fetchone()[0]
    items = _rows(
        conn,
        f"WITH {use} SELECT a.external_id, a.name, a.industry, a.stage, a.region, a.products, a.health, v.consent, "
        f"v.reference_types, {capacity} AS capacity, {used} AS used_this_quarter, v.blackout_until, v.topics, "
        f"v.contact_name, v.contact_title, v.contact_email {base} "
        "ORDER BY a.name COLLATE NOCASE, a.external_id LIMIT ? OFFSET ?",
        [*use_params, service.settings.default_capacity, *params, limit, offset],
    )
    for item in items:
        item["products"] = json.loads(item.pop("products"))
        item["reference_types"] = json.loads(item["reference_types"])
        item["consent"] = bool(item["consent"])
        item["remaining"] = max(0, item["capacity"] - item["used_this_quarter"])
        contact = {k: item.pop(f"contact_{k}") for k in ("name", "title", "email")}
        item["contact"] = contact if include_contact and any(contact.values()) else None
    return items, total


def advocate_contacts(service: Service, external_ids: Sequence[str]) -> dict[str, dict[str, str | None]]:
    """{external_id: {name, title, email}} of the advocates named that have a contact."""
    rows = service.conn.execute(
        "SELECT a.external_id, v.contact_name, v.contact_title, v.contact_email FROM advocates v "
        "JOIN accounts a ON a.id = v.account_id WHERE a.external_id IN (SELECT value FROM json_each(?))",
        (json.dumps(list(external_ids)),),
    )
    return {r[0]: {"name": r[1], "title": r[2], "email": r[3]} for r in rows if any(r[1:])}


# -- dashboard ----------------------------------------------------------------


def request_counts(service: Service) -> dict[str, int]:
    """Reference requests per status (statuses with none are left out)."""
    return dict(service.conn.execute("SELECT status, count(*) FROM reference_requests GROUP BY status ORDER BY 1"))


@dataclass(frozen=True)
class Coverage:
    purpose: str
    seekers: int
    uncovered: tuple[str, ...]  # external ids of seekers no advocate may be put in front of, by name

    def as_dict(self) -> dict[str, Any]:
        return {"purpose": self.purpose, "seekers": self.seekers, "uncovered": len(self.uncovered)}


_COVERAGE_CACHE: dict[tuple, Coverage] = {}
COVERAGE_PURPOSES = ("reference", "mentor", "retention")


def coverage(service: Service, purpose: str = "reference", *, today: date | None = None) -> Coverage:
    """Which seekers of a purpose have no eligible advocate at all (cached per data version).

    Reference seekers are accounts in the first stage (prospects), mentor seekers those in
    onboarding, retention seekers the accounts at risk (each at its own stage). Eligibility
    depends on the seeker's stage and products, so it is computed once per (stage, products)
    group, then corrected per seeker for its exclusions.
    """
    if purpose not in COVERAGE_PURPOSES:
        raise InvalidInput(f"purpose: coverage is computed for {', '.join(COVERAGE_PURPOSES)}, got {purpose!r}")
    settings, conn = service.settings, service.conn
    today = today or clock.today()
    key = (str(settings.db_path), data_version(conn), today, purpose, settings.stages, settings.default_capacity,
           settings.min_health)  # fmt: skip
    if key in _COVERAGE_CACHE:
        return _COVERAGE_CACHE[key]
    catalog = service.catalog(today)
    if purpose == "retention":
        seekers = np.unique(np.asarray(catalog.risk.at_risk_rows, dtype=np.int64))
    else:
        stage = (
            settings.stages[0]
            if purpose == "reference"
            else ("onboarding" if "onboarding" in settings.stages else None)
        )
        seekers = np.flatnonzero(catalog.stage_rank == settings.stages.index(stage or settings.stages[1]))
    rules = Rules(purpose, DEFAULT_REFERENCE_TYPE[purpose], settings.default_capacity, settings.min_health)
    blocked_by: dict[str, list[int]] = {}
    for account_id, names in catalog.do_not_match.items():
        for name in names:
            blocked_by.setdefault(name, []).append(catalog.row(account_id))
    groups: dict[tuple[str, frozenset[str]], np.ndarray] = {}
    uncovered: list[tuple[str, str]] = []
    for row in seekers.tolist():
        group = (catalog.stages[catalog.stage_rank[row]], catalog.products[row])
        if group not in groups:
            probe = Seeker(name="", stage=group[0], profile_vector=np.zeros(1, dtype=np.float32), products=[*group[1]])
            groups[group] = eligible_mask(catalog, probe, rules)
        mask = groups[group]
        excluded = {row, *blocked_by.get(catalog.external_ids[row], ())}
        excluded.update(r for r in map(catalog.row_by_external, _do_not_match(catalog, row)) if r is not None)
        if int(mask.sum()) - sum(bool(mask[r]) for r in excluded) <= 0:
            uncovered.append((catalog.names[row].casefold(), catalog.external_ids[row]))
    result = Coverage(purpose, len(seekers), tuple(e for _, e in sorted(uncovered)))
    if len(_COVERAGE_CACHE) > 16:
        _COVERAGE_CACHE.clear()
    _COVERAGE_CACHE[key] = result
    return result


AGE_BUCKETS = ((0, 7, "under a week"), (7, 14, "1-2 weeks"), (14, 30, "2-4 weeks"), (30, None, "4 weeks or more"))
OPEN_STATES = ("requested", "approved", "scheduled")  # requests.states.OPEN, in workflow order


def request_ages(service: Service, *, today: date | None = None) -> dict[str, dict[str, int]]:
    """Open requests by how long ago they were made: {bucket label: {state: count}} (AGE_BUCKETS)."""
    today = today or clock.today()
    marks = ",".join("?" * len(OPEN_STATES))
    rows = service.conn.execute(
        f"SELECT status, julianday(?) - julianday(substr(created_at, 1, 10)) FROM reference_requests "
        f"WHERE status IN ({marks})",
        (today.isoformat(), *OPEN_STATES),
    ).fetchall()
    out = {label: dict.fromkeys(OPEN_STATES, 0) for _, _, label in AGE_BUCKETS}
    for status, age in rows:
        for low, high, label in AGE_BUCKETS:
            if age >= low and (high is None or age < high):
                out[label][status] += 1
                break
    return out


def requests_by_quarter(service: Service, quarters: int = 6) -> list[dict[str, Any]]:
    """Requests made in each of the last ``quarters`` quarters that had any, by where they are now:
    completed, declined or cancelled, or still open."""
    rows = service.conn.execute(
        "SELECT substr(created_at, 1, 4), (CAST(substr(created_at, 6, 2) AS INTEGER) + 2) / 3 AS q, "
        "SUM(status = 'completed'), SUM(status IN ('declined', 'cancelled')), "
        "SUM(status NOT IN ('completed', 'declined', 'cancelled')) "
        "FROM reference_requests GROUP BY 1, 2 ORDER BY 1 DESC, 2 DESC LIMIT ?",
        (quarters,),
    ).fetchall()
    return [
        {"quarter": f"{y}-Q{q}", "completed": c, "declined or cancelled": d, "open": o}
        for y, q, c, d, o in reversed(rows)
    ]


LOAD_BUCKETS = ("none used", "under half", "half or more", "near capacity", "full")


def load_distribution(service: Service, *, today: date | None = None) -> dict[str, int]:
    """Consenting advocates by the share of this quarter's slots they used (LOAD_BUCKETS; "near capacity" is
    the ``near_capacity_share`` rule, "full" those with no slot left)."""
    from refmatch.match.eligibility import capacity_of

    catalog = service.catalog(today or clock.today())
    rows = np.flatnonzero(catalog.is_advocate & catalog.consent)
    capacity = capacity_of(catalog, service.settings.default_capacity)[rows]
    used = catalog.used_quarter[rows]
    share = np.where(capacity > 0, used / np.maximum(capacity, 1), 1.0)
    near = service.settings.near_capacity_share
    counts = dict.fromkeys(LOAD_BUCKETS, 0)
    for u, sh in zip(used.tolist(), share.tolist()):
        if sh >= 1:
            bucket = "full"
        elif sh >= near:
            bucket = "near capacity"
        elif sh >= 0.5:
            bucket = "half or more"
        else:
            bucket = "under half" if u > 0 else "none used"
        counts[bucket] += 1
    return counts


def _do_not_match(catalog: Catalog, row: int) -> frozenset[str]:
    return catalog.do_not_match.get(int(catalog.ids[row]), frozenset())
