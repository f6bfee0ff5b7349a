"""Texts to vectors in batches: tokenized ahead on worker threads while the model runs the batch before.

Both model runners use it: ONNX Runtime (inline, one batch after another) and torch on a GPU,
where sentence-transformers' own ``encode`` tokenizes each batch on the calling thread while the
card waits (issue 15 measured 2,800-3,300 texts/s that way on an H200 that runs the model at
87,000). Here the Rust tokenizer (``tokenizers``, which lets go of the GIL) prepares the next
batches on ``workers`` threads while the calling thread hands the current one to the model, and
a CUDA model runs it asynchronously: the card is fed while the CPU tokenizes.

Texts are sorted by length first, longest first, so each batch pads to about its own length,
and the vectors come back in the texts' order.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

Batch = dict[str, np.ndarray]

CARD_BATCH_MAX = 1024  # past this a card gains little, and one batch holds more of its memory
CARD_SHARE = 0.5  # of a card's free memory for one batch's run: room for other processes, actors sharing it


def card_batch_size(
    per_text_bytes: float, free_bytes: int, *, share: float = CARD_SHARE, most: int = CARD_BATCH_MAX
) -> int:
    """The batch size for a card: the largest power of two, from 1 up to ``most``, whose batch of
    the longest texts (``per_text_bytes`` each while the model runs) fits in ``share`` of ``free_bytes``."""
    room = free_bytes * share
    size = 1
    while size * 2 <= most and size * 2 * per_text_bytes <= room:
        size *= 2
    return size


@dataclass(frozen=True)
class TokenRecipe:
    """How a model's texts become token ids, as sentence-transformers prepares them."""

    inputs: tuple[str, ...]  # the model's inputs, of input_ids, attention_mask, token_type_ids
    max_tokens: int
    pad_id: int
    pad_token: str
    lower_case: bool

    @classmethod
    def of(cls, st: Any) -> TokenRecipe:  # noqa: ANN401 - a SentenceTransformer, imported lazily
        """The recipe of a loaded SentenceTransformer."""
        tokenizer = st.tokenizer
        names = ("input_ids", "attention_mask", "token_type_ids")
        return cls(
            inputs=tuple(n for n in names if n in tokenizer.model_input_names),
            max_tokens=int(st.max_seq_length),
            pad_id=int(tokenizer.pad_token_id or 0),
            pad_token=str(tokenizer.pad_token or "[PAD]"),
            lower_case=bool(getattr(st[0], "do_lower_case", False)),
        )

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> TokenRecipe:
        return cls(
            inputs=tuple(meta["inputs"]),
            max_tokens=int(meta["max_tokens"]),
            pad_id=int(meta["pad_id"]),
            pad_token=str(meta["pad_token"]),
            lower_case=bool(meta["lower_case"]),
        )

    def meta(self) -> dict[str, Any]:
        return {**asdict(self), "inputs": list(self.inputs)}

    def configure(self, tokenizer: Any) -> Any:  # noqa: ANN401 - a tokenizers.Tokenizer
        """``tokenizer`` (a ``tokenizers.Tokenizer``) truncating and padding as the model expects."""
        tokenizer.enable_truncation(max_length=self.max_tokens)
        tokenizer.enable_padding(pad_id=self.pad_id, pad_token=self.pad_token)
        return tokenizer

    def clean(self, texts: Sequence[str]) -> list[str]:
        cleaned = [str(t).strip() for t in texts]
        return [t.lower() for t in cleaned] if self.lower_case else cleaned

    def tokenize(self, tokenizer: Any, texts: Sequence[str]) -> Batch:  # noqa: ANN401
        """The model's inputs for ``texts`` (already cleaned), as int64 arrays padded to the longest."""
        encodings = tokenizer.encode_batch(list(texts))
        arrays = {
            "input_ids": lambda: [e.ids for e in encodings],
            "attention_mask": lambda: [e.attention_mask for e in encodings],
            "token_type_ids": lambda: [e.type_ids for e in encodings],
        }
        return {name: np.array(arrays[name](), dtype=np.int64) for name in self.inputs}


def embed_in_batches(
    texts: Sequence[str],
    *,
    batch_size: int,
    tokenize: Callable[[list[str]], Batch],
    run: Callable[[Batch], Any],
    gather: Callable[[list[Any]], np.ndarray],
    workers: int = 0,
    ahead: int = 4,
) -> np.ndarray:
    """Vectors of ``texts``, in their order.

    ``tokenize`` turns a batch of texts into model inputs; ``run`` starts the model on them and
    returns its output (a device tensor need not be waited for); ``gather`` joins the outputs,
    in batch order, into one (n, dim) array. ``workers`` 0 tokenizes each batch on this thread
    just before it runs; more keeps up to ``ahead`` batches per worker tokenized in advance on
    that many threads. An error on a worker is raised here, and the batches not yet started
    are dropped.
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    batches = [[texts[i] for i in order[s : s + batch_size]] for s in range(0, len(order), batch_size)]
    outputs: list[Any] = []
    if workers <= 0 or len(batches) == 1:  # one batch (a query, say): nothing to overlap with
        for batch in batches:
            outputs.append(run(tokenize(batch)))
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="refmatch-tokenize") as pool:
            pending: deque[Future[Batch]] = deque()
            todo = iter(batches)
            try:
                for batch in todo:
                    pending.append(pool.submit(tokenize, batch))
                    if len(pending) >= workers * ahead:
                        break
                while pending:
                    inputs = pending.popleft().result()
                    for batch in todo:  # keep the workers busy while the model runs this one
                        pending.append(pool.submit(tokenize, batch))
                        break
                    outputs.append(run(inputs))
            finally:
                for future in pending:
                    future.cancel()
    if not outputs:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.asarray(gather(outputs), dtype=np.float32)
    result = np.empty_like(vectors)
    result[np.asarray(order, dtype=np.int64)] = vectors
    return result
