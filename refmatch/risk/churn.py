"""Churn events: the labelled history that episodes end in and that ``risk fit`` learns from.

Files are read and validated by ``refmatch.importing`` (kind ``churn``) like every other
import; this module writes them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from refmatch.store.repo import UpsertCounts, account_ids_by_external


def upsert_churn(conn: sqlite3.Connection, records: Iterable[Mapping[str, Any]]) -> UpsertCounts:
    records = list(records)
    ids = account_ids_by_external(conn, (r["account_external_id"] for r in records))
    counts = UpsertCounts()
    for rec in records:
        account_id = ids[rec["account_external_id"]]
        row = conn.execute(
            "SELECT id, reason FROM churn_events WHERE account_id = ? AND churned_on = ?",
            (account_id, rec["churned_on"]),
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO churn_events (account_id, churned_on, reason) VALUES (?, ?, ?)",
                (account_id, rec["churned_on"], rec["reason"]),
            )
            counts.inserted += 1
        elif row[1] == rec["reason"]:
            counts.unchanged += 1
        else:
            conn.execute("UPDATE churn_events SET reason = ? WHERE id = ?", (rec["reason"], row[0]))
            counts.updated += 1
    return counts
