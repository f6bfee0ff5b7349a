"""Read models of the request workflow: one request as a viewer sees it, lists, the audit trail, advocate load.

Every function takes the ``Service`` first, as all of ``refmatch.app`` does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

from refmatch.app.requests.states import (
    STATES,
    TRANSITIONS,
    WAITING,
    bad,
    can_see_contact,
    is_overdue,
    may_apply,
    raise_if,
)
from refmatch.app.service import Service
from refmatch.app.users import User
from refmatch.domain import clock
from refmatch.domain.errors import NotFound
from refmatch.domain.limits import check_page, is_row_id
from refmatch.store.usage import near_capacity, slot_use_cte

MAX_PAGE = 500


@dataclass
class RequestView:
    """A request as one viewer sees it: ``contact`` and ``allowed_actions`` depend on who asks."""

    id: int
    seeker: dict[str, Any] | None
    advocate: dict[str, Any]
    purpose: str
    reference_type: str | None
    status: str
    requested_by: str | None
    note: str | None
    override_reason: str | None
    created_at: str
    updated_at: str
    approved_at: str | None
    completed_at: str | None
    rating: int | None
    deal_outcome: str | None
    influenced_arr: float | None
    contact: dict[str, Any] | None = None
    allowed_actions: list[str] = field(default_factory=list)
    scheduled_for: str | None = None
    requested_by_user_id: int | None = None
    due_at: str | None = None
    overdue: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Event:
    at: str
    actor: str | None
    from_status: str | None
    to_status: str
    note: str | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- reading ------------------------------------------------------------------
_VIEW_SQL = """
SELECT r.id, s.external_id, s.name, a.external_id, a.name, r.purpose, r.reference_type, r.status,
       r.requested_by, r.note, r.override_reason, r.created_at, r.updated_at, r.approved_at, r.completed_at,
       r.rating, r.deal_outcome, r.influenced_arr, r.scheduled_for, r.requested_by_user_id,
       v.account_id, v.contact_name, v.contact_title, v.contact_email, r.due_at
FROM reference_requests r
JOIN accounts a ON a.id = r.advocate_account_id
LEFT JOIN accounts s ON s.id = r.seeker_account_id
LEFT JOIN advocates v ON v.account_id = r.advocate_account_id
"""


def _view(row: tuple, user: User) -> RequestView:
    view = RequestView(
        id=row[0],
        seeker=None if row[1] is None else {"external_id": row[1], "name": row[2]},
        advocate={"external_id": row[3], "name": row[4]},
        purpose=row[5],
        reference_type=row[6],
        status=row[7],
        requested_by=row[8],
        note=row[9],
        override_reason=row[10],
        created_at=row[11],
        updated_at=row[12],
        approved_at=row[13],
        completed_at=row[14],
        rating=row[15],
        deal_outcome=row[16],
        influenced_arr=row[17],
        scheduled_for=row[18],
        requested_by_user_id=row[19],
        due_at=row[24],
        overdue=is_overdue(row[7], row[24], clock.now().isoformat()),
    )
    if row[20] is not None and can_see_contact(user, view):
        view.contact = {"name": row[21], "title": row[22], "email": row[23]}
    view.allowed_actions = [s for s in STATES if s in TRANSITIONS[view.status] and may_apply(user, row[19], s)]
    return view


def get_request(service: Service, user: User, request_id: int) -> RequestView:
    """Any signed-in user may read a request; the contact only as ``can_see_contact`` says."""
    if not is_row_id(request_id):
        raise NotFound(f"unknown reference request: {request_id}")
    row = service.conn.execute(_VIEW_SQL + "WHERE r.id = ?", (request_id,)).fetchone()
    if row is None:
        raise NotFound(f"unknown reference request: {request_id}")
    return _view(row, user)


def _page(limit: int, offset: int) -> None:
    check_page(limit, offset, MAX_PAGE)


def list_requests(
    service: Service,
    user: User,
    *,
    status: str | None = None,
    advocate_external_id: str | None = None,
    mine: bool = False,
    overdue: bool = False,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[RequestView], int]:
    """(one page, newest first; the total matching the filters). ``overdue``: only requests still waiting
    past their due date, the longest overdue first."""
    _page(limit, offset)
    where: list[str] = []
    params: list[Any] = []
    if status:
        if status not in STATES:
            raise_if([bad("status", f"must be one of {', '.join(STATES)}, got {status!r}")])
        where.append("r.status = ?")
        params.append(status)
    if advocate_external_id:
        where.append("a.external_id = ?")
        params.append(advocate_external_id)
    if mine:
        where.append("r.requested_by_user_id = ?")
        params.append(user.id)
    order = "r.created_at DESC, r.id DESC"
    if overdue:
        where.append(f"r.status IN ({', '.join('?' * len(WAITING))}) AND r.due_at <= ?")
        params += [*WAITING, clock.now().isoformat()]
        order = "r.due_at, r.id"
    clause = ("WHERE " + " AND ".join(where) + " ") if where else ""
    conn = service.conn
    total = conn.execute(
        "SELECT COUNT(*) FROM reference_requests r JOIN accounts a ON a.id = r.advocate_account_id " + clause, params
    ).fetchone()[0]
    rows = conn.execute(_VIEW_SQL + clause + f"ORDER BY {order} LIMIT ? OFFSET ?", (*params, limit, offset)).fetchall()
    return [_view(r, user) for r in rows], total


def events(service: Service, request_id: int) -> list[Event]:
    """The audit trail of one request, oldest first."""
    if not is_row_id(request_id):
        raise NotFound(f"unknown reference request: {request_id}")
    conn = service.conn
    if conn.execute("SELECT 1 FROM reference_requests WHERE id = ?", (request_id,)).fetchone() is None:
        raise NotFound(f"unknown reference request: {request_id}")
    rows = conn.execute(
        "SELECT at, actor, from_status, to_status, note FROM request_events WHERE request_id = ? ORDER BY id",
        (request_id,),
    )
    return [Event(*r) for r in rows]


def advocate_load(
    service: Service,
    *,
    today: date | None = None,
    limit: int = 50,
    offset: int = 0,
    near_capacity_only: bool = False,
) -> tuple[list[dict[str, Any]], int]:
    """Every advocate's use of its quarterly slots, fullest first: (one page, total).

    ``near_capacity_only`` keeps the advocates that used ``near_capacity_share`` of their slots or more.
    ``contact`` is always None here: the shell decides who may see it.
    """
    _page(limit, offset)
    today = today or clock.today()
    use, use_params = slot_use_cte(today)
    base = f"""
    WITH {use}, load AS (
        SELECT a.external_id, a.name, v.consent, v.reference_types,
               COALESCE(v.capacity_per_quarter, ?) AS capacity, COALESCE(u.used_quarter, 0) AS used_quarter,
               u.last_used_at
        FROM advocates v JOIN accounts a ON a.id = v.account_id LEFT JOIN slot_use u ON u.account_id = v.account_id
    )
    SELECT {{}} FROM load {"WHERE " + near_capacity("capacity", "used_quarter") if near_capacity_only else ""}
    """
    params: list[Any] = list(use_params)
    params.append(service.settings.default_capacity)
    if near_capacity_only:
        params.append(service.settings.near_capacity_share)
    conn = service.conn
    total = conn.execute(base.format("COUNT(*)"), params).fetchone()[0]
    rows = conn.execute(
        base.format("*") + "ORDER BY capacity - used_quarter, used_quarter DESC, name, external_id LIMIT ? OFFSET ?",
        (*params, limit, offset),
    ).fetchall()
    out = [
        {
            "external_id": r[0],
            "name": r[1],
            "consent": bool(r[2]),
            "reference_types": json.loads(r[3]),
            "capacity": r[4],
            "used_this_quarter": r[5],
            "remaining": max(0, r[4] - r[5]),
            "last_used_at": r[6],
            "contact": None,
        }
        for r in rows
    ]
    return out, total
