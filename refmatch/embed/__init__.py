"""Embedding: the encoder contract, a real and a fake encoder, and the cached pipeline.

Names are resolved lazily so that ``refmatch.embed.st`` can be used on its own
(a GPU box with torch but no SQLite stack, say) without importing the store.
"""

from importlib import import_module
from typing import Any

_NAMES = {
    "Encoder": "refmatch.embed.base",
    "normalize": "refmatch.embed.base",
    "embed_texts": "refmatch.embed.cache",
    "FakeEncoder": "refmatch.embed.fake",
    "OnnxEncoder": "refmatch.embed.onnx",
    "encoder_name": "refmatch.embed.base",
    "make_encoder": "refmatch.embed.backends",
    "SentenceTransformerEncoder": "refmatch.embed.st",
}

__all__ = sorted(_NAMES)


def __getattr__(name: str) -> Any:
    if name not in _NAMES:
        raise AttributeError(f"module 'refmatch.embed' has no attribute {name!r}")
    return getattr(import_module(_NAMES[name]), name)
