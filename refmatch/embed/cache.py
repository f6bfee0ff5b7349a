"""Embed through a cache keyed by (model, sha256 of the text): only new text is ever embedded."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

import numpy as np

from refmatch.embed.base import Encoder, texts_per_call
from refmatch.store.repo import now_iso, text_hash

Progress = Callable[[int], None]


def cached_vectors(conn: sqlite3.Connection, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    unique = list(dict.fromkeys(hashes))
    for i in range(0, len(unique), 900):
        chunk = unique[i : i + 900]
        marks = ",".join("?" * len(chunk))
        for h, blob in conn.execute(
            f"SELECT content_hash, vector FROM embeddings WHERE model = ? AND content_hash IN ({marks})",
            (model, *chunk),
        ):
            found[h] = np.frombuffer(blob, dtype=np.float32)
    return found


def embed_texts(
    conn: sqlite3.Connection,
    encoder: Encoder,
    texts: Sequence[str],
    *,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` in order, and how many had to be embedded (cache misses).

    The encoder is handed ``batch_size`` texts at a time (default: ``texts_per_call``, what
    it asks for), and their vectors are written in one transaction per call, so an
    interrupted run keeps what it has paid for.
    """
    batch_size = batch_size or texts_per_call(encoder)
    hashes = [text_hash(t) for t in texts]
    found = cached_vectors(conn, encoder.name, hashes)
    missing: dict[str, str] = {}
    for h, t in zip(hashes, texts):
        if h not in found and h not in missing:
            missing[h] = t
    todo = list(missing.items())
    for i in range(0, len(todo), batch_size):
        batch = todo[i : i + batch_size]
        vectors = encoder.encode([t for _, t in batch])
        stamp = now_iso()
        with conn:  # sqlite3 context: commit the batch or roll it back
            if not conn.in_transaction:
                conn.execute("BEGIN")
            conn.executemany(
                "INSERT OR REPLACE INTO embeddings (model, content_hash, dim, vector, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    (encoder.name, h, vectors.shape[1], v.astype(np.float32).tobytes(), stamp)
                    for (h, _), v in zip(batch, vectors)
                ],
            )
        for (h, _), v in zip(batch, vectors):
            found[h] = v
        if progress:
            progress(len(batch))
    dim = encoder.dim if not found else next(iter(found.values())).shape[0]
    out = np.zeros((len(texts), dim), dtype=np.float32)
    for row, h in enumerate(hashes):
        out[row] = found[h]
    return out, len(todo)
