"""Keep the FAISS indexes in step with the database: status, verify, incremental build.

The manifest of each index lists the (id, content hash) pairs it holds, so the
difference with the database is exact: which rows are missing, which were deleted,
which changed text. Vectors come from the embedding cache, so a rebuild never
re-embeds text it has seen.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from refmatch.domain.errors import StaleIndex
from refmatch.embed.base import Encoder
from refmatch.embed.cache import embed_texts
from refmatch.index.files import index_paths, load_index, read_manifest, save_index
from refmatch.store.db import data_version
from refmatch.store.repo import indexed_texts, text_hash

if TYPE_CHECKING:  # FAISS loads where an index is built or read, not for status
    from refmatch.index.faiss_index import FaissIndex

INDEX_NAMES = ("profiles", "needs")
HASH_CHARS = 16


@dataclass
class IndexStatus:
    name: str
    exists: bool
    model: str | None = None
    expected_model: str | None = None
    count: int = 0
    expected_count: int = 0
    missing: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    data_version: int | None = None
    built_at: str | None = None
    kind: str | None = None
    problem: str | None = None

    @property
    def fresh(self) -> bool:
        return (
            self.exists
            and self.problem is None
            and self.model == self.expected_model
            and not (self.missing or self.deleted or self.changed)
        )

    def describe(self) -> str:
        if not self.exists:
            return f"{self.name}: missing ({self.problem or 'not built'}); run 'refmatch index build'"
        if self.problem:
            return f"{self.name}: unusable ({self.problem}); run 'refmatch index build --full'"
        if self.model != self.expected_model:
            return (
                f"{self.name}: built with model {self.model!r}, settings say {self.expected_model!r}; "
                "run 'refmatch index build --full'"
            )
        if self.fresh:
            return f"{self.name}: up to date ({self.count} vectors, {self.kind}, data version {self.data_version})"
        parts = []
        for label, ids in (("new", self.missing), ("deleted", self.deleted), ("changed", self.changed)):
            if ids:
                sample = ", ".join(str(i) for i in ids[:5]) + (" ..." if len(ids) > 5 else "")
                parts.append(f"{len(ids)} {label} (ids {sample})")
        return f"{self.name}: stale: {'; '.join(parts)}; run 'refmatch index build'"

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "fresh": self.fresh,
            "exists": self.exists,
            "model": self.model,
            "count": self.count,
            "expected_count": self.expected_count,
            "kind": self.kind,
            "data_version": self.data_version,
            "built_at": self.built_at,
            "new": len(self.missing),
            "deleted": len(self.deleted),
            "changed": len(self.changed),
            "problem": self.problem,
        }


@dataclass
class BuildReport:
    name: str
    added: int
    removed: int
    embedded: int
    total: int
    kind: str
    rebuilt: bool
    remaining: int = 0  # texts left for the next round (build_index's max_embed)

    def as_dict(self) -> dict:
        return self.__dict__.copy()


def _desired(conn: sqlite3.Connection, name: str) -> tuple[np.ndarray, list[str], list[str]]:
    ids, texts = indexed_texts(conn, name)
    return np.asarray(ids, dtype=np.int64), texts, [text_hash(t)[:HASH_CHARS] for t in texts]


def _diff(manifest: dict, ids: np.ndarray, hashes: list[str]) -> tuple[list[int], list[int], list[int]]:
    have = dict(zip(manifest.get("item_ids", []), manifest.get("item_hashes", [])))
    want = dict(zip(ids.tolist(), hashes))
    missing = [i for i in want if i not in have]
    deleted = [i for i in have if i not in want]
    changed = [i for i, h in want.items() if i in have and have[i] != h]
    return missing, deleted, changed


def index_status(conn: sqlite3.Connection, index_dir: Path, name: str, model: str) -> IndexStatus:
    ids, _, hashes = _desired(conn, name)
    status = IndexStatus(name=name, exists=False, expected_model=model, expected_count=len(ids))
    try:
        manifest = read_manifest(index_dir, name)
    except StaleIndex as exc:
        status.exists = (Path(index_dir) / f"{name}.faiss").exists()
        status.problem = str(exc) if status.exists else None
        return status
    status.exists = True
    status.model = manifest.get("model")
    status.count = int(manifest["count"])
    status.kind = manifest["kind"]
    status.data_version = manifest.get("data_version")
    status.built_at = manifest.get("built_at")
    status.missing, status.deleted, status.changed = _diff(manifest, ids, hashes)
    return status


def build_index(
    conn: sqlite3.Connection,
    encoder: Encoder,
    index_dir: Path,
    name: str,
    *,
    hnsw_threshold: int,
    full: bool = False,
    progress: Callable[[int], None] | None = None,
    max_embed: int | None = None,
) -> BuildReport:
    """Bring one index up to date, re-embedding only text the cache has not seen.

    ``max_embed``: add at most this many new or changed texts to an existing index, save
    it, and leave the rest for the next call (``remaining``), so a background indexer makes
    new text proposable batch by batch instead of after an hour-long embedding. The
    manifest then lists exactly the (id, hash) pairs the index holds.
    """
    texts_at = text_version(conn)  # read first: a write during the build leaves the manifest older, not newer
    ids, texts, hashes = _desired(conn, name)
    version = data_version(conn)
    index = manifest = None
    if not full:
        try:
            index, manifest = load_index(index_dir, name)
        except StaleIndex:
            index = None
        other_model = manifest is not None and manifest.get("model") != encoder.name
        if index is not None and (other_model or index.dim != _dim(encoder, index)):
            index = None
    if index is not None and manifest is not None and max_embed is not None:
        missing, deleted, changed = _diff(manifest, ids, hashes)
        todo = sorted(missing + changed)
        if todo[max_embed:] or deleted or changed:
            desired = (ids, texts, hashes)
            return _build_round(conn, encoder, index, index_dir, name, manifest, desired, max_embed, texts_at, progress)
    if index is not None and manifest is not None:
        missing, deleted, changed = _diff(manifest, ids, hashes)
        wanted = index.kind == "hnsw" or len(ids) <= hnsw_threshold
        if wanted and len(missing) + len(changed) + len(deleted) < max(1, len(ids)) // 2:
            position = {i: p for p, i in enumerate(ids.tolist())}
            to_add = sorted(missing + changed)
            removed = index.remove(np.asarray(deleted + changed, dtype=np.int64)) if (deleted or changed) else 0
            embedded = 0
            if to_add:
                vectors, embedded = embed_texts(conn, encoder, [texts[position[i]] for i in to_add], progress=progress)
                index.add(np.asarray(to_add, dtype=np.int64), vectors)
            _save(index, index_dir, name, encoder.name, ids, hashes, version, texts_at)
            return BuildReport(name, len(to_add), removed, embedded, len(index), index.kind, rebuilt=False)
    vectors, embedded = embed_texts(conn, encoder, texts, progress=progress)
    from refmatch.index.faiss_index import FaissIndex

    if len(ids):
        index = FaissIndex.build(ids, vectors, hnsw_threshold=hnsw_threshold)
    else:
        index = FaissIndex(_dim(encoder, None), hnsw_threshold=hnsw_threshold)
    _save(index, index_dir, name, encoder.name, ids, hashes, version, texts_at)
    return BuildReport(name, len(ids), 0, embedded, len(index), index.kind, rebuilt=True)


def _build_round(
    conn: sqlite3.Connection,
    encoder: Encoder,
    index: FaissIndex,
    index_dir: Path,
    name: str,
    manifest: dict,
    desired: tuple[np.ndarray, list[str], list[str]],
    max_embed: int,
    texts_at: int | None,
    progress: Callable[[int], None] | None,
) -> BuildReport:
    """One round of a partial build: drop deleted and changed rows, add up to ``max_embed`` texts, save."""
    ids, texts, hashes = desired
    missing, deleted, changed = _diff(manifest, ids, hashes)
    current = dict(zip(ids.tolist(), hashes))
    held = {i: h for i, h in zip(manifest.get("item_ids", []), manifest.get("item_hashes", [])) if i in current}
    for i in changed:
        held.pop(i, None)
    gone = sorted(deleted + changed)
    removed = index.remove(np.asarray(gone, dtype=np.int64)) if gone else 0
    todo = sorted(missing + changed)
    batch, rest = todo[:max_embed], todo[max_embed:]
    embedded = 0
    if batch:
        position = {i: p for p, i in enumerate(ids.tolist())}
        vectors, embedded = embed_texts(conn, encoder, [texts[position[i]] for i in batch], progress=progress)
        index.add(np.asarray(batch, dtype=np.int64), vectors)
        held.update((i, current[i]) for i in batch)
    order = sorted(held)
    manifest_ids = np.asarray(order, dtype=np.int64)
    manifest_hashes = [held[i] for i in order]
    # no data version, and a text version only once nothing is left: readers compare the pairs
    _save(index, index_dir, name, encoder.name, manifest_ids, manifest_hashes, None, None if rest else texts_at)
    report = BuildReport(name, len(batch), removed, embedded, len(index), index.kind, rebuilt=False)
    report.remaining = len(rest)
    return report


def _dim(encoder: Encoder, index: FaissIndex | None) -> int:
    try:
        return int(encoder.dim)
    except Exception:  # noqa: BLE001 - a model that can't load can't be compared; keep the index's
        return index.dim if index is not None else 0


def _save(index, index_dir, name, model, ids, hashes, version, texts_at) -> None:
    manifest = {
        "name": name,
        "model": model,
        "data_version": version,
        "text_version": texts_at,
        "built_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "item_ids": ids.tolist(),
        "item_hashes": hashes,
    }
    save_index(index, Path(index_dir), name, manifest)


def text_version(conn: sqlite3.Connection) -> int | None:
    """The version of the indexed texts, kept by triggers (migration 0006); None on an older schema."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'text_version'").fetchone()
    return None if row is None else int(row[0])


def files_stamp(index_dir: Path, name: str) -> tuple:
    """Identity of an index's files on disk: a save replaces them, and so changes this."""
    stamp = []
    for path in index_paths(index_dir, name):
        try:
            st = path.stat()
        except OSError:
            return ()
        stamp.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(stamp)


@dataclass(frozen=True)
class Lag:
    """What the database holds that an index snapshot does not hold yet, by row id (sorted).

    ``unindexed``: rows whose text is new or changed since the build (the snapshot has no
    vector for them, or one of old text); ``deleted``: rows the snapshot still holds but
    the database no longer has. Matching serves the snapshot and leaves the unindexed
    rows out until the next build.
    """

    unindexed: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    deleted: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def pending(self) -> int:
        return len(self.unindexed) + len(self.deleted)

    def holds_current(self, ids: np.ndarray) -> np.ndarray:
        """Per id: whether the snapshot holds its current text's vector."""
        return ~np.isin(np.asarray(ids, dtype=np.int64), self.unindexed)

    def describe(self, name: str) -> str:
        return f"{name}: {len(self.unindexed)} new or changed, {len(self.deleted)} deleted since the build"


def lag_of(conn: sqlite3.Connection, name: str, manifest: dict) -> Lag:
    """How far the index the manifest describes is behind the database.

    Cheap when nothing indexed changed since the build (same data or text version); else
    every (id, text hash) pair is compared (0.1-0.2 s at 50k rows), which callers do once
    per text version, not per request.
    """
    if manifest.get("data_version") == data_version(conn):
        return Lag()
    built_at = manifest.get("text_version")
    if built_at is not None and built_at == text_version(conn):
        return Lag()
    ids, _, hashes = _desired(conn, name)
    missing, deleted, changed = _diff(manifest, ids, hashes)
    return Lag(np.asarray(sorted(missing + changed), dtype=np.int64), np.asarray(sorted(deleted), dtype=np.int64))


def check_model(name: str, model: str, manifest: dict) -> None:
    """Vectors of another model cannot be served at all: StaleIndex."""
    if manifest.get("model") != model:
        raise StaleIndex(
            f"{name} index was built with model {manifest.get('model')!r} but the model is {model!r}; "
            "run 'refmatch index build --full'"
        )


def check_fresh(conn: sqlite3.Connection, name: str, model: str, manifest: dict) -> None:
    """Raise StaleIndex unless the index the manifest describes holds what the database says it should."""
    check_model(name, model, manifest)
    lag = lag_of(conn, name, manifest)
    if lag.pending:
        ids, _, hashes = _desired(conn, name)
        status = IndexStatus(name=name, exists=True, model=model, expected_model=model)
        status.missing, status.deleted, status.changed = _diff(manifest, ids, hashes)
        raise StaleIndex(status.describe())


def load_snapshot(
    conn: sqlite3.Connection, index_dir: Path, name: str, model: str, *, mmap: bool = False
) -> tuple[FaissIndex, dict, Lag]:
    """Load an index however far behind the database it is: (index, manifest, its lag).

    Refused (StaleIndex) only when there is nothing to serve: files missing or unreadable,
    or vectors of another model.
    """
    try:
        index, manifest = load_index(index_dir, name, mmap=mmap)
    except StaleIndex as exc:
        raise StaleIndex(f"{name} index: {exc.message}; run 'refmatch index build'") from None
    check_model(name, model, manifest)
    return index, manifest, lag_of(conn, name, manifest)


def load_fresh(
    conn: sqlite3.Connection, index_dir: Path, name: str, model: str, *, mmap: bool = False
) -> tuple[FaissIndex, dict]:
    """Load an index and refuse it when it does not describe the database (StaleIndex).

    ``mmap``: read-only, vectors mapped from the file (see ``load_index``): for serving.
    """
    try:
        index, manifest = load_index(index_dir, name, mmap=mmap)
    except StaleIndex as exc:
        raise StaleIndex(f"{name} index: {exc.message}; run 'refmatch index build'") from None
    check_fresh(conn, name, model, manifest)
    return index, manifest
