"""Atomic save / checked load of a FAISS index and its JSON manifest.

The index file is a rebuildable cache of SQLite; the manifest says what it
describes (the caller's keys: model, data version, ...) plus facts about the
file itself (kind, dim, count, library versions, sha256). Both are written to
temporary files in the same directory, fsynced, then renamed into place: the
index first, the manifest last. A crash therefore leaves either the old pair,
or a new index beside the old manifest, which the checksum exposes as stale.
Assumes a single writer per (directory, name).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from refmatch.domain.errors import InvalidInput, StaleIndex, StorageError

if TYPE_CHECKING:  # FAISS loads only where an index is read or written, not to read a manifest
    from refmatch.index.faiss_index import FaissIndex

__all__ = ["IndexBlob", "index_paths", "load_blob", "load_index", "read_blob", "save_index"]

_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
_FILE_KEYS = ("kind", "dim", "count", "sha256", "index_file")


def index_paths(directory: Path, name: str) -> tuple[Path, Path]:
    """(``<name>.faiss``, ``<name>.manifest.json``) inside ``directory``."""
    if not _NAME.fullmatch(name):
        raise InvalidInput(f"invalid index name {name!r}: use letters, digits, '_', '-', '.'")
    directory = Path(directory)
    return directory / f"{name}.faiss", directory / f"{name}.manifest.json"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_path(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(directory: Path) -> None:
    """Make the renames durable; not every platform can open a directory."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def save_index(index: FaissIndex, directory: Path, name: str, manifest: dict[str, Any]) -> Path:
    """Write ``<name>.faiss`` and ``<name>.manifest.json`` atomically; return the index path.

    The returned manifest records ``kind``, ``dim``, ``count``, ``sha256``,
    ``faiss_version``, ``numpy_version``, ``saved_at`` and ``index_params``
    beside the caller's keys (which these override). A write that fails (a full disk, which
    FAISS reports as RuntimeError) leaves the files in use as they were: StorageError.
    """
    index_path, manifest_path = index_paths(directory, name)
    directory = index_path.parent
    directory.mkdir(parents=True, exist_ok=True)
    temps: list[Path] = []
    try:
        _write_files(index, index_path, manifest_path, manifest, temps)
    except (RuntimeError, OSError) as exc:
        text = str(exc).strip()
        cause = text.splitlines()[-1] if text else type(exc).__name__
        raise StorageError(
            f"could not write the {name} index in {directory}: {cause}; the index in use is unchanged "
            "(free some space and build again)"
        ) from None
    finally:
        for tmp in temps:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return index_path


def _write_files(
    index: FaissIndex, index_path: Path, manifest_path: Path, manifest: dict[str, Any], temps: list[Path]
) -> None:
    import faiss

    directory = index_path.parent
    tmp_index = _temp_path(directory, index_path.name, temps)
    faiss.write_index(index.faiss_index, str(tmp_index))
    _fsync_path(tmp_index)
    full = dict(manifest)
    full.update(
        kind=index.kind,
        dim=index.dim,
        count=len(index),
        sha256=_sha256(tmp_index),
        index_file=index_path.name,
        faiss_version=faiss.__version__,
        numpy_version=np.__version__,
        saved_at=datetime.now(UTC).isoformat(timespec="seconds"),
        index_params=index.params(),
    )
    tmp_manifest = _temp_path(directory, manifest_path.name, temps)
    with open(tmp_manifest, "w", encoding="utf-8") as fh:
        json.dump(full, fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp_index, index_path)
    temps.remove(tmp_index)
    os.replace(tmp_manifest, manifest_path)
    temps.remove(tmp_manifest)
    _fsync_dir(directory)


@contextlib.contextmanager
def build_lock(directory: Path, *, wait: bool = True) -> Iterator[bool]:
    """Hold ``<directory>/.build.lock`` (flock) while writing the index files: one writer at a time.

    Yields False without the lock when ``wait`` is off and another process holds it. Under
    the lock no save is in progress, so temporary files left by a save that was killed
    between writing and renaming are removed. An OS lock dies with its process, so a killed
    build never blocks the next one.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".build.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        for leftover in directory.glob(".*.tmp"):
            with contextlib.suppress(OSError):
                leftover.unlink()
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _temp_path(directory: Path, final_name: str, temps: list[Path]) -> Path:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{final_name}.", suffix=".tmp")
    os.close(fd)
    temps.append(Path(tmp))
    return Path(tmp)


def read_manifest(directory: Path, name: str) -> dict[str, Any]:
    """The manifest of an index whose file is there and matches it (checksum), or ``StaleIndex`` saying why.

    Reads no vectors and needs no FAISS: what ``index status`` needs.
    """
    index_path, manifest_path = index_paths(directory, name)
    where = f"index {name!r} in {index_path.parent}"
    if not manifest_path.is_file() or not index_path.is_file():
        missing = manifest_path if not manifest_path.is_file() else index_path
        raise StaleIndex(f"{where} is missing ({missing.name}); rebuild the index")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StaleIndex(f"{where}: unreadable manifest ({exc}); rebuild the index") from exc
    if not isinstance(manifest, dict) or any(key not in manifest for key in _FILE_KEYS):
        raise StaleIndex(f"{where}: manifest lacks {', '.join(_FILE_KEYS)}; rebuild the index")
    try:
        actual_sha = _sha256(index_path)
    except OSError as exc:
        raise StaleIndex(f"{where}: unreadable index file ({exc}); rebuild the index") from exc
    if actual_sha != manifest["sha256"]:
        raise StaleIndex(
            f"{where}: index file does not match its manifest (checksum differs; "
            "an interrupted save?); rebuild the index"
        )
    return manifest


def load_index(directory: Path, name: str, *, mmap: bool = False) -> tuple[FaissIndex, dict[str, Any]]:
    """Load an index and its manifest, or raise ``StaleIndex`` saying why.

    Refuses a missing or unreadable pair, and one whose checksum, count, dim or
    kind disagree (a torn save, or a file replaced behind our back).

    ``mmap``: map the stored vectors from the file instead of reading them into memory
    (FAISS's ``IO_FLAG_MMAP_IFC``), read-only. Pages load as rows are read and are
    shared through the page cache by every process serving the same file; a save
    replaces the file (new inode), so a mapping never sees a half-written one.
    """
    import faiss

    from refmatch.index.faiss_index import FaissIndex

    manifest = read_manifest(directory, name)
    index_path, _ = index_paths(directory, name)
    where = f"index {name!r} in {index_path.parent}"
    try:
        raw = faiss.read_index(str(index_path), faiss.IO_FLAG_MMAP_IFC if mmap else 0)
        params = manifest.get("index_params") or {}
        index = FaissIndex.from_faiss(raw, **params)
        index.read_only = mmap
    except (RuntimeError, InvalidInput, TypeError) as exc:
        raise StaleIndex(f"{where}: cannot read index file ({exc}); rebuild the index") from exc
    facts = {"kind": index.kind, "dim": index.dim, "count": len(index)}
    for key, value in facts.items():
        if manifest[key] != value:
            raise StaleIndex(
                f"{where}: manifest says {key}={manifest[key]!r} but the file has {value!r}; rebuild the index"
            )
    return index, manifest


@dataclass(frozen=True)
class IndexBlob:
    """An index file's bytes, named by their checksum: an immutable snapshot that can travel to
    another process or machine (a Ray worker) and be loaded there without the file."""

    name: str
    sha256: str
    params: dict[str, Any]
    data: bytes


def read_blob(directory: Path, name: str, sha256: str) -> IndexBlob:
    """The bytes of index ``name`` as they were when its checksum was ``sha256``, or ``StaleIndex``
    when the file has changed since (a rebuild: the snapshot asked for is gone)."""
    manifest = read_manifest(directory, name)
    index_path, _ = index_paths(directory, name)
    data = index_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256 or manifest["sha256"] != sha256:
        raise StaleIndex(f"index {name!r} in {index_path.parent} changed since this run started; start a new run")
    return IndexBlob(name, sha256, dict(manifest.get("index_params") or {}), data)


def load_blob(blob: IndexBlob) -> FaissIndex:
    """The index a blob holds, checked against its checksum."""
    import faiss

    from refmatch.index.faiss_index import FaissIndex

    if hashlib.sha256(blob.data).hexdigest() != blob.sha256:
        raise StaleIndex(f"index {blob.name!r}: the snapshot's bytes do not match its checksum")
    raw = faiss.deserialize_index(np.frombuffer(blob.data, dtype=np.uint8))
    return FaissIndex.from_faiss(raw, **blob.params)
