"""FAISS's OpenMP threads, and FAISS's batched exact search: the index layer's compute, in one place.

OpenMP keeps its thread count per calling thread: a request thread does not inherit
the main thread's setting, so each serving thread sets it for itself. One thread is
best for one query at a time (two make a single flat search 2.2-2.5x slower on this
project's 2-core machine); batches of queries use every core they are given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import faiss
import numpy as np


def set_search_threads(n: int) -> None:
    """FAISS's OpenMP threads for searches made from the calling thread."""
    faiss.omp_set_num_threads(max(1, int(n)))


@contextmanager
def search_threads(n: int | None = None) -> Iterator[None]:
    """FAISS uses ``n`` threads (default: every core) inside the block, then what it had before."""
    before = faiss.omp_get_max_threads()
    set_search_threads(n or os.cpu_count() or 1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def exact_knn(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Inner-product top ``k`` of ``vectors`` for each query: (scores, row positions, -1 where none).

    FAISS's own batched kernel (BLAS blocks and a heap per query).
    """
    return faiss.knn(
        np.ascontiguousarray(queries, dtype=np.float32),
        np.ascontiguousarray(vectors, dtype=np.float32),
        k,
        metric=faiss.METRIC_INNER_PRODUCT,
    )
