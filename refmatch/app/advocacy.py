"""Advocates managed in the app by reference managers: consent and reference types, capacity, blackout and
the do-not-match list, each change audited (``advocate_events``: who, when, the old and the new value).

The values are checked by the same rules as an advocates import (``refmatch.importing``),
so the form and a CSV file accept exactly the same things. Matching sees a change at its
next request: the transaction bumps the data version.

Every function takes the ``Service`` first, as all of ``refmatch.app`` does.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from refmatch import importing
from refmatch.app.requests.states import raise_if
from refmatch.app.service import Service
from refmatch.app.users import User
from refmatch.domain import clock
from refmatch.domain.errors import Forbidden, InvalidInput, NotFound
from refmatch.domain.limits import MAX_ITEMS, MAX_NOTE
from refmatch.store import transaction

FIELDS = ("consent", "reference_types", "capacity_per_quarter", "blackout_until", "do_not_match")


def _shown(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(value) if value else "none"
    return str(value)


def current(service: Service, external_id: str) -> dict[str, Any]:
    """What can be managed of an account as an advocate now (``is_advocate`` False: not one yet)."""
    row = service.conn.execute(
        "SELECT a.id, a.do_not_match, v.account_id, v.consent, v.reference_types, v.capacity_per_quarter, "
        "v.blackout_until FROM accounts a LEFT JOIN advocates v ON v.account_id = a.id WHERE a.external_id = ?",
        (external_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"unknown account: {external_id!r}")
    return {
        "account_id": row[0],
        "is_advocate": row[2] is not None,
        "consent": bool(row[3]) if row[2] is not None else False,
        "reference_types": json.loads(row[4]) if row[4] else [],
        "capacity_per_quarter": row[5],
        "blackout_until": row[6],
        "do_not_match": json.loads(row[1]) if row[1] else [],
    }


def manage(
    service: Service,
    user: User,
    external_id: str,
    *,
    consent: bool,
    reference_types: list[str],
    capacity_per_quarter: int | str | None,
    blackout_until: str | None,
    do_not_match: list[str],
    note: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Set an account's advocate terms (making it an advocate if it is not one); the changes made, each
    recorded as an event. Forbidden unless a reference manager or admin; InvalidInput naming the field."""
    if not user.is_manager:
        raise Forbidden(f"only a reference manager may manage advocates (you are {user.role})")
    before = current(service, external_id)
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInput(f"note: too long: {len(note):,} characters (max {MAX_NOTE:,})")
    row = {
        "account_external_id": external_id,
        "consent": "true" if consent else "false",
        "reference_types": ";".join(reference_types),
        "capacity_per_quarter": "" if capacity_per_quarter is None else str(capacity_per_quarter),
        "blackout_until": blackout_until or "",
    }
    parsed = importing.parse_rows([row], "advocates", source="form", known_accounts={external_id})
    problems = [{"field": e.column or "", "message": e.message} for e in parsed.errors]
    wanted = sorted({x.strip() for x in do_not_match if x.strip()})
    if len(wanted) > MAX_ITEMS:
        problems.append({"field": "do_not_match", "message": f"at most {MAX_ITEMS} accounts"})
    if external_id in wanted:
        problems.append({"field": "do_not_match", "message": "must not contain the account itself"})
    known = {r[0] for r in service.conn.execute(
        f"SELECT external_id FROM accounts WHERE external_id IN ({','.join('?' * len(wanted))})", wanted)}  # fmt: skip
    unknown = [x for x in wanted if x not in known]
    if unknown:
        problems.append({"field": "do_not_match", "message": f"unknown account {unknown[0]!r}"})
    raise_if(problems)
    record = parsed.records[0]
    after = {
        "consent": bool(record["consent"]),
        "reference_types": list(record["reference_types"]),
        "capacity_per_quarter": record["capacity_per_quarter"],
        "blackout_until": record["blackout_until"],
        "do_not_match": wanted,
    }
    changed = [f for f in FIELDS if (after[f] != before[f]) or (f == "consent" and not before["is_advocate"])]
    if not changed:
        return []
    stamp = (now or clock.now()).isoformat()
    account_id = before["account_id"]
    with transaction(service.db) as conn:
        if before["is_advocate"]:
            conn.execute(
                "UPDATE advocates SET consent = ?, reference_types = ?, capacity_per_quarter = ?, blackout_until = ?, "
                "updated_at = ? WHERE account_id = ?",
                (int(after["consent"]), json.dumps(after["reference_types"]), after["capacity_per_quarter"],
                 after["blackout_until"], stamp, account_id),
            )  # fmt: skip
        else:
            conn.execute(
                "INSERT INTO advocates (account_id, consent, reference_types, capacity_per_quarter, blackout_until, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                (account_id, int(after["consent"]), json.dumps(after["reference_types"]),
                 after["capacity_per_quarter"], after["blackout_until"], stamp),
            )  # fmt: skip
        if "do_not_match" in changed:
            conn.execute("UPDATE accounts SET do_not_match = ? WHERE id = ?", (json.dumps(wanted), account_id))
        events = [
            (account_id, stamp, user.username, f, _shown(before[f]) if before["is_advocate"] or f == "do_not_match"
             else None, _shown(after[f]), note)
            for f in changed
        ]  # fmt: skip
        conn.executemany(
            "INSERT INTO advocate_events (account_id, at, actor, field, old_value, new_value, note) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            events,
        )
    return [{"field": e[3], "old": e[4], "new": e[5]} for e in events]


def history(service: Service, external_id: str, limit: int = 50) -> list[dict[str, Any]]:
    """The account's advocate changes made in the app, newest first."""
    account_id = current(service, external_id)["account_id"]
    rows = service.conn.execute(
        "SELECT at, actor, field, old_value, new_value, note FROM advocate_events WHERE account_id = ? "
        "ORDER BY id DESC LIMIT ?",
        (account_id, limit),
    ).fetchall()
    return [dict(zip(("at", "actor", "field", "old", "new", "note"), r)) for r in rows]


def account_choices(service: Service) -> list[dict[str, str]]:
    """Every account by name: what a do-not-match list is chosen from."""
    rows = service.conn.execute("SELECT external_id, name FROM accounts ORDER BY name, external_id").fetchall()
    return [{"external_id": e, "name": n} for e, n in rows]
