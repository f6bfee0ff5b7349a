"""Commands of the request workflow: ask an advocate, move a request along.

Each change is one transaction that updates the request and appends an event (who, when,
from, to, note); events are never updated or deleted (a trigger refuses it). Approved,
scheduled and completed requests use one of the advocate's quarterly slots
(``refmatch.store.usage``), so matching sees them after the commit (the transaction
bumps data_version, which refreshes the Service's catalog).

Every function takes the ``Service`` first, as all of ``refmatch.app`` does.
"""

from __future__ import annotations

import json
import math
import sqlite3
from datetime import UTC, date, datetime, timedelta
from typing import Any

from refmatch.app.notify.outbox import enqueue
from refmatch.app.requests.states import OPEN, STATES, TRANSITIONS, bad, may_apply, raise_if
from refmatch.app.requests.views import RequestView, get_request
from refmatch.app.service import Service
from refmatch.app.users import User
from refmatch.domain import clock
from refmatch.domain.errors import Conflict, Forbidden, NotFound
from refmatch.domain.limits import MAX_ID, MAX_NOTE, is_row_id, unicode_problem
from refmatch.domain.models import DEFAULT_REFERENCE_TYPE, PURPOSES
from refmatch.domain.vocabulary import DEAL_OUTCOMES, REFERENCE_TYPES
from refmatch.store import inserted_id, transaction
from refmatch.store.usage import slots_used_by


def _utc(moment: datetime | None) -> datetime:
    """Now, or the given moment (naive means UTC), in UTC to the second."""
    if moment is None:
        return clock.now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0)


def _too_long(**fields: tuple[str | None, int]) -> list[dict[str, str]]:
    """A problem for each text longer than its limit, or not valid Unicode."""
    problems = []
    for name, (text, most) in fields.items():
        if text is not None and len(text) > most:
            problems.append(bad(name, f"too long: {len(text):,} characters (max {most:,})"))
        elif text is not None and (problem := unicode_problem(text)):
            problems.append(bad(name, problem))
    return problems


def _clean(text: str | None) -> str | None:
    return text.strip() if isinstance(text, str) and text.strip() else None


# -- capacity and consent ---------------------------------------------------
def _refusals(
    conn: sqlite3.Connection, account_id: int, external_id: str, reference_type: str, default_capacity: int, today: date
) -> list[dict[str, Any]]:
    """Why this advocate may not be asked for this reference type now (empty: it may)."""
    row = conn.execute(
        "SELECT consent, reference_types, capacity_per_quarter FROM advocates WHERE account_id = ?", (account_id,)
    ).fetchone()
    problems: list[dict[str, Any]] = []
    capacity = default_capacity
    if row is None:
        problems.append({"reason": "not_an_advocate", "message": f"{external_id} is not an advocate"})
    else:
        consent, types, cap = bool(row[0]), json.loads(row[1]), row[2]
        capacity = default_capacity if cap is None else cap
        if not consent:
            problems.append({"reason": "no_consent", "message": f"{external_id} does not consent to references"})
        elif reference_type not in types:
            offers = ", ".join(types) or "none"
            problems.append(
                {
                    "reason": "reference_type_not_offered",
                    "message": f"{external_id} does not offer {reference_type} (offers: {offers})",
                }
            )
    used = slots_used_by(conn, account_id, today)
    if used >= capacity:
        problems.append(
            {
                "reason": "at_capacity",
                "message": f"{external_id} is at capacity: {used} of {capacity} requests used this quarter",
                "used": used,
                "capacity": capacity,
            }
        )
    for p in problems:
        p["field"] = "advocate_external_id"
    return problems


def _refuse(problems: list[dict[str, Any]], user: User, what: str) -> Conflict:
    how = (
        "give an override reason to go ahead anyway"
        if user.is_manager
        else "a reference manager may override this with a reason"
    )
    return Conflict(f"{what} refused: {'; '.join(p['message'] for p in problems)}; {how}", details=problems)


def _override_note(note: str | None, problems: list[dict[str, Any]], reason: str) -> str:
    line = f"override ({'; '.join(p['message'] for p in problems)}): {reason}"
    return f"{note}\n{line}" if note else line


# -- validation ---------------------------------------------------------------
def _rating(value: Any, problems: list[dict[str, str]]) -> int | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        rating = int(value)
    except (TypeError, ValueError):
        problems.append(bad("rating", f"must be a whole number from 1 to 5, got {value!r}"))
        return None
    if not 1 <= rating <= 5:
        problems.append(bad("rating", f"must be from 1 to 5, got {rating}"))
    return rating


def _deal_outcome(value: Any, problems: list[dict[str, str]]) -> str | None:
    if value is None or value == "":
        return None
    outcome = value.strip().lower() if isinstance(value, str) else value
    if outcome not in DEAL_OUTCOMES:
        problems.append(bad("deal_outcome", f"must be one of {', '.join(DEAL_OUTCOMES)}, got {value!r}"))
    return outcome


def _arr(value: Any, problems: list[dict[str, str]]) -> float | None:
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        arr = float(value)
    except (TypeError, ValueError):
        problems.append(bad("influenced_arr", f"must be a number >= 0, got {value!r}"))
        return None
    if not math.isfinite(arr) or arr < 0:
        problems.append(bad("influenced_arr", f"must be a number >= 0, got {value!r}"))
    return arr


def _when(value: Any, problems: list[dict[str, str]]) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    try:
        text = str(value).strip()
        return date.fromisoformat(text).isoformat() if len(text) == 10 else datetime.fromisoformat(text).isoformat()
    except ValueError:
        problems.append(bad("scheduled_for", f"must be an ISO date or date-time, got {value!r}"))
        return None


# -- writing ------------------------------------------------------------------
def _account_id(conn: sqlite3.Connection, external_id: str, what: str) -> int:
    row = conn.execute("SELECT id FROM accounts WHERE external_id = ?", (external_id,)).fetchone()
    if row is None:
        raise NotFound(f"unknown {what} account: {external_id!r}")
    return row[0]


def _event(
    conn: sqlite3.Connection, request_id: int, at: str, actor: str, from_: str | None, to: str, note: str | None
) -> None:
    conn.execute(
        "INSERT INTO request_events (request_id, at, actor, from_status, to_status, note) VALUES (?, ?, ?, ?, ?, ?)",
        (request_id, at, actor, from_, to, note),
    )


def _refuse_duplicate(conn: Any, seeker_id: int, advocate_id: int, purpose: str, advocate: str) -> None:
    """One open request per seeker, advocate and purpose: a second one (a double click, two reps) is a 409."""
    marks = ",".join("?" * len(OPEN))
    row = conn.execute(
        f"SELECT id, status FROM reference_requests WHERE seeker_account_id = ? AND advocate_account_id = ? "
        f"AND purpose = ? AND status IN ({marks}) ORDER BY id LIMIT 1",
        (seeker_id, advocate_id, purpose, *OPEN),
    ).fetchone()
    if row is not None:
        message = f"duplicate: request #{row[0]} to {advocate} for this seeker and purpose is still {row[1]}"
        raise Conflict(message, details=[{"field": "advocate_external_id", "message": message}])


def create_request(
    service: Service,
    user: User,
    *,
    advocate_external_id: str,
    seeker_external_id: str | None = None,
    purpose: str = "reference",
    reference_type: str | None = None,
    note: str | None = None,
    override_reason: str | None = None,
    now: datetime | None = None,
) -> RequestView:
    """Ask an advocate for a reference. Conflict when it does not consent or is at capacity,
    unless a reference manager (or admin) gives an override reason, which is recorded."""
    problems = []
    if purpose not in PURPOSES:
        problems.append(bad("purpose", f"must be one of {', '.join(PURPOSES)}, got {purpose!r}"))
    reference_type = _clean(reference_type) or DEFAULT_REFERENCE_TYPE.get(purpose, "call")
    if reference_type not in REFERENCE_TYPES:
        problems.append(bad("reference_type", f"must be one of {', '.join(REFERENCE_TYPES)}, got {reference_type!r}"))
    if not _clean(advocate_external_id):
        problems.append(bad("advocate_external_id", "must not be empty"))
    problems += _too_long(
        advocate_external_id=(advocate_external_id, MAX_ID),
        seeker_external_id=(seeker_external_id, MAX_ID),
        note=(note, MAX_NOTE),
        override_reason=(override_reason, MAX_NOTE),
    )
    raise_if(problems)
    advocate_external_id = advocate_external_id.strip()
    seeker_external_id = _clean(seeker_external_id)
    note, reason = _clean(note), _clean(override_reason)
    moment = _utc(now)
    stamp = moment.isoformat()
    with transaction(service.db) as conn:
        advocate_id = _account_id(conn, advocate_external_id, "advocate")
        seeker_id = _account_id(conn, seeker_external_id, "seeker") if seeker_external_id else None
        if seeker_id == advocate_id:
            raise_if([bad("advocate_external_id", "must not be the seeker")])
        if seeker_id is not None:
            _refuse_duplicate(conn, seeker_id, advocate_id, purpose, advocate_external_id)
        refusals = _refusals(
            conn, advocate_id, advocate_external_id, reference_type, service.settings.default_capacity, moment.date()
        )
        event_note = note
        if refusals:
            if not (user.is_manager and reason):
                raise _refuse(refusals, user, "request")
            event_note = _override_note(note, refusals, reason)
        cur = conn.execute(
            "INSERT INTO reference_requests (seeker_account_id, advocate_account_id, purpose, reference_type, status, "
            "requested_by, requested_by_user_id, note, override_reason, created_at, updated_at, due_at) "
            "VALUES (?, ?, ?, ?, 'requested', ?, ?, ?, ?, ?, ?, ?)",
            (
                seeker_id,
                advocate_id,
                purpose,
                reference_type,
                user.username,
                user.id,
                note,
                reason if refusals else None,
                stamp,
                stamp,
                (moment + timedelta(hours=service.settings.request_turnaround_hours)).isoformat(),
            ),
        )
        request_id = inserted_id(cur)
        _event(conn, request_id, stamp, user.username, None, "requested", event_note)
        enqueue(service, conn, "request.created", request_id, user.username, moment)
    return get_request(service, user, request_id)


def transition(
    service: Service,
    user: User,
    request_id: int,
    to_status: str,
    *,
    note: str | None = None,
    scheduled_for: date | datetime | str | None = None,
    rating: int | str | None = None,
    deal_outcome: str | None = None,
    influenced_arr: float | str | None = None,
    override_reason: str | None = None,
    now: datetime | None = None,
) -> RequestView:
    """Move a request to ``to_status``: Conflict if the workflow does not allow it from where it is,
    Forbidden if the user may not. Approving re-checks consent and capacity (a request created
    under an override is not re-checked; otherwise a manager may pass ``override_reason``)."""
    if not is_row_id(request_id):
        raise NotFound(f"unknown reference request: {request_id}")
    if to_status not in STATES:
        raise_if([bad("to_status", f"must be one of {', '.join(STATES)}, got {to_status!r}")])
    problems: list[dict[str, str]] = []
    when = _when(scheduled_for, problems)
    outcome = {
        "rating": _rating(rating, problems),
        "deal_outcome": _deal_outcome(deal_outcome, problems),
        "influenced_arr": _arr(influenced_arr, problems),
    }
    problems += _too_long(note=(note, MAX_NOTE), override_reason=(override_reason, MAX_NOTE))
    if when is not None and to_status != "scheduled":
        problems.append(bad("scheduled_for", "only when scheduling"))
    for name, value in outcome.items():
        if value is not None and to_status != "completed":
            problems.append(bad(name, "only when completing"))
    raise_if(problems)
    note, reason = _clean(note), _clean(override_reason)
    moment = _utc(now)
    stamp = moment.isoformat()
    with transaction(service.db) as conn:
        row = conn.execute(
            "SELECT r.status, r.requested_by_user_id, r.advocate_account_id, r.reference_type, r.override_reason, "
            "a.external_id FROM reference_requests r JOIN accounts a ON a.id = r.advocate_account_id WHERE r.id = ?",
            (request_id,),
        ).fetchone()
        if row is None:
            raise NotFound(f"unknown reference request: {request_id}")
        current, requester, advocate_id, reference_type, previous_override, advocate_external_id = row
        if to_status not in TRANSITIONS[current]:
            allowed = sorted(TRANSITIONS[current], key=STATES.index)
            raise Conflict(
                f"cannot move request {request_id} from {current} to {to_status}"
                + (f": from {current} it can go to {', '.join(allowed)}" if allowed else f": {current} is final"),
                details=[{"field": "to_status", "from": current, "to": to_status, "allowed": allowed}],
            )
        if not may_apply(user, requester, to_status):
            who = "its requester or a reference manager" if to_status == "cancelled" else "a reference manager"
            raise Forbidden(f"only {who} may move a request to {to_status} (you are {user.role})")
        sets: dict[str, Any] = {"status": to_status, "updated_at": stamp}
        event_note = note
        if to_status == "approved":
            sets["approved_at"] = stamp
            if previous_override is None:
                default_capacity = service.settings.default_capacity
                refusals = _refusals(
                    conn, advocate_id, advocate_external_id, reference_type or "call", default_capacity, moment.date()
                )
                if refusals:
                    if not reason:
                        raise _refuse(refusals, user, "approval")
                    sets["override_reason"] = reason
                    event_note = _override_note(note, refusals, reason)
        elif to_status == "scheduled":
            sets["scheduled_for"] = when
        elif to_status == "completed":
            sets["completed_at"] = stamp
            sets.update(outcome)
        conn.execute(
            f"UPDATE reference_requests SET {', '.join(f'{k} = ?' for k in sets)} WHERE id = ?",
            (*sets.values(), request_id),
        )
        _event(conn, request_id, stamp, user.username, current, to_status, event_note)
        enqueue(service, conn, f"request.{to_status}", request_id, user.username, moment)
    return get_request(service, user, request_id)
