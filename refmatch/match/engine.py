"""Find, score, diversify and explain the best advocates for one seeker.

1. eligibility -> allowed account ids (and their met needs);
2. candidates from two filtered searches: profiles near the seeker's profile, and
   met needs near each of the seeker's open needs;
3. exact rescoring of the candidates with vectors gathered from the indexes;
4. diversity re-ranking, explanations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refmatch.config import Settings
from refmatch.index.base import VectorIndex
from refmatch.match.catalog import Catalog
from refmatch.match.diversity import diversify
from refmatch.match.eligibility import Rules, capacity_of, eligible_mask
from refmatch.match.retention import add_shared_troubles, explain_troubles, trouble_candidates
from refmatch.match.scoring import explain, score_candidates
from refmatch.models import Match, Seeker


@dataclass
class Indexes:
    profiles: VectorIndex
    needs: VectorIndex


def _search_ids(index: VectorIndex, queries: np.ndarray, k: int, allowed: np.ndarray) -> np.ndarray:
    if len(allowed) == 0 or k <= 0 or len(queries) == 0:
        return np.zeros(0, dtype=np.int64)
    _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(allowed)), allowed=allowed)
    return ids[ids >= 0]


def find_matches(
    catalog: Catalog, indexes: Indexes, seeker: Seeker, rules: Rules, settings: Settings, k: int
) -> tuple[list[Match], int]:
    """The top ``k`` matches and how many advocates were eligible at all."""
    mask = eligible_mask(catalog, seeker, rules)
    allowed_rows = np.flatnonzero(mask)
    if len(allowed_rows) == 0:
        return [], 0
    allowed_ids = catalog.ids[allowed_rows]
    pool = max(settings.candidates, 3 * k)

    candidate_ids = [_search_ids(indexes.profiles, seeker.profile_vector[None, :], pool, allowed_ids)]
    has_needs = seeker.need_vectors is not None and len(seeker.need_vectors) > 0
    if has_needs:
        met_order = catalog.met_need_order
        met_ids = catalog.need_ids[met_order[mask[catalog.need_account_row[met_order]]]]
        hits = _search_ids(indexes.needs, seeker.need_vectors, pool, met_ids)
        if len(hits):
            hit_rows = catalog.need_account_row[np.searchsorted(catalog.need_ids, hits)]
            candidate_ids.append(catalog.ids[hit_rows])
    if rules.purpose == "retention":
        candidate_ids.append(trouble_candidates(catalog, seeker, mask, pool))
    candidates = np.unique(np.concatenate(candidate_ids))
    if len(candidates) == 0:
        return [], int(len(allowed_rows))

    rows = catalog.rows(candidates)
    profile_vectors = indexes.profiles.reconstruct(candidates)
    profile_sims = profile_vectors @ seeker.profile_vector
    capacities = capacity_of(catalog, rules.default_capacity)[rows]

    n_needs = len(seeker.need_texts)
    need_best = np.zeros((len(rows), n_needs), dtype=np.float32)
    need_best_id = np.full((len(rows), n_needs), -1, dtype=np.int64)
    if has_needs:
        met_per_row = [catalog.met_needs_of(int(r)) for r in rows]
        all_met = np.concatenate(met_per_row)
        if len(all_met):
            sims = seeker.need_vectors @ indexes.needs.reconstruct(all_met).T  # (needs, all met)
            counts = np.array([len(m) for m in met_per_row])
            starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
            has = counts > 0
            # per candidate and open need: the best of its met needs (reduceat over column blocks)
            best = np.maximum.reduceat(sims, starts[has], axis=1).T
            need_best[has] = best
            owner = np.repeat(np.arange(len(rows)), counts)
            # argmax within each block: order by (owner, -sim) per need
            for j in range(n_needs):
                order = np.lexsort((-sims[j], owner))
                firsts = order[starts[has]]
                need_best_id[has, j] = all_met[firsts]

    cands = score_candidates(catalog, seeker, rows, profile_sims, need_best, need_best_id, capacities, settings)
    retention = rules.purpose == "retention"
    if retention:
        add_shared_troubles(catalog, seeker, cands, settings)
    order = diversify(cands.scores, profile_vectors, k, settings.diversity)
    matches = [
        Match(
            rank=rank,
            advocate_id=int(candidates[i]),
            external_id=catalog.external_ids[rows[i]],
            name=catalog.names[rows[i]],
            score=float(cands.scores[i]),
            components={c: float(v[i]) for c, v in cands.components.items()},
            reasons=[
                *(explain_troubles(catalog, seeker, int(rows[i])) if retention else []),
                *explain(catalog, seeker, cands, i, settings),
            ],
        )
        for rank, i in enumerate(order, start=1)
    ]
    return matches, int(len(allowed_rows))
