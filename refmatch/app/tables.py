"""Lists as downloadable tables: the columns of each list people export, and CSV / XLSX bytes.

One place says which columns a download of accounts, advocates, requests, at-risk
accounts or an account's matches has, so the UI and the API give the same file. Rows come
from the same functions the pages use, every page of them, with the same filters.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from refmatch.app import queries
from refmatch.app import requests as workflow
from refmatch.app import risk as risk_service
from refmatch.app.service import Service
from refmatch.app.users import User
from refmatch.domain import clock
from refmatch.domain.errors import InvalidInput

FORMATS = ("csv", "xlsx")
MAX_ROWS = 100_000  # a download beyond this is cut, and says so in its last row
MEDIA = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}

Getter = Callable[[dict[str, Any]], Any]


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[str, ...]
    rows: list[list[Any]]
    cut: bool = False


def _path(item: dict[str, Any], dotted: str) -> Any:
    value: Any = item
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _flat(value: Any) -> Any:
    """A cell: text, a number, or empty; lists joined with '; ', anything else as JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str | int | float):
        return value
    if isinstance(value, list | tuple):
        return "; ".join(str(_flat(v)) for v in value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _reasons(item: dict[str, Any]) -> str:
    return "; ".join(r["text"] if isinstance(r, dict) else str(r) for r in item.get("reasons") or [])


# list -> (column title, dotted path or getter)
SPECS: dict[str, tuple[tuple[str, str | Getter], ...]] = {
    "accounts": (
        ("external_id", "external_id"), ("name", "name"), ("industry", "industry"), ("employees", "employees"),
        ("country", "country"), ("region", "region"), ("products", "products"), ("stage", "stage"),
        ("health", "health"), ("open_needs", "open_needs"), ("advocate", "is_advocate"),
    ),
    "advocates": (
        ("external_id", "external_id"), ("name", "name"), ("industry", "industry"), ("stage", "stage"),
        ("region", "region"), ("products", "products"), ("health", "health"), ("consent", "consent"),
        ("reference_types", "reference_types"), ("capacity", "capacity"), ("used_this_quarter", "used_this_quarter"),
        ("remaining", "remaining"), ("blackout_until", "blackout_until"), ("topics", "topics"),
        ("contact_name", "contact.name"), ("contact_title", "contact.title"), ("contact_email", "contact.email"),
    ),
    "requests": (
        ("id", "id"), ("status", "status"), ("purpose", "purpose"), ("reference_type", "reference_type"),
        ("seeker_external_id", "seeker.external_id"), ("seeker", "seeker.name"),
        ("advocate_external_id", "advocate.external_id"), ("advocate", "advocate.name"),
        ("requested_by", "requested_by"), ("created_at", "created_at"), ("due_at", "due_at"),
        ("overdue", "overdue"), ("approved_at", "approved_at"), ("scheduled_for", "scheduled_for"),
        ("completed_at", "completed_at"), ("rating", "rating"), ("deal_outcome", "deal_outcome"),
        ("influenced_arr", "influenced_arr"), ("note", "note"),
    ),
    "at-risk": (
        ("external_id", "external_id"), ("name", "name"), ("stage", "stage"), ("score", "score"),
        ("level", "level"), ("at_risk_since", "at_risk_since"), ("renewal_date", "renewal_date"), ("arr", "arr"),
        ("troubles", "troubles"), ("reasons", _reasons),
    ),
    "matches": (
        ("rank", "rank"), ("advocate_external_id", "advocate.external_id"), ("advocate", "advocate.name"),
        ("score", "score"), ("strength", "strength"), ("need", "components.need_coverage"),
        ("profile", "components.profile_similarity"), ("reasons", "reasons"),
    ),
}  # fmt: skip


def table(name: str, items: Iterable[dict[str, Any]], *, cut: bool = False) -> Table:
    """The rows of list ``name`` (a key of ``SPECS``) from its items, as the pages show them."""
    spec = SPECS[name]
    rows = []
    for item in items:
        rows.append([_flat(get(item) if callable(get) else _path(item, get)) for _, get in spec])
    return Table(name, tuple(title for title, _ in spec), rows, cut)


def every_page(
    fetch: Callable[[int, int], tuple[Sequence[Any], int]], page_size: int, as_dict: Callable[[Any], dict] = dict
) -> tuple[list[dict[str, Any]], bool]:
    """All items of a paged list (``fetch(limit, offset) -> (items, total)``), up to ``MAX_ROWS``; and
    whether there were more."""
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        items, total = fetch(page_size, offset)
        out += [as_dict(i) for i in items]
        offset += len(items)
        if not items or offset >= total or len(out) >= MAX_ROWS:
            return out[:MAX_ROWS], total > MAX_ROWS


# -- the lists, each with the filters its page and its API operation take ----------------------------------


def accounts(service: Service, **filters: Any) -> Table:
    """Accounts as ``queries.list_accounts`` finds them with ``filters`` (every page)."""
    items, cut = every_page(
        lambda limit, offset: queries.list_accounts(service, **filters, limit=limit, offset=offset), queries.MAX_LIMIT
    )
    return table("accounts", items, cut=cut)


def advocates(service: Service, user: User, **filters: Any) -> Table:
    """Advocates as ``queries.list_advocates`` finds them; contacts only for those who may see them."""
    contact = workflow.can_see_contact(user, None)
    items, cut = every_page(
        lambda limit, offset: queries.list_advocates(
            service, **filters, include_contact=contact, limit=limit, offset=offset
        ),
        queries.MAX_LIMIT,
    )
    return table("advocates", items, cut=cut)


def requests(service: Service, user: User, **filters: Any) -> Table:
    """Reference requests as ``user`` sees them in the queue, with ``filters``."""
    items, cut = every_page(
        lambda limit, offset: workflow.list_requests(service, user, **filters, limit=limit, offset=offset),
        workflow.MAX_PAGE,
        lambda view: view.as_dict(),
    )
    return table("requests", items, cut=cut)


def at_risk(service: Service, level: str | None) -> Table:
    """Accounts at ``level`` or above, riskiest first (the scores must be current: the caller brings them)."""
    items, cut = risk_service.at_risk_rows(service, level=level, most=MAX_ROWS)
    return table("at-risk", items, cut=cut)


def matches(service: Service, external_id: str, **args: Any) -> Table:
    """A stored account's matches for ``args`` (purpose, k, reference type, product)."""
    return table("matches", service.match_account(external_id, **args).as_dict()["matches"])


def filename(label: str, fmt: str) -> str:
    """The name a download is saved under: what it is and the day it was made."""
    return f"refmatch-{label}-{clock.today().isoformat()}.{fmt}"


def check_format(value: str) -> str:
    if value not in FORMATS:
        raise InvalidInput(f"format: must be one of {', '.join(FORMATS)}, got {value!r}")
    return value


def encode(t: Table, fmt: str) -> bytes:
    """The table as a CSV (UTF-8, header row) or XLSX file."""
    rows = [*t.rows]
    if t.cut:
        rows.append([f"(cut at {MAX_ROWS:,} rows: narrow the filters)"] + [""] * (len(t.columns) - 1))
    if check_format(fmt) == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(t.columns)
        writer.writerows(rows)
        return buffer.getvalue().encode("utf-8")
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(t.name[:31])
    sheet.append(list(t.columns))
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def forecast(service: Service, **options: Any) -> Table:
    """The pool-exhaustion forecast (``refmatch.app.forecast``), a row per segment: who asks, who could
    answer, when it runs dry, and each quarter's demand, capacity and shortfall."""
    from refmatch.app.forecast import forecast as compute

    f = compute(service, **options)
    per_quarter = [f"{q} {what}" for q in f.quarters for what in ("demand", "capacity", "shortfall")]
    columns = (*f.by, "open_prospects", "run_rate", "advocates", "runs_dry", "shortfall", *per_quarter)
    rows = [
        [
            *s.key.values(), s.prospects, s.run_rate, s.advocates, s.dry or "", s.shortfall,
            *(v for q in s.quarters for v in (q.demand, q.capacity, q.shortfall)),
        ]
        for s in f.segments
    ]  # fmt: skip
    return Table("forecast", columns, rows)


OUTCOME_TABLES = ("quarters", "products", "industries", "advocates")


def outcomes(service: Service, table: str = "quarters") -> Table:
    """One of the outcome report's tables (``refmatch.app.outcomes``): deals and influenced ARR by quarter,
    product or industry, or each advocate's acceptance, completion and rating."""
    from refmatch.app.outcomes import outcomes as compute

    if table not in OUTCOME_TABLES:
        raise InvalidInput(f"table: must be one of {', '.join(OUTCOME_TABLES)}, got {table!r}")
    report = compute(service)
    columns: tuple[str, ...]
    if table == "advocates":
        columns = ("external_id", "name", "asked", "accepted", "declined", "completed", "acceptance", "completion",
                   "ratings", "rating", "influenced_arr")  # fmt: skip
        rows = [[_flat(a.as_dict()[c]) for c in columns] for a in report.advocates]
        return Table("outcomes-advocates", columns, rows)
    totals = {"quarters": report.by_quarter, "products": report.by_product, "industries": report.by_industry}[table]
    first = {"quarters": "quarter", "products": "product", "industries": "industry"}[table]
    columns = (first, "won", "lost", "open", "win_rate", "influenced_arr")
    rows = [[t.key, t.won, t.lost, t.open, _flat(t.win_rate), t.influenced_arr] for t in totals]
    return Table(f"outcomes-{table}", columns, rows)


RECRUIT_COLUMNS = ("external_id", "name", "stage", "health", "nps", "status", "covers", "segments")


def recruits(service: Service, **options: Any) -> Table:
    """The recruiting list (``forecast.recruits``) against the forecast with these options."""
    from refmatch.app.forecast import forecast as compute
    from refmatch.app.forecast import recruits as ranked

    found = ranked(service, compute(service, **options))
    return Table("recruits", RECRUIT_COLUMNS, [[_flat(getattr(r, c)) for c in RECRUIT_COLUMNS] for r in found])
