"""Retention specifics: an at-risk seeker is best helped by a peer who overcame the same trouble.

The seeker's troubles now (from its stored risk reasons) are compared with the troubles
each candidate recovered from in a past risk episode; the share it overcame is one more
score component, ``shared_troubles``, and the reason names them, with when it recovered.
"""

from __future__ import annotations

import numpy as np

from refmatch.config import Settings
from refmatch.domain.models import Seeker
from refmatch.match.catalog import Catalog
from refmatch.match.scoring import Candidates, weights

W_TROUBLES = 0.30  # weight of shared troubles overcome (a `w_troubles` setting, when the registry has one, wins)


def seeker_troubles(catalog: Catalog, seeker: Seeker) -> tuple[str, ...]:
    if seeker.account_id is None:
        return ()
    try:
        return catalog.risk.troubles.get(catalog.row(seeker.account_id), ())
    except KeyError:
        return ()


def add_shared_troubles(catalog: Catalog, seeker: Seeker, cands: Candidates, settings: Settings) -> None:
    """Add the ``shared_troubles`` component and fold it into the scores (a seeker with no trouble: no change)."""
    troubles = seeker_troubles(catalog, seeker)
    share = np.zeros(len(cands.rows))
    if troubles and catalog.risk.overcame:
        # few accounts have overcome anything: walk them, not the candidates
        by_row = np.zeros(len(catalog.ids))
        for row, recovered in catalog.risk.overcame.items():
            by_row[row] = sum(t in recovered for t in troubles) / len(troubles)
        share = by_row[cands.rows]
    cands.components["shared_troubles"] = share
    if troubles:
        w = float(getattr(settings, "w_troubles", W_TROUBLES))
        base = sum(weights(settings, bool(seeker.need_texts)).values())
        cands.scores = (cands.scores * base + w * share) / (base + w)


def explain_troubles(catalog: Catalog, seeker: Seeker, row: int) -> list[str]:
    """'overcame the same troubles you have now: ...' (or that it has no record of them)."""
    troubles = seeker_troubles(catalog, seeker)
    if not troubles:
        return []
    recovered = catalog.risk.overcame.get(row, {})
    shared = [t for t in troubles if t in recovered]
    if not shared:
        return [f"no record of overcoming your troubles ({', '.join(troubles)})"]
    when = max(recovered[t] for t in shared)
    return [f"overcame {len(shared)} of your {len(troubles)} troubles: {', '.join(shared)} (recovered by {when})"]


def trouble_candidates(catalog: Catalog, seeker: Seeker, mask: np.ndarray, limit: int) -> np.ndarray:
    """Eligible advocates who overcame most of the seeker's troubles, so the searches cannot miss them."""
    troubles = seeker_troubles(catalog, seeker)
    if not troubles:
        return np.zeros(0, dtype=np.int64)
    shared = [
        (-sum(t in recovered for t in troubles), row)
        for row, recovered in catalog.risk.overcame.items()
        if mask[row] and any(t in recovered for t in troubles)
    ]
    rows = [row for _, row in sorted(shared)[:limit]]
    return catalog.ids[np.asarray(rows, dtype=np.int64)]
