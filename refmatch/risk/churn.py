"""Churn events: the labelled history that episodes end in and that ``risk fit`` learns from.

Files are read and validated by ``refmatch.importing`` (kind ``churn``) like every other
import; this module writes them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

from refmatch.store.repo import UpsertCounts, upsert_keyed_value


def upsert_churn(conn: sqlite3.Connection, records: Iterable[Mapping[str, Any]]) -> UpsertCounts:
    return upsert_keyed_value(conn, records, table="churn_events", keys=("churned_on",), value="reason")
