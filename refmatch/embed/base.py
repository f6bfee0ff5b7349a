"""The encoder contract: texts in, L2-normalised float32 vectors out."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

# A way of running the model that is to share torch's vectors (their cache, their indexes) must give
# them on these texts to at least this cosine: the ONNX export in fp32, torch in half precision.
MIN_COSINE = 0.9999
PROBES = (
    "hello",
    "We run a fleet of delivery vans across three countries and need route planning that copes with "
    "late orders, driver shifts and customs paperwork.",
    "Migrating 40 warehouses from spreadsheets to one inventory system without stopping shipments.",
    "SOC 2 audit evidence collection for a 200-person fintech",
    "   leading and trailing spaces, UPPER case and punctuation!?   ",
    "word " * 400,  # longer than the model's limit: truncated the same way
)


TEXTS_PER_CALL = 256  # texts an index build hands an encoder at once (and commits to the cache together)
CPU_BATCH = 64  # texts per batch on a CPU when the settings leave it automatic (REFMATCH_BATCH_SIZE=0)


def texts_per_call(encoder: object) -> int:
    """How many texts to hand ``encoder`` in one ``encode``: 256, unless it says (``texts_per_call``)
    that it needs more in hand to keep busy: a GPU pipeline tokenizing batches ahead, a pool of actors."""
    return max(1, int(getattr(encoder, "texts_per_call", TEXTS_PER_CALL)))


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


def encoder_name(model: str, backend: str, precision: str = "fp32") -> str:
    """The name vectors are cached and indexed under: the model's, unless the backend or the
    precision moves the vectors (int8 weights, bf16's 8-bit mantissa)."""
    if backend == "onnx-int8":
        return f"{model}+onnx-int8"
    return f"{model}+bf16" if precision == "bf16" else model
