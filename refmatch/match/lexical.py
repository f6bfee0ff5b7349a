"""The lexical component: do the advocate's met needs use the words of the seeker's open needs?

Embeddings blur words that matter (product names, regulations, systems); BM25 does not. For each
open need, every candidate's met needs are scored with Okapi BM25 (k1 1.2, b 0.75), the
document frequencies taken over the met needs of the candidates being scored; a candidate's
best, divided by the best of any candidate, is its score for that need, and the component is
the mean over the open needs (0..1). Scoring only the candidates keeps it at a millisecond or
so per seeker whatever the size of the customer base (a full-text query over every met need
took 100 ms a seeker at 100k accounts). scripts/bench_quality.py measures what it adds.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")
STOP = frozenset(
    "a an and the of to for in on with from by our we us at as is are be it its every each all into out so "
    "that this their them they or no not one".split()
)
K1, B = 1.2, 0.75


def tokens(text: str) -> list[str]:
    """Lower-case words without the commonest ones, a plural 's' taken off ('warehouses' is 'warehouse')."""
    out = []
    for word in _WORD.findall(text.lower()):
        if word in STOP:
            continue
        out.append(word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word)
    return out


def coverage(open_needs: Sequence[str], candidate_needs: Sequence[Sequence[str]]) -> np.ndarray:
    """(candidates,) the lexical component of each candidate, given its met needs' texts."""
    n = len(candidate_needs)
    queries = [q for q in (set(tokens(t)) for t in open_needs) if q]
    docs = [(c, Counter(tokens(t))) for c, texts in enumerate(candidate_needs) for t in texts]
    if not queries or not docs:
        return np.zeros(n)
    frequency = Counter(term for _, doc in docs for term in doc)
    avg_len = sum(sum(doc.values()) for _, doc in docs) / len(docs) or 1.0
    idf = {t: math.log(1 + (len(docs) - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}
    total = np.zeros(n)
    for query in queries:
        best = np.zeros(n)
        for c, doc in docs:
            length = sum(doc.values())
            score = 0.0
            for term in query & doc.keys():
                tf = doc[term]
                score += idf[term] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / avg_len))
            best[c] = max(best[c], score)
        if best.max() > 0:
            total += best / best.max()
    return total / len(open_needs)
