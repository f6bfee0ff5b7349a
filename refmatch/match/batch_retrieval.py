"""Candidates for many seekers at once: the batched form of ``engine.find_matches``.

Seekers whose eligibility masks are equal (same purpose, stage and products) form a
group, and a group costs one mask, one batched profile search and one batched need
search however many seekers it holds. What differs per seeker (the seeker itself and
``do_not_match`` in both directions) is removed from the group's hits afterwards; the
searches ask for that many more hits, so each seeker keeps exactly the pool that
find_matches retrieves for it (with the same lexical and, for retention, trouble
candidates added per seeker). Each seeker's candidates are then scored with
``scoring.score_candidates`` (and the retention hooks), as find_matches scores them.

One shortcut keeps the rescoring off the per-seeker hot path without changing a
result: need coverage. For each open need the exact need search has already scored
the best ``pool`` met needs; a candidate with one of them gets its exact best from
there, and one without has a best below the last hit. When that last hit scores too
low to earn need credit (``scoring.need_credit`` is 0 there), such candidates cover
the need with 0 exactly as find_matches finds; otherwise (or after an approximate
search) the seeker's coverage is computed in full, like find_matches.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from refmatch.config import Settings
from refmatch.domain.models import Seeker
from refmatch.index.base import VectorIndex
from refmatch.index.threads import exact_knn
from refmatch.match.catalog import Catalog
from refmatch.match.eligibility import Rules, capacity_of, eligible_mask, excluded_rows
from refmatch.match.engine import Indexes
from refmatch.match.retention import add_shared_troubles, trouble_candidates
from refmatch.match.scoring import (
    Candidates,
    lexical_candidates,
    met_need_coverage,
    need_credit,
    ranking,
    score_candidates,
    take,
)

__all__ = ["RetrievalContext", "Scored", "group_key", "retrieve_group", "take"]

_EXACT_PLANS = ("exact", "exact-gather", "flat", "empty")  # FaissIndex.last_plan values of exact searches


@dataclass
class Scored:
    """One seeker's best candidates, best first, and how many advocates were eligible."""

    candidates: Candidates
    eligible: int


class _Rows:
    """Rows of an index's vectors by id, gathered straight from its storage (no per-call overhead)."""

    def __init__(self, index: VectorIndex) -> None:
        self.index = index
        view = getattr(index, "vectors_view", None)
        if view is None:  # an index without zero-copy access: fall back on reconstruct
            self.matrix = None
            return
        ids, self.matrix = view()
        # SQLite keys are dense: a direct id -> position table (a sorted lookup when they are not)
        self.table = None
        if len(ids) and ids.max() < 4 * len(ids) + 1024:
            self.table = np.full(int(ids.max()) + 1, -1, dtype=np.int64)
            self.table[ids] = np.arange(len(ids))
        self.order = np.argsort(ids, kind="stable")
        self.sorted_ids = ids[self.order]

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        if self.matrix is None:
            return self.index.reconstruct(ids)
        if self.table is not None:
            return self.matrix[self.table[ids]]
        return self.matrix[self.order[np.searchsorted(self.sorted_ids, ids)]]


@dataclass
class RetrievalContext:
    """What every group search reads, derived once per catalog and index snapshot."""

    catalog: Catalog
    indexes: Indexes | None  # None: enough to build seekers without vectors
    capacity: np.ndarray  # per account row: the quarterly capacity that applies
    open_order: np.ndarray  # indices into the need arrays of open needs, grouped by account row
    open_start: np.ndarray  # CSR offsets per account row into open_order
    need_owner: np.ndarray  # need id -> the id of the account it belongs to
    profile_store: _Rows | None = None  # None: built without indexes (explaining stored results only)
    need_store: _Rows | None = None

    @classmethod
    def build(cls, catalog: Catalog, indexes: Indexes | None, default_capacity: int) -> RetrievalContext:
        open_ = np.flatnonzero(catalog.need_status < 2)  # open or in progress, as Catalog.open_needs_of
        order = open_[np.argsort(catalog.need_account_row[open_], kind="stable")]
        start = np.searchsorted(catalog.need_account_row[order], np.arange(len(catalog.ids) + 1))
        owner = np.zeros(int(catalog.need_ids.max(initial=0)) + 1, dtype=np.int64)
        owner[catalog.need_ids] = catalog.ids[catalog.need_account_row]
        return cls(
            catalog=catalog,
            indexes=indexes,
            capacity=capacity_of(catalog, default_capacity),
            open_order=order,
            open_start=start,
            need_owner=owner,
            profile_store=_Rows(indexes.profiles) if indexes is not None else None,
            need_store=_Rows(indexes.needs) if indexes is not None else None,
        )

    def open_needs(self, row: int) -> np.ndarray:
        """Need ids the account at ``row`` still has open, ascending (as Catalog.open_needs_of)."""
        return self.catalog.need_ids[self.open_order[self.open_start[row] : self.open_start[row + 1]]]

    def seekers(self, accounts: Sequence[Mapping[str, Any]], *, vectors: bool = True) -> list[Seeker]:
        """Seekers for stored accounts (rows as ``repo.account_row`` returns them), as match_account builds them.

        ``vectors=False`` leaves the vectors out: enough to explain matches already scored.
        """
        catalog = self.catalog
        ids = np.asarray([a["id"] for a in accounts], dtype=np.int64)
        open_ids = [self.open_needs(catalog.row(int(i))) for i in ids]
        profiles = needs = None
        if vectors and len(ids):
            profiles = self.profile_rows(ids)
            flat = np.concatenate(open_ids)
            needs = self.need_rows(flat) if len(flat) else None
        out, at = [], 0
        for i, (account, own) in enumerate(zip(accounts, open_ids)):
            out.append(
                Seeker(
                    name=account["name"],
                    stage=account["stage"],
                    profile_vector=profiles[i] if profiles is not None else np.zeros(0, dtype=np.float32),
                    need_texts=[catalog.need_text[int(n)] for n in own],
                    need_vectors=needs[at : at + len(own)] if needs is not None and len(own) else None,
                    account_id=account["id"],
                    external_id=account["external_id"],
                    industry=account["industry"],
                    employees=account["employees"],
                    country=account["country"],
                    region=account["region"],
                    products=list(account["products"]),
                    do_not_match=list(account["do_not_match"]),
                )
            )
            at += len(own)
        return out

    @property
    def profile_rows(self) -> _Rows:
        if self.profile_store is None:
            raise RuntimeError("this retrieval context was built without indexes")
        return self.profile_store

    @property
    def need_rows(self) -> _Rows:
        if self.need_store is None:
            raise RuntimeError("this retrieval context was built without indexes")
        return self.need_store

    def excluded_rows(self, seeker: Seeker, mask: np.ndarray) -> np.ndarray:
        """Rows the group mask allows but this seeker may not meet: itself, and do_not_match both ways."""
        found = excluded_rows(self.catalog, seeker)
        return found[mask[found]]


def group_key(seeker: Seeker) -> tuple[str, tuple[str, ...]]:
    """What eligible_mask reads from a seeker besides its identity: seekers alike share one mask."""
    return seeker.stage, tuple(sorted({p.casefold() for p in seeker.products}))


@dataclass
class _Hits:
    """Per query: the ids kept (padded with -1), their scores, and whether the search was exact."""

    ids: np.ndarray  # (queries, pool)
    scores: np.ndarray  # (queries, pool)
    exact: bool
    rows: np.ndarray | None = None  # (queries, pool): catalog rows of the hits' accounts, -1 where none


_TIE_MARGIN = 8  # extra hits asked of exact_knn so that ties at the cut are broken by id, as index.search does


def _search(rows: _Rows, queries: np.ndarray, kk: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Top ``kk`` of the ``allowed`` ids for a batch of queries: (scores, ids, exact).

    With the index's storage at hand, the allowed rows are gathered once and searched
    exactly by FAISS's own batched kernel (BLAS blocks and a heap per query, on every
    core): for thousands of queries that is about twice as fast as ``index.search``,
    whose batched exact path ranks with NumPy. Ties are broken by ascending id, as there.
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    if rows.matrix is None:
        scores, ids = rows.index.search(queries, kk, allowed=allowed)
        return scores, ids, getattr(rows.index, "last_plan", "exact") in _EXACT_PLANS
    want = min(kk + _TIE_MARGIN, len(allowed))
    scores, at = exact_knn(queries, rows(allowed), want)
    ids = np.where(at >= 0, allowed[np.maximum(at, 0)], -1)
    order = np.lexsort((np.where(ids >= 0, ids, np.iinfo(np.int64).max), -scores), axis=-1)[:, :kk]
    return np.take_along_axis(scores, order, axis=1), np.take_along_axis(ids, order, axis=1), True


def _hits(
    rows: _Rows,
    queries: np.ndarray,
    pool: int,
    allowed: np.ndarray,
    drop: Sequence[np.ndarray],
    extra: np.ndarray,
    owner: np.ndarray | None = None,
) -> _Hits:
    """Per query, the first ``pool`` allowed ids whose owner (``owner[id]``, or the id) is not in its ``drop``.

    Queries with something to drop ask for ``extra`` more hits, so ``pool`` survive
    whenever that many are allowed; the others are searched without oversampling.
    """
    ids_out = np.full((len(queries), pool), -1, dtype=np.int64)
    scores_out = np.full((len(queries), pool), -np.inf, dtype=np.float32)
    exact = True
    if len(allowed) == 0 or len(queries) == 0:
        return _Hits(ids_out, scores_out, exact)
    plain = extra == 0
    if plain.any():  # the common case: no post-filter
        scores, ids, ok = _search(rows, queries[plain], min(pool, len(allowed)), allowed)
        ids_out[plain, : ids.shape[1]], scores_out[plain, : ids.shape[1]] = ids, scores
        exact &= ok
    which = np.flatnonzero(~plain)
    if len(which):
        kk = min(pool + int(extra[which].max()), len(allowed))
        scores, ids, ok = _search(rows, queries[which], kk, allowed)
        exact &= ok
        for q, row_ids, row_scores in zip(which.tolist(), ids, scores):
            keep = row_ids >= 0
            keys = owner[np.maximum(row_ids, 0)] if owner is not None else row_ids
            keep &= ~np.isin(keys, drop[q])
            kept = np.flatnonzero(keep)[:pool]
            ids_out[q, : len(kept)] = row_ids[kept]
            scores_out[q, : len(kept)] = row_scores[kept]
    ids_out[ids_out < 0] = -1
    scores_out[ids_out < 0] = -np.inf
    return _Hits(ids_out, scores_out, exact)


def retrieve_group(
    ctx: RetrievalContext,
    seekers: Sequence[Seeker],
    rules: Rules,
    settings: Settings,
    *,
    k: int,
    depth: int,
    pool: int | None = None,
) -> list[Scored]:
    """The best ``depth`` candidates of every seeker of one group (one purpose, stage and products).

    ``pool``: hits kept per search, as find_matches's ``max(settings.candidates, 3 k)`` by default.
    """
    if not seekers:
        return []
    catalog, indexes = ctx.catalog, ctx.indexes
    assert indexes is not None, "retrieve_group needs the indexes"
    key = group_key(seekers[0])
    if any(group_key(s) != key for s in seekers):
        raise ValueError("retrieve_group: the seekers do not share one eligibility group")
    stage, products = key
    mask = eligible_mask(catalog, Seeker(name="", stage=stage, profile_vector=np.zeros(0), products=[*products]), rules)
    allowed_rows = np.flatnonzero(mask)
    excluded = [ctx.excluded_rows(s, mask) for s in seekers]
    if len(allowed_rows) == 0:
        return [Scored(_empty(), 0) for _ in seekers]
    pool = pool or max(settings.candidates, 3 * k)

    profile = _hits(
        ctx.profile_rows,
        np.stack([s.profile_vector for s in seekers]),
        pool,
        catalog.ids[allowed_rows],
        [catalog.ids[e] for e in excluded],
        np.array([len(e) for e in excluded]),
    )
    hit_seeker = [np.repeat(np.arange(len(seekers)), pool)]
    hit_rows = [catalog.rows(np.maximum(profile.ids.ravel(), 0))]
    hit_valid = [profile.ids.ravel() >= 0]

    # every open need of the group is one query against the met needs of the allowed advocates
    n_open = np.array([len(s.need_texts) if s.need_vectors is not None else 0 for s in seekers])
    need_seeker = np.repeat(np.arange(len(seekers)), n_open)
    need = None
    if n_open.sum():
        met_order = catalog.met_need_order
        met_ids = catalog.need_ids[met_order[mask[catalog.need_account_row[met_order]]]]
        met_counts = np.diff(catalog.met_need_start)
        extra = np.array([int(met_counts[e].sum()) for e in excluded])[need_seeker]
        owner = ctx.need_owner
        queries = np.concatenate([s.need_vectors for s, n in zip(seekers, n_open) if n])
        need = _hits(ctx.need_rows, queries, pool, met_ids, [catalog.ids[excluded[i]] for i in need_seeker], extra,
                     owner)  # fmt: skip
        need.rows = np.where(need.ids >= 0, catalog.rows(owner[np.maximum(need.ids, 0)]), -1)
        hit_seeker.append(np.repeat(need_seeker, pool))
        hit_rows.append(need.rows.ravel())
        hit_valid.append(need.ids.ravel() >= 0)

    # each seeker's candidates: the union of its hits, by ascending id (as np.unique in find_matches)
    n_rows = len(catalog.ids)
    valid = np.concatenate(hit_valid)
    pairs = np.sort(np.concatenate(hit_seeker)[valid] * n_rows + np.concatenate(hit_rows)[valid])
    pairs = pairs[np.concatenate([[True], pairs[1:] != pairs[:-1]])]
    pair_seeker, pair_row = pairs // n_rows, pairs % n_rows
    bounds = np.searchsorted(pair_seeker, np.arange(len(seekers) + 1))
    first_need = np.concatenate([[0], np.cumsum(n_open)])

    out = []
    for i, seeker in enumerate(seekers):
        rows = pair_row[bounds[i] : bounds[i + 1]]
        own_mask = mask
        if len(excluded[i]):
            own_mask = mask.copy()
            own_mask[excluded[i]] = False
        extra_rows = lexical_candidates(catalog, seeker, np.flatnonzero(own_mask), settings, pool)
        if rules.purpose == "retention":
            extra_rows = np.union1d(extra_rows, catalog.rows(trouble_candidates(catalog, seeker, own_mask, pool)))
        rows = np.union1d(rows, extra_rows) if len(extra_rows) else rows
        eligible = int(len(allowed_rows) - len(excluded[i]))
        if len(rows) == 0:
            out.append(Scored(_empty(), eligible))
            continue
        needs_at = slice(first_need[i], first_need[i + 1])
        cands = _score(ctx, seeker, rows, need, needs_at, rules, settings)
        best = np.argsort(-ranking(cands), kind="stable")[:depth]
        out.append(Scored(take(cands, best), eligible))
    return out


def _score(
    ctx: RetrievalContext,
    seeker: Seeker,
    rows: np.ndarray,
    need: _Hits | None,
    needs_at: slice,
    rules: Rules,
    settings: Settings,
) -> Candidates:
    """Exact scores of the candidates at catalog ``rows`` (ascending), as find_matches computes them."""
    catalog = ctx.catalog
    candidates = catalog.ids[rows]
    profile_sims = ctx.profile_rows(candidates) @ seeker.profile_vector
    n_needs = len(seeker.need_texts)
    need_best = np.zeros((len(rows), n_needs), dtype=np.float32)
    need_best_id = np.full((len(rows), n_needs), -1, dtype=np.int64)
    if n_needs and seeker.need_vectors is not None:
        ids, scores = need.ids[needs_at], need.scores[needs_at]  # type: ignore[union-attr]
        full = ids[:, -1] >= 0
        if need.exact and not (need_credit(scores[full, -1], settings) > 0).any():  # type: ignore[union-attr]
            _coverage_from_hits(rows, need.rows[needs_at], ids, scores, need_best, need_best_id)  # type: ignore
        else:
            need_best, need_best_id = _coverage_exact(ctx, seeker, rows)
    cands = score_candidates(catalog, seeker, rows, profile_sims, need_best, need_best_id, ctx.capacity[rows], settings)
    if rules.purpose == "retention":
        add_shared_troubles(catalog, seeker, cands, settings)
    return cands


def _coverage_from_hits(rows, hit_rows, ids, scores, need_best, need_best_id) -> None:
    """Best met need per candidate and open need, read from the need search's hits (best first).

    ``hit_rows``, ``ids``, ``scores``: (open needs, pool) for this seeker; ``rows``: its candidates.
    """
    at = np.searchsorted(rows, hit_rows)
    ok = (ids >= 0) & (rows[np.minimum(at, len(rows) - 1)] == hit_rows)
    need, hit = np.nonzero(ok)  # by open need, then hit order: best first
    _, first = np.unique(need * len(rows) + at[need, hit], return_index=True)  # a candidate's first hit is its best
    need, hit = need[first], hit[first]
    need_best[at[need, hit], need] = scores[need, hit]
    need_best_id[at[need, hit], need] = ids[need, hit]


def _coverage_exact(ctx: RetrievalContext, seeker: Seeker, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every met need of every candidate against every open need (find_matches's computation)."""
    queries = seeker.need_vectors if seeker.need_vectors is not None else np.zeros((0, 1), dtype=np.float32)
    return met_need_coverage(ctx.catalog, rows, queries, ctx.need_rows)


def _empty() -> Candidates:
    rows = np.zeros(0, dtype=np.int64)
    return Candidates(rows, {}, np.zeros(0), np.zeros((0, 0), np.float32), np.zeros((0, 0), np.int64), rows)
