"""The lexical component: do the advocate's met needs use the words of the seeker's open needs?

Embeddings blur words that matter (product names, regulations, systems); BM25 does not. Every met
need in the catalog is a document; its words carry Okapi BM25 weights (k1 1.2, b 0.75) with the
document frequencies and the mean length taken over all of them, so a pair's score does not depend
on which other advocates happen to be scored beside it. For each open need, an advocate's score is
its best met need's BM25 over the best any met need in the catalog reaches (1: the closest wording on
record); the component is the mean over the open needs (0..1). A word used by more than half of the
met needs is left out, as classic BM25's idf (negative there) would have it: it says nothing about
who met what, and reading its postings would cost a pass over most of them. (Dividing by the open need's BM25
against itself instead, which penalises every word nobody has met, scored 0.73 on the benchmark
against 0.81.)

The weights are kept as posting lists (per word: the met needs that use it, with their weights), so
scoring reads only the postings of the seeker's own words (scripts/bench_match.py measures it at 100k
accounts); scripts/bench_quality.py measures what the component adds.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

_WORD = re.compile(r"[a-z0-9]+")
STOP = frozenset(
    "a an and the of to for in on with from by our we us at as is are be it its every each all into out so "
    "that this their them they or no not one onto up via per than over can do has have who what when how which "
    "across between within without under after before you your my i".split()
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


@dataclass(frozen=True)
class LexicalIndex:
    """BM25 posting lists over a catalog's met needs (built once per catalog, ``Catalog.lexical``)."""

    vocab: dict[str, int]  # word -> column
    idf: np.ndarray  # (words,)
    start: np.ndarray  # (words + 1,) offsets into the postings, per word
    doc: np.ndarray  # (postings,) the met need that uses the word
    weight: np.ndarray  # (postings,) its BM25 weight there
    doc_row: np.ndarray  # (met needs,) the account row of each

    @classmethod
    def build(cls, texts: Sequence[str], owner: np.ndarray) -> LexicalIndex:
        """From the met needs' texts and the account row of each."""
        bags = [Counter(tokens(t)) for t in texts]
        n = len(bags)
        vocab: dict[str, int] = {}
        postings: list[tuple[int, int, int]] = []  # (word, doc, tf)
        for d, bag in enumerate(bags):
            for term, count in bag.items():
                postings.append((vocab.setdefault(term, len(vocab)), d, count))
        lengths = np.array([sum(b.values()) for b in bags], dtype=np.float64)
        avg_len = float(lengths.mean()) if n and lengths.sum() else 1.0
        if postings:
            p = np.array(postings, dtype=np.int64)
            p = p[np.lexsort((p[:, 1], p[:, 0]))]
            word, doc, tf = p[:, 0], p[:, 1], p[:, 2].astype(np.float64)
        else:
            word = doc = np.zeros(0, dtype=np.int64)
            tf = np.zeros(0)
        frequency = np.bincount(word, minlength=len(vocab)).astype(np.float64)
        idf = np.log1p((n - frequency + 0.5) / (frequency + 0.5))
        saturation = tf * (K1 + 1) / (tf + K1 * (1 - B + B * lengths[doc] / avg_len))
        return cls(
            vocab=vocab,
            idf=idf,
            start=np.concatenate([[0], np.cumsum(frequency)]).astype(np.int64),
            doc=doc.astype(np.int64),
            weight=idf[word] * saturation,
            doc_row=np.asarray(owner, dtype=np.int64),
        )

    def best(self, open_needs: Sequence[str], rows: np.ndarray, n_rows: int) -> np.ndarray:
        """(len(rows), open needs): for each account at ``rows``, its best met need's BM25 against each
        open need over the best of every met need's (0..1). ``n_rows``: the catalog's number of accounts."""
        out = np.zeros((len(rows), len(open_needs)))
        if len(rows) == 0 or len(self.doc) == 0:
            return out
        n_docs = len(self.doc_row)
        score, by_row = np.zeros(n_docs), np.zeros(n_rows)  # reset where written, so each need reuses them
        for j, text in enumerate(open_needs):
            columns = [self.vocab[w] for w in set(tokens(text)) if w in self.vocab]
            spans = [(s, e) for s, e in ((self.start[c], self.start[c + 1]) for c in columns) if 2 * (e - s) <= n_docs]
            if not spans:
                continue
            for s, e in spans:  # a word's postings name each met need once: a plain indexed add is exact
                score[self.doc[s:e]] += self.weight[s:e]
            hits = np.concatenate([self.doc[s:e] for s, e in spans])
            values, owners = score[hits], self.doc_row[hits]
            np.maximum.at(by_row, owners, values / values.max())
            out[:, j] = by_row[rows]
            score[hits] = 0.0
            by_row[owners] = 0.0
        return out

    def coverage(self, open_needs: Sequence[str], rows: np.ndarray, n_rows: int) -> np.ndarray:
        """(len(rows),) the lexical component: the mean over the open needs of ``best``."""
        if not open_needs:
            return np.zeros(len(rows))
        return self.best(open_needs, rows, n_rows).mean(axis=1)

    def shared_words(self, open_needs: Sequence[str], met_needs: Sequence[str], limit: int = 3) -> list[str]:
        """The open needs' words that the met needs use too, rarest first (for a reason a person can check)."""
        theirs = {w for t in met_needs for w in tokens(t)}
        mine = {w for t in open_needs for w in tokens(t)} & theirs
        rank = {w: self.idf[self.vocab[w]] if w in self.vocab else 0.0 for w in mine}
        return sorted(mine, key=lambda w: (-rank[w], w))[:limit]
