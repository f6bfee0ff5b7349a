"""The encoder contract: texts in, L2-normalised float32 vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np


class Encoder(Protocol):
    name: str

    @property
    def dim(self) -> int:
        """Dimensions of each vector."""
        ...

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """(len(texts), dim) float32, each row of unit length (inner product = cosine)."""
        ...


def normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


def encoder_name(model: str, backend: str) -> str:
    """The name vectors are cached and indexed under: the model's, unless the backend moves the vectors."""
    return f"{model}+onnx-int8" if backend == "onnx-int8" else model
