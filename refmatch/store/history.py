"""The demo's history: past reference requests with their audit trail and outcomes (``demo_data/requests.csv``).

Loaded once, into a database that has no request yet, so that the dashboard, the request
queue, advocate load and outcome figures show something on first run. Each request gets
the events its state implies (requested by its requester; approved, scheduled, completed
or declined by the demo's reference manager; cancelled by its requester), at the times
the file gives. Requests long past their due date are marked as already noticed, so the
notifier does not tell managers of two years of history; the few open ones are not.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from pathlib import Path

import sqlite_utils

from refmatch.store.db import transaction

MANAGER = "manager"  # the demo's reference manager (refmatch.app.users.DEMO_USERS)


def _later(stamp: str, days: int) -> str:
    return (datetime.fromisoformat(stamp) + timedelta(days=days)).isoformat()


def load_request_history(db: sqlite_utils.Database, path: Path, turnaround: int) -> int:
    """Insert the file's requests and their events unless the database has requests already; how many.
    ``turnaround``: hours from a request to its due date (the setting request_turnaround_hours)."""
    if db.conn.execute("SELECT 1 FROM reference_requests LIMIT 1").fetchone():
        return 0
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    with transaction(db) as conn:
        ids = dict(conn.execute("SELECT external_id, id FROM accounts"))
        for r in rows:
            created, status, by = r["created_at"], r["status"], r["requested_by"]
            events: list[tuple[str, str, str | None, str, str | None]] = [(created, by, None, "requested", None)]
            if r["approved_at"]:
                events.append((r["approved_at"], MANAGER, "requested", "approved", None))
            if r["scheduled_for"]:
                events.append((r["approved_at"], MANAGER, "approved", "scheduled", None))
            if status == "completed":
                events.append((r["completed_at"], MANAGER, "scheduled", "completed", None))
            elif status == "declined":
                events.append((_later(created, 2), MANAGER, "requested", "declined", r["note"] or None))
            elif status == "cancelled":
                before = events[-1][3]
                events.append((_later(events[-1][0], 3), by, before, "cancelled", r["note"] or None))
            due = (datetime.fromisoformat(created) + timedelta(hours=turnaround)).isoformat()
            cur = conn.execute(
                "INSERT INTO reference_requests (seeker_account_id, advocate_account_id, purpose, reference_type, "
                "status, requested_by, requested_by_user_id, note, created_at, updated_at, approved_at, scheduled_for, "
                "completed_at, rating, deal_outcome, influenced_arr, due_at, overdue_notified_at) "
                "VALUES (?, ?, ?, ?, ?, ?, (SELECT id FROM users WHERE username = ?), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    ids[r["seeker_external_id"]], ids[r["advocate_external_id"]], r["purpose"], r["reference_type"],
                    status, by, by, r["note"] or None, created, events[-1][0], r["approved_at"] or None,
                    r["scheduled_for"] or None, r["completed_at"] or None, int(r["rating"]) if r["rating"] else None,
                    r["deal_outcome"] or None, float(r["influenced_arr"]) if r["influenced_arr"] else None, due,
                    None if status == "requested" else due,
                ),
            )  # fmt: skip
            conn.executemany(
                "INSERT INTO request_events (request_id, at, actor, from_status, to_status, note) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(cur.lastrowid, *e) for e in events],
            )
    return len(rows)
