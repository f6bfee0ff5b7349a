"""Benchmark the FAISS index planner against the exact NumPy reference.

Prints one JSON line per (kind, selectivity): build time, single-query latency
(p50/p99, one FAISS thread), recall@k against ``NumpyIndex``, the plan(s) the
planner chose, and peak RSS. Filtered rows on a flat index also get a baseline
line for a plain FAISS flat search with an ``IDSelectorBatch``, the alternative
the planner's exact gather has to beat.

    .venv/bin/python scripts/bench_index.py --n 100000 --dim 384 --queries 200 --kind both
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from collections import Counter
from collections.abc import Callable

import faiss
import numpy as np

from refmatch.index import FaissIndex, NumpyIndex


def clustered(n: int, dim: int, noise: float, seed: int) -> np.ndarray:
    """Normalised points around n/100 centres (noise 2.0 ~ unfiltered HNSW recall 0.99+)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(10, n // 100), dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)]
    x += noise * rng.standard_normal((n, dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def recall(ref: np.ndarray, got: np.ndarray) -> float:
    hits = [len(set(r[r >= 0]) & set(g[g >= 0])) / max(1, int((r >= 0).sum())) for r, g in zip(ref, got, strict=True)]
    return round(float(np.mean(hits)), 4)


def timed(queries: np.ndarray, search: Callable[[np.ndarray], np.ndarray]) -> tuple[list[float], np.ndarray]:
    """One query at a time, as the service asks; returns (ms per query, ids)."""
    search(queries[:1])  # warm caches (the id map, selectors)
    times, rows = [], []
    for q in queries:
        start = time.perf_counter()
        rows.append(search(q[None, :])[0])
        times.append((time.perf_counter() - start) * 1000)
    return times, np.stack(rows)


def run_planner(
    index: FaissIndex, queries: np.ndarray, k: int, allowed: np.ndarray | None
) -> tuple[list[float], np.ndarray, Counter[str]]:
    plans: Counter[str] = Counter()

    def search(q: np.ndarray) -> np.ndarray:
        _, got = index.search(q, k, allowed)
        plans[index.last_plan] += 1
        return got

    times, got = timed(queries, search)
    plans[index.last_plan] -= 1  # drop the warm-up's count (same plan for the same filter size)
    return times, got, plans


def run_flat_selector(
    index: FaissIndex, queries: np.ndarray, k: int, allowed: np.ndarray
) -> tuple[list[float], np.ndarray]:
    """The alternative to the exact gather: FAISS's own flat scan with an id selector.

    The selector is built per query, as a request with its own eligibility would.
    """

    def search(q: np.ndarray) -> np.ndarray:
        params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(allowed))
        return index.faiss_index.search(q, k, params=params)[1]

    return timed(queries, search)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100_000, help="vectors in the index")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--kind", choices=["flat", "hnsw", "both"], default="both")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--noise", type=float, default=2.0, help="cluster spread: higher is harder for HNSW")
    parser.add_argument("--selectivity", default="0.01,0.1,0.5,1.0,none", help="eligible fractions; 'none' = no filter")
    parser.add_argument("--build-threads", type=int, default=0, help="FAISS threads for building (0 = default)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    data = clustered(args.n + args.queries, args.dim, args.noise, args.seed)
    vectors, queries = data[: args.n], data[args.n :]
    rng = np.random.default_rng(args.seed + 1)
    ids = rng.permutation(np.arange(1, 3 * args.n + 1, 3, dtype=np.int64))  # sparse, like SQLite keys after deletes
    ref = NumpyIndex(args.dim)
    ref.add(ids, vectors)
    fractions = [None if s.strip() == "none" else float(s) for s in args.selectivity.split(",")]
    allowed_sets = {f: None if f is None else rng.choice(ids, int(f * args.n), replace=False) for f in fractions}
    truth = {f: ref.search(queries, args.k, allowed)[1] for f, allowed in allowed_sets.items()}

    for kind in ["flat", "hnsw"] if args.kind == "both" else [args.kind]:
        if args.build_threads:
            faiss.omp_set_num_threads(args.build_threads)
        start = time.perf_counter()
        threshold = 0 if kind == "hnsw" else args.n
        index = FaissIndex.build(ids, vectors, hnsw_threshold=threshold)
        build_s = round(time.perf_counter() - start, 2)
        faiss.omp_set_num_threads(1)  # single-query latency: threads only slow one query down
        for fraction, allowed in allowed_sets.items():
            times, got, plans = run_planner(index, queries, args.k, allowed)
            emit(args, kind, fraction, build_s, times, recall(truth[fraction], got), plans, index)
            if kind == "flat" and allowed is not None:
                times, got = run_flat_selector(index, queries, args.k, allowed)
                rec = recall(truth[fraction], got)
                emit(args, kind, fraction, build_s, times, rec, "baseline:flat-selector", index)
    return 0


def emit(
    args: argparse.Namespace,
    kind: str,
    fraction: float | None,
    build_s: float,
    times: list[float],
    rec: float,
    plans: Counter[str] | str,
    index: FaissIndex,
) -> None:
    plan = plans if isinstance(plans, str) else ",".join(f"{p}:{c}" for p, c in plans.most_common() if c > 0)
    row = {
        "kind": kind,
        "n": args.n,
        "dim": args.dim,
        "selectivity": "none" if fraction is None else fraction,
        "build_s": build_s,
        "p50_ms": round(float(np.percentile(times, 50)), 3),
        "p99_ms": round(float(np.percentile(times, 99)), 3),
        f"recall_at_{args.k}": rec,
        "plan": plan,
        "ef_search": index.ef_search if kind == "hnsw" else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(json.dumps(row), flush=True)


if __name__ == "__main__":
    sys.exit(main())
