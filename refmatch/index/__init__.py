"""Vector indexes: the ``VectorIndex`` contract, NumPy reference, FAISS, files."""

from refmatch.index.base import NumpyIndex, VectorIndex
from refmatch.index.faiss_index import FaissIndex, IndexKind
from refmatch.index.files import load_index, save_index

__all__ = ["FaissIndex", "IndexKind", "NumpyIndex", "VectorIndex", "load_index", "save_index"]
