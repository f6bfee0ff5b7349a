"""The narrow vector-index contract, and an exact NumPy implementation of it.

Ids are our SQLite integer primary keys, so no mapping table can drift.
``NumpyIndex`` is the brute-force reference that recall tests and benchmarks
compare the FAISS index against; it is also fine for small data sets.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from refmatch.domain.errors import InvalidInput

__all__ = [
    "NumpyIndex",
    "VectorIndex",
    "as_id_array",
    "check_add_input",
    "check_queries",
    "empty_result",
    "exact_search",
    "IdPositions",
    "top_k",
]


@runtime_checkable
class VectorIndex(Protocol):
    """Inner-product index over L2-normalised float32 vectors keyed by int64 ids.

    ``search`` returns scores (nq, k) float32, descending, and ids (nq, k)
    int64, padded with -inf / -1 when fewer than k candidates exist.
    ``allowed`` restricts the ids a search may return (eligibility); ids in
    it that are not in the index are ignored. Whenever at least k allowed ids
    are present, k results come back.
    """

    dim: int

    def __len__(self) -> int: ...

    def ids(self) -> np.ndarray: ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, ids: np.ndarray) -> int: ...

    def reconstruct(self, ids: np.ndarray) -> np.ndarray: ...

    def search(
        self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]: ...


# --------------------------------------------------------------------------- helpers
# Shared by both implementations so that they validate and rank identically.


_DENSE_FACTOR = 4  # direct id table while max id < 4 n (8 bytes per slot)


def as_id_array(ids: np.ndarray, what: str = "ids") -> np.ndarray:
    """Coerce to a contiguous 1-D int64 array; reject floats, which hide bugs."""
    arr = np.asarray(ids)
    if arr.size == 0:
        return np.empty(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise InvalidInput(f"{what} must be integers, got dtype {arr.dtype}")
    return np.ascontiguousarray(arr.reshape(-1), dtype=np.int64)


def check_add_input(
    ids: np.ndarray, vectors: np.ndarray, dim: int, existing: IdPositions
) -> tuple[np.ndarray, np.ndarray]:
    """Validate an ``add`` call; return (ids int64, vectors float32 C-contiguous).

    FAISS's IndexIDMap2 accepts duplicate ids silently and -1 is its padding
    marker, so both are refused here, before anything is written.
    """
    ids_arr = as_id_array(ids)
    vec = np.asarray(vectors)
    if vec.ndim != 2 or vec.shape[1] != dim:
        raise InvalidInput(f"vectors must have shape (n, {dim}), got {vec.shape}")
    if vec.shape[0] != ids_arr.shape[0]:
        raise InvalidInput(f"{ids_arr.shape[0]} ids for {vec.shape[0]} vectors")
    if ids_arr.size and ids_arr.min() < 0:
        raise InvalidInput(f"ids must be >= 0, got {int(ids_arr.min())}")
    uniq, counts = np.unique(ids_arr, return_counts=True)
    if uniq.size != ids_arr.size:
        dups = uniq[counts > 1][:5].tolist()
        raise InvalidInput(f"duplicate ids within the call: {dups}")
    clash = uniq[existing.lookup(uniq)[1]]
    if clash.size:
        raise InvalidInput(f"ids already in the index: {clash[:5].tolist()}")
    vec = np.ascontiguousarray(vec, dtype=np.float32)
    if not np.isfinite(vec).all():
        raise InvalidInput("vectors contain NaN or infinite values")
    return ids_arr, vec


def check_queries(queries: np.ndarray, k: int, dim: int) -> np.ndarray:
    """Validate queries (one 1-D query is accepted as a batch of one)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidInput(f"k must be a positive integer, got {k!r}")
    q = np.asarray(queries)
    if q.ndim == 1:
        q = q.reshape(1, -1)
    if q.ndim != 2 or q.shape[1] != dim:
        raise InvalidInput(f"queries must have shape (nq, {dim}), got {np.shape(queries)}")
    q = np.ascontiguousarray(q, dtype=np.float32)
    if not np.isfinite(q).all():
        raise InvalidInput("queries contain NaN or infinite values")
    return q


def empty_result(nq: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """All-padding result: scores -inf, ids -1."""
    return (
        np.full((nq, k), -np.inf, dtype=np.float32),
        np.full((nq, k), -1, dtype=np.int64),
    )


def top_k(scores: np.ndarray, cand_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k of each row of ``scores`` (nq, m) over candidates ``cand_ids`` (m,).

    Ties break by ascending id so that both implementations agree exactly.
    """
    nq, m = scores.shape
    out_s, out_i = empty_result(nq, k)
    kk = min(k, m)
    if kk == 0 or nq == 0:
        return out_s, out_i
    if kk < m:
        part = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
    else:
        part = np.broadcast_to(np.arange(m), (nq, m))
    sel_s = np.take_along_axis(scores, part, axis=1)
    sel_i = cand_ids[part]
    order = np.lexsort((sel_i, -sel_s), axis=-1)
    out_s[:, :kk] = np.take_along_axis(sel_s, order, axis=1)
    out_i[:, :kk] = np.take_along_axis(sel_i, order, axis=1)
    return out_s, out_i


class IdPositions:
    """id -> storage position, rebuilt after each mutation and reused by every search.

    Eligibility filters arrive as id lists on every query, so the lookup must
    cost O(len(allowed)), not a sort: SQLite keys are dense, which allows a
    direct table; sparse ids fall back to binary search.
    """

    def __init__(self, by_pos: np.ndarray) -> None:
        self.by_pos = by_pos
        n = by_pos.size
        self.table: np.ndarray | None = None
        self.sorted_ids = self.order = np.empty(0, dtype=np.int64)
        if n == 0:
            return
        max_id = int(by_pos.max())
        if max_id < _DENSE_FACTOR * n + 1024:
            self.table = np.full(max_id + 1, -1, dtype=np.int64)
            self.table[by_pos] = np.arange(n, dtype=np.int64)
        else:
            self.order = np.argsort(by_pos, kind="stable")
            self.sorted_ids = by_pos[self.order]

    def lookup(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(positions of the present ids, in order; presence mask over ``wanted``)."""
        if self.by_pos.size == 0 or wanted.size == 0:
            return np.empty(0, dtype=np.int64), np.zeros(wanted.shape, dtype=bool)
        if self.table is not None:
            if wanted.min() >= 0 and wanted.max() < self.table.size:
                pos = self.table[wanted]
            else:
                inside = (wanted >= 0) & (wanted < self.table.size)
                pos = np.full(wanted.shape, -1, dtype=np.int64)
                pos[inside] = self.table[wanted[inside]]
            present = pos >= 0
            return pos[present], present
        idx = np.searchsorted(self.sorted_ids, wanted)
        idx[idx == self.sorted_ids.size] = 0
        present = self.sorted_ids[idx] == wanted
        return self.order[idx[present]], present

    def allowed_positions(self, allowed: np.ndarray) -> np.ndarray:
        """Sorted, de-duplicated positions of the allowed ids present (others ignored)."""
        pos, _ = self.lookup(as_id_array(allowed, "allowed"))
        n = self.by_pos.size
        if pos.size * 16 < n:  # few: sort them (np.unique's hashing is slower here)
            pos = np.sort(pos)
            return pos[np.concatenate(([True], pos[1:] != pos[:-1]))] if pos.size else pos
        mask = np.zeros(n, dtype=bool)
        mask[pos] = True
        return np.flatnonzero(mask)


# --------------------------------------------------------------------------- NumpyIndex

_MAX_SCORE_CELLS = 1 << 23  # cap the (nq, m) score block at 32 MB


class NumpyIndex:
    """Exact brute force: a matrix, an id array and argpartition.

    The reference for recall tests; ``add`` and ``remove`` copy the matrix,
    so it suits tests and small data, not a growing production index.
    """

    def __init__(self, dim: int) -> None:
        if dim < 1:
            raise InvalidInput(f"dim must be positive, got {dim}")
        self.dim = int(dim)
        self._ids = np.empty(0, dtype=np.int64)
        self._vectors = np.empty((0, self.dim), dtype=np.float32)
        self._positions: IdPositions | None = None

    def __len__(self) -> int:
        return int(self._ids.size)

    def ids(self) -> np.ndarray:
        return self._ids.copy()

    def _map(self) -> IdPositions:
        if self._positions is None:
            self._positions = IdPositions(self._ids)
        return self._positions

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids_arr, vec = check_add_input(ids, vectors, self.dim, self._map())
        if ids_arr.size == 0:
            return
        self._ids = np.concatenate([self._ids, ids_arr])
        self._vectors = np.concatenate([self._vectors, vec])
        self._positions = None

    def remove(self, ids: np.ndarray) -> int:
        gone = np.unique(as_id_array(ids))
        keep = ~np.isin(self._ids, gone)
        removed = int(keep.size - keep.sum())
        if removed:
            self._ids = self._ids[keep]
            self._vectors = self._vectors[keep]
            self._positions = None
        return removed

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        wanted = as_id_array(ids)
        pos, present = self._map().lookup(wanted)
        if not present.all():
            raise InvalidInput(f"id {int(wanted[~present][0])} is not in the index")
        return self._vectors[pos].copy()

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = check_queries(queries, k, self.dim)
        if allowed is None:
            vectors, cand = self._vectors, self._ids
        else:
            pos = self._map().allowed_positions(allowed)
            vectors, cand = self._vectors[pos], self._ids[pos]
        return exact_search(q, vectors, cand, k)


def exact_search(q: np.ndarray, vectors: np.ndarray, cand_ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Matmul + top-k in query chunks, bounding the score block's memory."""
    nq, m = q.shape[0], vectors.shape[0]
    if m == 0:
        return empty_result(nq, k)
    step = max(1, _MAX_SCORE_CELLS // m)
    parts = [top_k(q[i : i + step] @ vectors.T, cand_ids, k) for i in range(0, nq, step)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
