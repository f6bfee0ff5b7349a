#!/usr/bin/env python3
"""Calibrate the strong / fair / weak thresholds of a match's score on a matched customer base.

    refmatch demo -q && python scripts/calibrate_strength.py --db refmatch.db --index-dir indexes [-k 5]

Every seeker of every purpose (prospects for references, new deployments for mentors,
at-risk customers for retention) is matched, and each proposed match is labelled by what a
rep could say of it: **good** when it met at least one of the seeker's open needs (a claim
made at ``need_threshold``, measured by scripts/eval_need_claims.py at precision 0.94), or,
for a seeker with no open need, when it is in the same industry and uses the seeker's
product. ``strength_strong`` is the lowest score from which at least 90% of matches are good,
``strength_fair`` the lowest from which at least half are (both measured in bands of 0.05, so that
each says how likely a match at that score is to be good). Prints the figures as JSON lines:
the counts, the share of good matches by score band, and the two thresholds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refmatch.app.service import Service  # noqa: E402
from refmatch.config import load_settings  # noqa: E402
from refmatch.domain.errors import RefmatchError  # noqa: E402

SEEKERS = {"reference": "prospect", "mentor": "onboarding"}


def lowest_with_precision(scores: np.ndarray, good: np.ndarray, share: float, width: float = 0.05) -> float | None:
    """The lowest score s such that, in every band [t, t + width) from s up (in steps of 0.01, bands with 20
    matches or more), at least ``share`` of the matches are good: the score from which a match is, locally,
    that likely to be good (a cumulative share would let the many high scores carry the low ones)."""
    lowest = None
    for t in np.round(np.arange(1.0, 0.0, -0.01), 2):
        band = (scores >= t) & (scores < t + width)
        if band.sum() < 20:
            continue
        if good[band].mean() < share:
            break
        lowest = float(t)
    return lowest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--index-dir", required=True)
    parser.add_argument("-k", type=int, default=5)
    args = parser.parse_args(argv)
    service = Service(load_settings({"db": args.db, "index_dir": args.index_dir}))
    conn = service.conn
    work = [(p, e) for p, stage in SEEKERS.items() for (e,) in conn.execute(
        "SELECT external_id FROM accounts WHERE stage = ? ORDER BY external_id", (stage,))]  # fmt: skip
    work += [("retention", e) for (e,) in conn.execute(
        "SELECT a.external_id FROM risk_scores r JOIN accounts a ON a.id = r.account_id "
        "WHERE r.at_risk AND NOT r.churned ORDER BY a.external_id")]  # fmt: skip
    scores, good = [], []
    for purpose, external_id in work:
        try:
            result = service.match_account(external_id, purpose=purpose, k=args.k)
        except RefmatchError:
            continue
        needs = len(result.seeker.need_texts)
        for m in result.matches:
            claimed = m.needs_met > 0
            fits = m.components.get("industry", 0) > 0 and m.components.get("products", 0) > 0
            scores.append(m.score)
            good.append(claimed if needs else fits)
    s, g = np.array(scores), np.array(good, dtype=bool)
    print(json.dumps({"seekers": len(work), "matches": len(s), "good": int(g.sum()), "k": args.k}))
    for lo in np.arange(0.2, 0.9, 0.05):
        band = (s >= lo) & (s < lo + 0.05)
        if band.any():
            print(json.dumps({"score": f"{lo:.2f}-{lo + 0.05:.2f}", "matches": int(band.sum()),
                              "good": round(float(g[band].mean()), 3)}))  # fmt: skip
    print(json.dumps({
        "strength_strong": lowest_with_precision(s, g, 0.9), "strength_fair": lowest_with_precision(s, g, 0.5),
        "settings now": {"strength_strong": service.settings.strength_strong,
                         "strength_fair": service.settings.strength_fair},
    }))  # fmt: skip
    service.close()


if __name__ == "__main__":
    main()
