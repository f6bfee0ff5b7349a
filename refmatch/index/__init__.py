"""Vector indexes: the ``VectorIndex`` contract, NumPy reference, FAISS, files.

Names are resolved lazily: FAISS loads only where an index is built, read or searched,
so ``refmatch index status`` (which reads manifests) starts without it.
"""

from importlib import import_module
from typing import Any

_NAMES = {
    "NumpyIndex": "refmatch.index.base",
    "VectorIndex": "refmatch.index.base",
    "FaissIndex": "refmatch.index.faiss_index",
    "IndexKind": "refmatch.index.faiss_index",
    "load_index": "refmatch.index.files",
    "save_index": "refmatch.index.files",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'refmatch.index' has no attribute {name!r}")
    return getattr(import_module(_NAMES[name]), name)
