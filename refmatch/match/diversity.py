"""Re-rank the top k so the list is not a run of near-copies of one advocate."""

from __future__ import annotations

import numpy as np


def diversify(scores: np.ndarray, vectors: np.ndarray, k: int, strength: float, floor: float = 0.5) -> list[int]:
    """Greedy maximal-marginal-relevance order of up to ``k`` positions.

    A candidate loses ``strength`` times how far its closest already-chosen peer's
    profile similarity exceeds ``floor`` (scaled to [0, 1]); peers that are merely
    alike are left alone, near-duplicates are pushed down. ``strength = 0`` keeps
    score order.
    """
    n = len(scores)
    order = list(np.argsort(-scores, kind="stable"))
    if strength <= 0 or n <= 1:
        return [int(i) for i in order[:k]]
    chosen: list[int] = []
    closest = np.full(n, -1.0, dtype=np.float32)
    remaining = np.ones(n, dtype=bool)
    for _ in range(min(k, n)):
        penalty = strength * np.clip((closest - floor) / (1 - floor), 0, 1)
        adjusted = np.where(remaining, scores - penalty, -np.inf)
        best = int(np.argmax(adjusted))
        chosen.append(best)
        remaining[best] = False
        closest = np.maximum(closest, vectors @ vectors[best])
    return chosen
