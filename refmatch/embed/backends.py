"""Which encoder runs the model: torch (the reference) or ONNX Runtime, and the name its vectors go by."""

from __future__ import annotations

from refmatch.config import ENCODER_BACKENDS, Settings
from refmatch.domain.errors import ConfigError
from refmatch.embed.base import Encoder, encoder_name

__all__ = ["encoder_name", "make_encoder"]


def make_encoder(settings: Settings) -> Encoder:
    """The encoder the settings ask for; nothing is loaded until the first text is embedded."""
    backend = settings.encoder_backend
    if backend == "torch":
        from refmatch.embed.st import SentenceTransformerEncoder

        return SentenceTransformerEncoder(
            settings.model, settings.device, settings.batch_size, precision=settings.precision
        )
    if backend not in ENCODER_BACKENDS:
        raise ConfigError(f"REFMATCH_ENCODER_BACKEND: must be one of {', '.join(ENCODER_BACKENDS)}, got {backend!r}")
    from refmatch.embed.onnx import OnnxEncoder

    return OnnxEncoder(settings.model, backend, settings.encoder_cache or None, settings.batch_size)
