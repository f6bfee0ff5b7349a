"""What one server process holds: one Service (model, indexes, catalog), one write lock.

A WSGI server answers on several threads. SQLite connections are kept per thread (a
connection's transaction state is not something threads can share), while the model,
the FAISS indexes and the catalog are loaded once and shared: searching them is read-only.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlite_utils

from refmatch.app.runtime import set_search_threads_here
from refmatch.app.service import LoadedFiles, Service
from refmatch.config import Settings
from refmatch.domain import clock
from refmatch.domain.errors import RefmatchError
from refmatch.embed.base import Encoder
from refmatch.index.sync import INDEX_NAMES, files_stamp
from refmatch.match.catalog import with_unindexed
from refmatch.store import data_version, open_db


def _unwritable(path: Path) -> str | None:
    """Why SQLite could not write the database at ``path`` (the file, and its folder for the WAL), or None."""
    if str(path) == ":memory:":
        return None
    if not os.access(path, os.W_OK):
        return f"{path} is not writable"
    if not os.access(path.parent, os.W_OK | os.X_OK):
        return f"its folder {path.parent} is not writable (SQLite keeps its -wal and -shm files there)"
    return None


class SharedService(Service):
    """A Service safe to call from many threads: a connection per thread, loading under a lock."""

    def __init__(self, settings: Settings, encoder: Encoder | None = None):
        super().__init__(settings, encoder)
        self._local = threading.local()
        self._all_dbs: list[sqlite_utils.Database] = []
        self._load_lock = threading.RLock()
        self.model_warm = False
        # index files replaced by a build are loaded by a thread of this process, not by a request
        self._files_changed = threading.Event()
        self._prepared: LoadedFiles | Exception | None = None
        self._loader: threading.Thread | None = None
        self._closed = False

    @property
    def db(self) -> sqlite_utils.Database:
        db = getattr(self._local, "db", None)
        if db is None:  # the first call in this thread
            set_search_threads_here()  # per thread: else each query spreads over every core, spin-waiting
            db = open_db(self.settings.db_path)
            self._local.db = db
            with self._load_lock:
                self._all_dbs.append(db)
        return db

    def close(self) -> None:
        self._closed = True
        self._files_changed.set()  # wakes the loader, which then ends
        with self._load_lock:
            for db in self._all_dbs:
                db.conn.close()
            self._all_dbs.clear()
        self._local = threading.local()

    def _loaded(self):  # noqa: ANN202 - the base class's tuple
        with self._load_lock:
            return super()._loaded()

    def _replaced_files(self) -> LoadedFiles | None:
        """Index files a build replaced: the background load of them once it is ready, else None (the held
        snapshot keeps serving) after asking the loader thread for one."""
        ready = self._prepared
        if isinstance(ready, LoadedFiles):
            self._prepared = None
            if not any(files_stamp(self.settings.index_path, n) != ready.files[n][0] for n in INDEX_NAMES):
                return ready
        elif isinstance(ready, Exception):  # it failed: load here, so that the caller gets the error
            self._prepared = None
            return super()._replaced_files()
        if self._loader is None or not self._loader.is_alive():
            self._loader = threading.Thread(target=self._load_in_background, name="refmatch-index-loader", daemon=True)
            self._loader.start()
        self._files_changed.set()
        return None

    def _load_in_background(self) -> None:
        """Load replaced index files, their lags, the catalog lagged for them and the advocate vectors for the
        pair, on this thread's own connection, and leave them for the next request to take (``_replaced_files``)."""
        while True:
            self._files_changed.wait()
            self._files_changed.clear()
            if self._closed:
                return
            try:
                fresh = self._load_files()
                catalog = self.catalog()
                lagged = with_unindexed(catalog, fresh.lags["profiles"].unindexed, fresh.lags["needs"].unindexed)
                fresh.prepared = (catalog, lagged, self._vectors_for(lagged, fresh.indexes))
                self._prepared = fresh
            except Exception as exc:  # noqa: BLE001 - handed to the next request, which loads and reports it
                self._prepared = exc

    def catalog(self, today=None):  # noqa: ANN001, ANN201 - the base class's signature
        with self._load_lock:
            return super().catalog(today)

    def build_indexes(self, **kwargs: Any):  # noqa: ANN201 - the base class's list
        with self._load_lock:
            return super().build_indexes(**kwargs)

    @property
    def encoder(self) -> Encoder:
        with self._load_lock:
            return super().encoder

    # -- readiness --------------------------------------------------------
    def warm(self) -> None:
        """Load the indexes, the catalog and the model now, so the first request does not pay."""
        self.encoder.encode(["warm up"])  # first: with torch loaded, the advocate vectors are packed as fp16
        self.model_warm = True
        try:
            catalog, indexes, _ = self._loaded()
            self.advocate_vectors(catalog, indexes)
        except RefmatchError:
            pass  # /readyz says why

    def model_loaded(self) -> bool:
        """True once the model can embed without a load (never triggers one)."""
        encoder = self._encoder
        return encoder is not None and (self.model_warm or getattr(encoder, "_model", True) is not None)

    def readiness(self) -> dict[str, dict[str, Any]]:
        """{check: {"ok": bool, "message": str}} for the database, the indexes and the model."""
        checks: dict[str, dict[str, Any]] = {}
        try:
            version = data_version(self.db)
            checks["database"] = {"ok": True, "message": f"open, data version {version}"}
            unwritable = _unwritable(self.settings.db_path)
            if unwritable:
                checks["database"] = {"ok": False, "message": f"read-only: {unwritable}; every write would fail"}
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            checks["database"] = {"ok": False, "message": f"cannot read the database: {exc}"}
        if checks["database"]["ok"]:
            try:
                _, indexes, manifest = self._loaded()
                pending = sum(lag.pending for lag in self.index_lag().values())
                built = manifest.get("built_at")
                age = (clock.now() - datetime.fromisoformat(built)).total_seconds() if built else None
                checks["indexes"] = {
                    "ok": True,
                    "message": f"loaded: {len(indexes.profiles)} profiles, {len(indexes.needs)} needs, "
                    f"built {manifest.get('built_at')}; "
                    + (f"{pending} texts changed since, not indexed yet" if pending else "up to date"),
                    "pending_texts": pending,
                    "snapshot_age_s": None if age is None else max(0, round(age)),
                }
            except RefmatchError as exc:
                checks["indexes"] = {"ok": False, "message": exc.message}
        else:
            checks["indexes"] = {"ok": False, "message": "database not readable"}
        loaded = self.model_loaded()
        checks["model"] = {"ok": loaded, "message": f"{self.model_name} {'loaded' if loaded else 'not loaded'}"}
        return checks


@dataclass
class WebState:
    service: SharedService
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    started_at: float = field(default_factory=time.time)

    @contextmanager
    def writing(self) -> Iterator[SharedService]:
        """Writes are serialized in the process: one at a time, whatever thread asks."""
        with self.write_lock:
            yield self.service

    def bring_risk_current(self) -> None:
        """Bring the stored risk scores up to today (a write, so under the process's write lock)."""
        from refmatch.app import risk

        with self.writing() as svc:
            risk.ensure_current(svc)
