"""FAISS-backed ``VectorIndex`` with a small search planner.

FAISS ids are our SQLite integer primary keys (``IndexIDMap2`` +
``add_with_ids``). Below ``hnsw_threshold`` vectors the index is an exact
``IndexFlatIP``; above it, ``IndexHNSWFlat``. Approximate indexes lose recall
under tight eligibility filters (measured by ``scripts/bench_index.py``), so
``search`` plans each filtered query:

* small eligible set (or any set on a flat index): score exactly the eligible
  rows, read in place from FAISS's own storage, never copying the index;
* large eligible set on HNSW: HNSW with a selector and an ``efSearch`` raised
  as selectivity drops, falling back to exact when it returns fewer than k.

Threads are the caller's business: nothing here calls ``omp_set_num_threads``.
Not safe for concurrent mutation; concurrent searches are fine (``last_plan``
then reports one of them).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import faiss
import numpy as np

from refmatch.domain.errors import InvalidInput
from refmatch.index.base import (
    IdPositions,
    as_id_array,
    check_add_input,
    check_queries,
    empty_result,
    exact_search,
    top_k,
)

__all__ = ["FaissIndex", "IndexKind"]

IndexKind = Literal["flat", "hnsw"]

# Below this many queries, score each query in place (no gather); from it on,
# gather the eligible rows once and let BLAS amortise the copy over the batch.
_GATHER_MIN_QUERIES = 4
# HNSW + selector: efSearch = ceil(max(ef_search, 2k) / fraction), so that about as
# many *eligible* candidates are explored as an unfiltered search explores. On
# clustered 384-d data (30k, unfiltered recall@10 0.9965) this kept filtered
# recall at 0.990 / 0.9965 / 0.996 for 31 / 50 / 90 % eligible, at 1.2 / 0.65 /
# 0.44 ms; 1.5x or 2x the oversampling bought < 0.01 recall for 1.5-2x the time.
_EF_OVERSAMPLE = 1.0


class _Buffer:
    """Exposes FAISS-owned memory to NumPy and keeps its owner alive."""

    def __init__(self, address: int, shape: tuple[int, int], owner: Any) -> None:
        self.__array_interface__ = {
            "data": (address, True),  # read-only
            "shape": shape,
            "typestr": "<f4",
            "version": 3,
        }
        self._owner = owner


class FaissIndex:
    """Inner-product index over normalised vectors; ids are SQLite keys.

    ``last_plan`` names how the latest search ran: ``"empty"`` (nothing
    eligible, no FAISS call), ``"flat"``, ``"hnsw"``, ``"exact-gather"``
    (eligible rows scored exactly; any filter on a flat index, or at most
    ``exact_fraction`` of an HNSW index), ``"hnsw-filtered"``, and
    ``"hnsw+exact"`` / ``"hnsw-filtered+exact"`` when some queries came back
    short of k from the graph and were redone exactly.
    """

    def __init__(
        self,
        dim: int,
        *,
        hnsw_threshold: int = 50_000,
        hnsw_m: int = 32,
        ef_search: int = 64,
        ef_construction: int = 80,
        exact_fraction: float = 0.3,
        kind: IndexKind = "flat",
    ) -> None:
        if dim < 1:
            raise InvalidInput(f"dim must be positive, got {dim}")
        if kind not in ("flat", "hnsw"):
            raise InvalidInput(f"kind must be 'flat' or 'hnsw', got {kind!r}")
        if not 0.0 <= exact_fraction <= 1.0:
            raise InvalidInput(f"exact_fraction must be in [0, 1], got {exact_fraction}")
        for name, value in (("hnsw_m", hnsw_m), ("ef_search", ef_search)):
            if value < 1:
                raise InvalidInput(f"{name} must be positive, got {value}")
        self.dim = int(dim)
        self.hnsw_threshold = int(hnsw_threshold)
        self.hnsw_m = int(hnsw_m)
        self.ef_search = int(ef_search)
        self.ef_construction = int(ef_construction)
        self.exact_fraction = float(exact_fraction)
        self.last_plan = "none"
        self._index = self._new_faiss(kind)
        self._kind: IndexKind = kind
        self._cache: IdPositions | None = None
        self._view: np.ndarray | None = None  # zero-copy matrix, rebuilt after a mutation
        self.read_only = False  # True when the vectors are memory-mapped from a file (load_index(mmap=True))

    # ------------------------------------------------------------------ construction

    @classmethod
    def build(cls, ids: np.ndarray, vectors: np.ndarray, **params: Any) -> FaissIndex:
        """Build the right kind for the size: flat up to ``hnsw_threshold``, else HNSW.

        An explicit ``kind=`` in ``params`` overrides the choice.
        """
        vec = np.asarray(vectors)
        if vec.ndim != 2:
            raise InvalidInput(f"vectors must be 2-D, got shape {vec.shape}")
        threshold = params.get("hnsw_threshold", 50_000)
        kind: IndexKind = params.pop("kind", None) or ("hnsw" if vec.shape[0] > threshold else "flat")
        index = cls(vec.shape[1], kind=kind, **params)
        index.add(ids, vec)
        return index

    @classmethod
    def from_faiss(cls, index: faiss.Index, **params: Any) -> FaissIndex:
        """Wrap an ``IndexIDMap2`` read from disk (over IndexFlatIP or IndexHNSWFlat)."""
        idmap = index if isinstance(index, faiss.IndexIDMap2) else faiss.downcast_index(index)
        if not isinstance(idmap, faiss.IndexIDMap2):
            raise InvalidInput(f"expected an IndexIDMap2, got {type(idmap).__name__}")
        if idmap is not index:  # a downcast proxy does not own the C++ object
            idmap.referenced_objects = [index]
        inner = faiss.downcast_index(idmap.index)
        if isinstance(inner, faiss.IndexHNSWFlat):
            kind: IndexKind = "hnsw"
        elif isinstance(inner, faiss.IndexFlat):
            kind = "flat"
        else:
            raise InvalidInput(f"unsupported inner index {type(inner).__name__}")
        if inner.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise InvalidInput("index metric is not inner product")
        params.pop("kind", None)
        wrapper = cls(idmap.d, kind=kind, **params)
        wrapper._index = idmap
        if kind == "hnsw":
            inner.hnsw.efConstruction = wrapper.ef_construction
        return wrapper

    def _new_faiss(self, kind: IndexKind) -> faiss.IndexIDMap2:
        if kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efConstruction = self.ef_construction
            inner.hnsw.efSearch = self.ef_search
        else:
            inner = faiss.IndexFlatIP(self.dim)
        return faiss.IndexIDMap2(inner)

    # ------------------------------------------------------------------ introspection

    @property
    def kind(self) -> IndexKind:
        """``"flat"`` (exact) or ``"hnsw"`` (approximate graph)."""
        return self._kind

    @property
    def faiss_index(self) -> faiss.IndexIDMap2:
        """The underlying FAISS object (for ``faiss.write_index``)."""
        return self._index

    def params(self) -> dict[str, Any]:
        """Constructor parameters, recorded in the manifest so a load plans alike."""
        return {
            "hnsw_threshold": self.hnsw_threshold,
            "hnsw_m": self.hnsw_m,
            "ef_search": self.ef_search,
            "ef_construction": self.ef_construction,
            "exact_fraction": self.exact_fraction,
        }

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __repr__(self) -> str:
        return f"FaissIndex(kind={self.kind!r}, dim={self.dim}, count={len(self)})"

    def ids(self) -> np.ndarray:
        return self._map().by_pos.copy()

    def _map(self) -> IdPositions:
        """id <-> storage position, cached until the next mutation."""
        if self._cache is None:
            by_pos = faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
            self._cache = IdPositions(by_pos)
        return self._cache

    def _storage(self) -> faiss.IndexFlat:
        inner = faiss.downcast_index(self._index.index)
        if self._kind == "hnsw":
            return faiss.downcast_index(inner.storage)
        return inner

    def _matrix(self) -> np.ndarray:
        """Zero-copy read-only (n, dim) view of the stored vectors (kept until the next mutation)."""
        view = self._view
        n = len(self)
        if view is not None and len(view) == n:
            return view
        if n == 0:
            return np.empty((0, self.dim), dtype=np.float32)
        flat = faiss.rev_swig_ptr(self._storage().get_xb(), n * self.dim)
        address = flat.__array_interface__["data"][0]
        self._view = np.asarray(_Buffer(address, (n, self.dim), self._index))
        return self._view

    def vectors_view(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, matrix) where row i of the zero-copy matrix has id ids[i].

        For callers that gather rows (e.g. rescoring). The matrix is read-only
        and only valid until the next ``add`` or ``remove``.
        """
        return self._map().by_pos.copy(), self._matrix()

    # ------------------------------------------------------------------ mutation

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under their ids; the index keeps its kind."""
        self._check_writable()
        ids_arr, vec = check_add_input(ids, vectors, self.dim, self._map())
        if ids_arr.size == 0:
            return
        self._index.add_with_ids(vec, ids_arr)
        self._cache = self._view = None

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (unknown ones ignored); return how many went.

        Flat: in place. HNSW graphs cannot delete, so the index is rebuilt from
        the remaining stored vectors: O(n) memory and a full HNSW build time
        (~40 s per 100k vectors on 2 cores). Batch removals.
        """
        self._check_writable()
        id_map = self._map()
        by_pos = id_map.by_pos
        pos = id_map.allowed_positions(as_id_array(ids))
        if pos.size == 0:
            return 0
        if self._kind == "flat":
            removed = int(self._index.remove_ids(faiss.IDSelectorBatch(by_pos[pos])))
        else:
            keep = np.ones(by_pos.size, dtype=bool)
            keep[pos] = False
            vectors = self._matrix()[keep]  # a copy: the old graph is dropped below
            rebuilt = self._new_faiss("hnsw")
            rebuilt.add_with_ids(vectors, by_pos[keep])
            self._index = rebuilt
            removed = int(pos.size)
        self._cache = self._view = None
        return removed

    def _check_writable(self) -> None:
        if self.read_only:
            raise InvalidInput("this index is memory-mapped read-only: load it with mmap=False to change it")

    def reconstruct(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors for ``ids`` (a copy), in the order asked."""
        wanted = as_id_array(ids)
        pos, present = self._map().lookup(wanted)
        if not present.all():
            raise InvalidInput(f"id {int(wanted[~present][0])} is not in the index")
        return self._matrix()[pos]

    # ------------------------------------------------------------------ search

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k inner products; ``allowed`` restricts the returnable ids.

        Whenever at least k allowed ids are in the index, k results come back.
        The plan taken is left in ``last_plan``.
        """
        q = check_queries(queries, k, self.dim)
        n = len(self)
        if n == 0:
            self.last_plan = "empty"
            return empty_result(q.shape[0], k)
        if allowed is None:
            return self._search_all(q, k)
        pos = self._map().allowed_positions(allowed)  # sorted: storage order reads sequentially
        if pos.size == 0:
            self.last_plan = "empty"
            return empty_result(q.shape[0], k)
        if pos.size == n:  # every stored id is eligible: the filter is a no-op
            return self._search_all(q, k)
        if self._kind == "flat" or pos.size <= self.exact_fraction * n:
            self.last_plan = "exact-gather"
            return self._exact(q, pos, k)
        return self._search_hnsw_filtered(q, k, pos)

    def _exact(self, q: np.ndarray, pos: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact scores over the rows at ``pos``, read in place from FAISS storage.

        One query, 100k x 384, 1 thread, on the 2-core dev machine: scoring by
        index took 0.09 / 2.3 / 7.6 ms at 1 / 10 / 50 % eligible, a flat search
        with a (prebuilt) selector 0.5 / 2.9 / 9.8 ms, and a NumPy gather, which
        copies the rows, 0.16 / 3.5 / 25 ms. For a batch the copy is paid once
        and BLAS wins, hence the gather from ``_GATHER_MIN_QUERIES`` queries.
        """
        cand = self._map().by_pos[pos]
        nq, m = q.shape[0], pos.size
        if nq >= _GATHER_MIN_QUERIES:
            return exact_search(q, self._matrix()[pos], cand, k)
        pos = np.ascontiguousarray(pos, dtype=np.int64)
        xb = self._storage().get_xb()
        scores = np.empty((nq, m), dtype=np.float32)
        for i in range(nq):
            faiss.fvec_inner_products_by_idx(
                faiss.swig_ptr(scores[i]), faiss.swig_ptr(q[i]), xb, faiss.swig_ptr(pos), self.dim, 1, m
            )
        return top_k(scores, cand, k)

    def _search_all(self, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._kind == "flat":
            self.last_plan = "flat"
            return _clean(*self._index.search(q, k))
        self.last_plan = "hnsw"
        params = faiss.SearchParametersHNSW(efSearch=max(self.ef_search, k))
        scores, ids = _clean(*self._index.search(q, k, params=params))
        all_pos = np.arange(len(self), dtype=np.int64)
        return self._complete(q, k, scores, ids, all_pos, "hnsw+exact")

    def _search_hnsw_filtered(self, q: np.ndarray, k: int, pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """HNSW over storage positions with a bitmap selector, oversampled by 1/fraction."""
        n = len(self)
        fraction = pos.size / n
        bits = np.zeros(n, dtype=bool)
        bits[pos] = True
        bitmap = np.packbits(bits, bitorder="little")
        selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bitmap))
        ef = math.ceil(_EF_OVERSAMPLE * max(self.ef_search, 2 * k) / fraction)
        params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
        inner = faiss.downcast_index(self._index.index)
        scores, labels = _clean(*inner.search(q, k, params=params))
        by_pos = self._map().by_pos
        ids = np.where(labels >= 0, by_pos[np.maximum(labels, 0)], -1)
        self.last_plan = "hnsw-filtered"
        return self._complete(q, k, scores, ids, pos, "hnsw-filtered+exact")

    def _complete(
        self,
        q: np.ndarray,
        k: int,
        scores: np.ndarray,
        ids: np.ndarray,
        pos: np.ndarray,
        plan: str,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Redo exactly the queries for which the graph returned fewer than k."""
        need = min(k, pos.size)
        short = np.flatnonzero((ids >= 0).sum(axis=1) < need)
        if short.size:
            s_exact, i_exact = self._exact(q[short], pos, k)
            scores[short], ids[short] = s_exact, i_exact
            self.last_plan = plan
        return scores, ids


def _clean(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FAISS pads with -FLT_MAX / -1; the contract pads with -inf / -1."""
    scores = np.asarray(scores, dtype=np.float32)
    ids = np.asarray(ids, dtype=np.int64)
    scores[ids < 0] = -np.inf
    return scores, ids
