"""Find, score, diversify and explain the best advocates for one seeker.

1. eligibility -> a mask over the catalog's accounts;
2. candidates: with ``AdvocateVectors`` (the default), the ``pool`` best of every
   eligible advocate, all of them scored from packed copies of their vectors;
   without (too many advocates to copy), the hits of filtered index searches
   (profiles near the seeker's profile, met needs near each open need);
3. exact rescoring of the candidates from the indexes' float32 vectors;
4. the best ``pool`` kept, diversity re-ranking, explanations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refmatch.config import Settings
from refmatch.domain.models import Match, Seeker
from refmatch.index.base import VectorIndex
from refmatch.match.advocate_vectors import AdvocateVectors, approximate
from refmatch.match.catalog import Catalog
from refmatch.match.diversity import diversify
from refmatch.match.eligibility import Rules, capacity_of, eligible_mask
from refmatch.match.retention import add_shared_troubles, explain_troubles, trouble_candidates
from refmatch.match.scoring import (
    Candidates,
    claimed_needs,
    explain,
    lexical_candidates,
    met_need_coverage,
    ranking,
    score_candidates,
    strength_of,
    take,
)


@dataclass
class Indexes:
    profiles: VectorIndex
    needs: VectorIndex


def _search_ids(index: VectorIndex, queries: np.ndarray, k: int, allowed: np.ndarray) -> np.ndarray:
    if len(allowed) == 0 or k <= 0 or len(queries) == 0:
        return np.zeros(0, dtype=np.int64)
    _, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(allowed)), allowed=allowed)
    return ids[ids >= 0]


def _candidates_from_searches(
    catalog: Catalog, indexes: Indexes, mask: np.ndarray, seeker: Seeker, rules: Rules, settings: Settings, pool: int
) -> np.ndarray:
    """Account ids near the seeker by profile, by a met need (filtered index searches) or, when the lexical
    component weighs in, by the words of its met needs."""
    allowed_ids = catalog.ids[mask]
    candidate_ids = [_search_ids(indexes.profiles, seeker.profile_vector[None, :], pool, allowed_ids)]
    if seeker.need_vectors is not None and len(seeker.need_vectors) > 0:
        met_order = catalog.met_need_order
        met_ids = catalog.need_ids[met_order[mask[catalog.need_account_row[met_order]]]]
        hits = _search_ids(indexes.needs, seeker.need_vectors, pool, met_ids)
        if len(hits):
            hit_rows = catalog.need_account_row[np.searchsorted(catalog.need_ids, hits)]
            candidate_ids.append(catalog.ids[hit_rows])
    candidate_ids.append(catalog.ids[lexical_candidates(catalog, seeker, np.flatnonzero(mask), settings, pool)])
    if rules.purpose == "retention":
        candidate_ids.append(trouble_candidates(catalog, seeker, mask, pool))
    return np.unique(np.concatenate(candidate_ids))


def _candidates_from_advocates(
    catalog: Catalog,
    store: AdvocateVectors,
    mask: np.ndarray,
    seeker: Seeker,
    rules: Rules,
    settings: Settings,
    pool: int,
) -> np.ndarray:
    """Account ids of the ``pool`` best eligible advocates, every one of them scored (approximately)."""
    queries = seeker.need_vectors if seeker.need_vectors is not None else np.zeros((0, len(seeker.profile_vector)))
    approx = approximate(store, mask, seeker.profile_vector, queries)
    rows = approx.rows
    if len(rows) > pool:
        no_ids = np.full(approx.need_best.shape, -1, dtype=np.int64)
        capacities = capacity_of(catalog, rules.default_capacity)[rows]
        cands = score_candidates(
            catalog, seeker, rows, approx.profile_sims, approx.need_best, no_ids, capacities, settings
        )
        if rules.purpose == "retention":
            add_shared_troubles(catalog, seeker, cands, settings)
        rows = rows[_best(ranking(cands), pool)]
    return np.sort(catalog.ids[rows])


def _exact(catalog: Catalog, indexes: Indexes, seeker: Seeker, candidates: np.ndarray):
    """Profile vectors, profile similarities and need coverage of the candidates, from the indexes' float32."""
    rows = catalog.rows(candidates)
    profile_vectors = indexes.profiles.reconstruct(candidates)
    profile_sims = profile_vectors @ seeker.profile_vector
    queries = seeker.need_vectors if seeker.need_vectors is not None else np.zeros((0, len(seeker.profile_vector)))
    need_best, need_best_id = met_need_coverage(catalog, rows, queries, indexes.needs.reconstruct)
    return rows, profile_vectors, profile_sims, need_best, need_best_id


def score_pairs(
    catalog: Catalog, indexes: Indexes, seeker: Seeker, advocate_ids: np.ndarray, rules: Rules, settings: Settings
) -> Candidates:
    """The components and scores of the seeker against these advocates, eligible or not (to learn the weights
    from past requests: what matching would have computed for each pair, as the data stands)."""
    candidates = np.sort(np.asarray(advocate_ids, dtype=np.int64))
    rows, _, profile_sims, need_best, need_best_id = _exact(catalog, indexes, seeker, candidates)
    capacities = capacity_of(catalog, rules.default_capacity)[rows]
    cands = score_candidates(catalog, seeker, rows, profile_sims, need_best, need_best_id, capacities, settings)
    if rules.purpose == "retention":
        add_shared_troubles(catalog, seeker, cands, settings)
    return cands


def _best(scores: np.ndarray, n: int) -> np.ndarray:
    """Positions of the ``n`` best scores, ascending (so ties keep row order)."""
    if len(scores) <= n:
        return np.arange(len(scores))
    return np.sort(np.argpartition(-scores, n - 1)[:n])


def find_matches(
    catalog: Catalog,
    indexes: Indexes,
    seeker: Seeker,
    rules: Rules,
    settings: Settings,
    k: int,
    advocates: AdvocateVectors | None = None,
) -> tuple[list[Match], int]:
    """The top ``k`` matches and how many advocates were eligible at all.

    ``advocates`` (the standing advocates' vectors, built for this catalog) has every
    eligible advocate scored; without it candidates come from index searches. Either
    way the candidates are then rescored exactly.
    """
    mask = eligible_mask(catalog, seeker, rules)
    eligible = int(np.count_nonzero(mask))
    if eligible == 0:
        return [], 0
    pool = max(settings.candidates, 3 * k)
    if advocates is not None and (advocates.min_health is None or rules.min_health >= advocates.min_health):
        candidates = _candidates_from_advocates(catalog, advocates, mask, seeker, rules, settings, pool)
    else:
        candidates = _candidates_from_searches(catalog, indexes, mask, seeker, rules, settings, pool)
    if len(candidates) == 0:
        return [], eligible

    rows, profile_vectors, profile_sims, need_best, need_best_id = _exact(catalog, indexes, seeker, candidates)
    capacities = capacity_of(catalog, rules.default_capacity)[rows]
    cands = score_candidates(catalog, seeker, rows, profile_sims, need_best, need_best_id, capacities, settings)
    retention = rules.purpose == "retention"
    if retention:
        add_shared_troubles(catalog, seeker, cands, settings)
    keep = _best(ranking(cands), pool)
    cands = take(cands, keep)
    order = diversify(ranking(cands), profile_vectors[keep], k, settings.diversity)
    met = {i: len(claimed_needs(cands, i, settings)) for i in order}
    matches = [
        Match(
            rank=rank,
            advocate_id=int(catalog.ids[cands.rows[i]]),
            external_id=catalog.external_ids[cands.rows[i]],
            name=catalog.names[cands.rows[i]],
            score=float(cands.scores[i]),
            strength=strength_of(float(cands.scores[i]), settings, met[i] if seeker.need_texts else None),
            needs_met=met[i],
            components={c: float(v[i]) for c, v in cands.components.items()},
            reasons=[
                *(explain_troubles(catalog, seeker, int(cands.rows[i])) if retention else []),
                *explain(catalog, seeker, cands, i, settings, rules.product),
            ],
        )
        for rank, i in enumerate(order, start=1)
    ]
    return matches, eligible
