"""A deterministic bag-of-words encoder for fast tests: shared words mean similar vectors.

Each lower-cased word is hashed to a signed bucket, so texts that share words have a
high cosine and texts that share none are near orthogonal, with exact, repeatable
values and no model to load.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from refmatch.embed.base import normalize

_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset("a an and the of for to in on with our we is are at by from".split())


class FakeEncoder:
    def __init__(self, dim: int = 256, name: str = "fake-bow"):
        self.dim = dim
        self.name = name
        self.calls = 0
        self.texts_encoded = 0

    def _bucket(self, word: str) -> tuple[int, float]:
        h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
        return h % self.dim, (1.0 if (h >> 63) & 1 else -1.0)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts_encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
            for word in words or ["<empty>"]:
                col, sign = self._bucket(word)
                out[row, col] += sign
        return normalize(out)
