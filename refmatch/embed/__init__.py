"""Embedding: the encoder contract, a real and a fake encoder, and the cached pipeline."""

from refmatch.embed.base import Encoder, normalize
from refmatch.embed.cache import embed_texts
from refmatch.embed.fake import FakeEncoder
from refmatch.embed.st import SentenceTransformerEncoder

__all__ = ["Encoder", "FakeEncoder", "SentenceTransformerEncoder", "embed_texts", "normalize"]
