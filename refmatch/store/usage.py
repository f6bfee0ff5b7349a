"""Slots an advocate has used: the one definition that eligibility, the approval check and every load bar share.

A reference request uses a slot of its advocate's quarter from the day it was approved
(or created, for a request that was never approved) while it is approved, scheduled or
completed. Days are UTC dates (``refmatch.domain.clock``).
"""

from __future__ import annotations

import sqlite3
from datetime import date

from refmatch.domain.clock import quarter_window, recent_window
from refmatch.domain.vocabulary import USING_CAPACITY

RECENT_DAYS = 90  # the window fatigue looks back over


def near_capacity(capacity: str, used: str) -> str:
    """SQL true when an advocate has used at least a share (the one ``?``, before any in ``capacity``) of this
    quarter's slots: the ``near_capacity_share`` setting, 0.75 by default (an advocate with no slot at all is
    full, so near capacity too)."""
    return f"({used}) >= ? * ({capacity})"


_USED_ON = "substr(COALESCE(approved_at, created_at), 1, 10)"  # the day a request took its slot


def slot_use_cte(today: date, *, account_id: int | None = None) -> tuple[str, list]:
    """``slot_use AS (...)`` for a ``WITH`` clause, and its parameters.

    One row per advocate account that ever used a slot: ``account_id``, ``used_quarter``
    (slots used in ``today``'s quarter), ``used_recent`` (in the last RECENT_DAYS days) and
    ``last_used_at``. ``account_id`` limits it to one advocate.
    """
    marks = ",".join("?" * len(USING_CAPACITY))
    only = " AND advocate_account_id = ?" if account_id is not None else ""
    sql = (
        "slot_use AS (SELECT advocate_account_id AS account_id, "
        f"SUM({_USED_ON} BETWEEN ? AND ?) AS used_quarter, "
        f"SUM({_USED_ON} BETWEEN ? AND ?) AS used_recent, "
        "MAX(COALESCE(approved_at, created_at)) AS last_used_at "
        f"FROM reference_requests WHERE status IN ({marks}){only} GROUP BY advocate_account_id)"
    )
    params: list = [*quarter_window(today), *recent_window(today, RECENT_DAYS), *USING_CAPACITY]
    if account_id is not None:
        params.append(account_id)
    return sql, params


def slots_used(conn: sqlite3.Connection, today: date) -> list[tuple[int, int, int]]:
    """(account id, used this quarter, used in the last RECENT_DAYS days) of every advocate that used any."""
    cte, params = slot_use_cte(today)
    return conn.execute(f"WITH {cte} SELECT account_id, used_quarter, used_recent FROM slot_use", params).fetchall()


def slots_used_by(conn: sqlite3.Connection, account_id: int, today: date) -> int:
    """Slots one advocate has used in ``today``'s quarter."""
    cte, params = slot_use_cte(today, account_id=account_id)
    row = conn.execute(f"WITH {cte} SELECT used_quarter FROM slot_use", params).fetchone()
    return int(row[0]) if row else 0
