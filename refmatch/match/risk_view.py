"""What matching needs to know about risk, read from the risk tables as plain data.

Matching sits below risk in the layers, so it never calls the risk rules: it reads the
scores and episodes ``refmatch risk`` stored. Only the at-risk rows, the rows with a
trouble now and the recovered episodes are read, so this costs little at 100k accounts.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field

import numpy as np


@dataclass
class RiskView:
    at_risk_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    troubles: dict[int, tuple[str, ...]] = field(default_factory=dict)  # row -> its troubles now
    overcame: dict[int, dict[str, str]] = field(default_factory=dict)  # row -> trouble -> recovered on


def load_risk_view(conn: sqlite3.Connection, ids: np.ndarray) -> RiskView:
    view = RiskView()
    at_risk = []
    for account_id, flagged, troubles in conn.execute(
        "SELECT account_id, at_risk OR churned, troubles FROM risk_scores WHERE at_risk OR churned OR troubles != '[]'"
    ):
        row = int(np.searchsorted(ids, account_id))
        if flagged:
            at_risk.append(row)
        if troubles != "[]":
            view.troubles[row] = tuple(json.loads(troubles))
    view.at_risk_rows = np.asarray(sorted(at_risk), dtype=np.int64)
    for account_id, troubles, ended in conn.execute(
        "SELECT account_id, troubles, ended_on FROM risk_episodes WHERE outcome = 'resolved' ORDER BY ended_on"
    ):
        recovered = view.overcame.setdefault(int(np.searchsorted(ids, account_id)), {})
        recovered.update(dict.fromkeys(json.loads(troubles), ended))
    return view
