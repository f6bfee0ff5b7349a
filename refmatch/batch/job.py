"""The batch job: embed -> plan -> search -> assign -> write -> export, resumable at every partition.

- embed:  bring the indexes up to date (only new or changed text is embedded) and load them;
- plan:   choose and order the seekers, cut them into partitions, record the run;
- search: per partition, batched retrieval and exact scoring (checkpointed);
- assign: all candidates at once, shared out under capacity (or greedy), and the report;
- write:  per partition, the chosen candidates as matches with reasons (checkpointed);
- export: the run's matches to CSV or JSON Lines, atomically.

Every checkpoint is a committed transaction, and each step is a pure function of its
inputs (``partitions``), so a resumed run redoes only unfinished partitions and ends
exactly where an uninterrupted one would. The search holds the indexes and one
partition; the indexes are let go before the assignment, which holds only the
candidate pairs (three numbers per pair); the write holds one partition.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from refmatch.app.service import ProgressFactory, Service
from refmatch.batch import runs
from refmatch.batch.assignment import Edges, assign, greedy, max_coverable, room_left
from refmatch.batch.executors import Executor, InProcess, PartitionTask, SearchSnapshot
from refmatch.batch.exports import write_export
from refmatch.batch.lock import run_lock
from refmatch.batch.params import OBJECTIVES, BatchParams
from refmatch.batch.partitions import PartitionCandidates, chosen_seekers, materialise
from refmatch.batch.reports import build_report
from refmatch.batch.seekers import plan, seeker_accounts
from refmatch.domain.errors import Conflict, StaleIndex
from refmatch.index.files import IndexBlob, index_paths, read_blob
from refmatch.index.sync import INDEX_NAMES, Lag, lag_of, load_fresh, load_snapshot
from refmatch.match import Indexes, load_catalog
from refmatch.match.batch_retrieval import RetrievalContext
from refmatch.match.catalog import Catalog, with_unindexed
from refmatch.store import data_version, open_db
from refmatch.store.repo import now_iso

_VERSION_KEYS = ("model", "built_at", "data_version", "count", "kind", "sha256")


@dataclass
class StageEvent:
    """A stage finished: what a log line or a benchmark reports."""

    run_id: int | None
    stage: str
    seconds: float
    info: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        run = f"run {self.run_id}" if self.run_id is not None else "batch"
        details = ", ".join(f"{k} {v}" for k, v in self.info.items())
        return f"{run}: {self.stage} done in {self.seconds:.1f} s" + (f" ({details})" if details else "")


@dataclass
class Hooks:
    """How a caller follows a run. ``on_partition(phase, part)`` runs after each committed
    checkpoint (tests raise there to simulate a crash)."""

    progress: ProgressFactory | None = None
    on_stage: Callable[[StageEvent], None] | None = None
    on_partition: Callable[[str, int], None] | None = None


def run_batch(
    service: Service,
    params: BatchParams,
    *,
    build: bool = True,
    hooks: Hooks | None = None,
    executor: Executor | None = None,
) -> runs.RunInfo:
    """Start and finish a run; ``build=False`` refuses stale indexes instead of updating them.
    ``executor``: where the partitions are searched and what embeds for the build (default: this process)."""
    params.validate()
    hooks = hooks or Hooks()
    with run_lock(service.settings.db_path):
        t0 = time.perf_counter()
        indexes, versions, manifests, embedded = _fresh_indexes(service, build, hooks, executor or InProcess())
        _emit(hooks, None, "embed", t0, embedded=embedded)

        t0 = time.perf_counter()
        conn = service.conn
        started = now_iso()
        with read_snapshot(service) as reader:  # one state of the data for the whole run, whatever is imported
            lags = {name: lag_of(reader, name, manifests[name]) for name in INDEX_NAMES}
            catalog = load_catalog(reader, tuple(service.settings.stages), params.day)
            catalog = with_unindexed(catalog, lags["profiles"].unindexed, lags["needs"].unindexed)
            unready = _unready_seekers(catalog, lags)  # imported since the indexes were saved: the next run
            seekers = plan(reader, catalog, service.settings, params.purposes, params.partition_size, skip=unready)
            loaded = _Loaded(indexes)
            del indexes  # _execute lets them go once the search is done: no other reference may keep them
            run_id = runs.create_run(
                conn,
                params,
                model=service.model_name,
                data_version=data_version(reader),
                index_versions=versions,
                plan=seekers,
                started_at=started,
            )
            parts = (seekers[-1].part + 1) if seekers else 0
            _emit(hooks, run_id, "plan", t0, seekers=len(seekers), partitions=parts, not_indexed_yet=len(unready))
            return _execute(service, runs.get_run(conn, run_id), catalog, loaded, hooks, executor, reader=reader)


def resume_batch(
    service: Service,
    run_id: int,
    *,
    out: str | None = None,
    hooks: Hooks | None = None,
    executor: Executor | None = None,
) -> runs.RunInfo:
    """Finish an interrupted run from its last checkpoint, on the data it started on (on any executor)."""
    hooks = hooks or Hooks()
    conn = service.conn
    with run_lock(service.settings.db_path):
        run = runs.get_run(conn, run_id)
        if run.status == "done":
            raise Conflict(f"run {run_id} is already done; start a new run instead")
        now = data_version(conn)
        if now != run.data_version:
            raise Conflict(
                f"run {run_id} cannot resume: the data changed since it started (data version "
                f"{run.data_version} -> {now}); start a new run"
            )
        current = _manifest_versions(service)
        if current != run.index_versions:
            changed = sorted(n for n in INDEX_NAMES if current.get(n) != run.index_versions.get(n))
            raise Conflict(
                f"run {run_id} cannot resume: the {', '.join(changed)} index changed since it started; start a new run"
            )
        if out is not None:
            run.params = replace(run.params, out=out)
            run.params.validate()
        runs.set_state(conn, run_id, status="running", error=None, resumes=run.resumes + 1,
                       params=json.dumps(run.params.as_dict()))  # fmt: skip
        catalog = load_catalog(conn, tuple(service.settings.stages), run.params.day)
        return _execute(service, runs.get_run(conn, run_id), catalog, _Loaded(None), hooks, executor)


# --------------------------------------------------------------------------- stages


@dataclass
class _Loaded:
    """The indexes while the search needs them; emptied afterwards so that their memory is given back."""

    indexes: Indexes | None


@dataclass
class _RunIndexes:
    """The run's indexes as an executor asks for them: loaded here, or as the files' bytes of the run's checksums."""

    service: Service
    run: runs.RunInfo
    held: _Loaded

    def loaded(self) -> Indexes:
        if self.held.indexes is None:
            self.held.indexes = Indexes(*(_load(self.service, name)[0] for name in INDEX_NAMES))
        return self.held.indexes

    def blobs(self) -> tuple[IndexBlob, IndexBlob]:
        folder = self.service.settings.index_path
        profiles, needs = (read_blob(folder, n, self.run.index_versions[n]["sha256"]) for n in INDEX_NAMES)
        return profiles, needs


def _task(conn: sqlite3.Connection, reader: sqlite3.Connection, run_id: int, part: int) -> PartitionTask:
    refs = runs.part_refs(conn, run_id, part)
    accounts = seeker_accounts(reader, [r.account_id for r in refs])
    return PartitionTask(part, [(r.seq, r.purpose) for r in refs], accounts)


def _unready_seekers(catalog: Catalog, lags: dict[str, Lag]) -> set[int]:
    """Accounts whose profile or an open need the loaded indexes lack: their vectors are not in this snapshot."""
    unready = {int(i) for i in lags["profiles"].unindexed}
    if len(lags["needs"].unindexed):
        hit = np.isin(catalog.need_ids, lags["needs"].unindexed)
        unready.update(int(catalog.ids[r]) for r in np.unique(catalog.need_account_row[hit]))
    return unready


@contextmanager
def read_snapshot(service: Service) -> Iterator[sqlite3.Connection]:
    """A connection of its own inside one read transaction: every read sees the database as it was at the
    first one, while other processes go on writing (WAL). Checkpoints of the run are written elsewhere."""
    if str(service.settings.db_path) == ":memory:":  # one connection is all there is
        yield service.conn
        return
    db = open_db(service.settings.db_path, create=False)
    conn = db.conn
    try:
        conn.execute("BEGIN")
        data_version(conn)  # the snapshot is taken at the first read
        yield conn
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def _execute(
    service: Service,
    run: runs.RunInfo,
    catalog: Catalog,
    loaded: _Loaded,
    hooks: Hooks,
    executor: Executor | None = None,
    *,
    reader: sqlite3.Connection | None = None,
) -> runs.RunInfo:
    """Search, assign, write and export; data is read through ``reader`` (the run's snapshot), checkpoints
    are written through the service's own connection."""
    conn, settings, params = service.conn, service.settings, run.params
    reader = reader or conn
    executor = executor or InProcess()
    try:
        todo = sorted(set(range(run.partitions)) - runs.done_parts(conn, run.id, "search"))
        if todo:
            runs.set_state(conn, run.id, stage="search")
            t0 = time.perf_counter()
            snapshot = SearchSnapshot(catalog, settings, params.k, params.depth)
            tasks = (_task(conn, reader, run.id, part) for part in todo)  # read as the executor asks for them
            with _bar(hooks, "searching", run, todo) as advance:
                for part, data, searched in executor.search(snapshot, _RunIndexes(service, run, loaded), tasks):
                    runs.save_search(conn, run.id, part, data)  # a checkpoint per partition, in the order they end
                    advance(searched)
                    if hooks.on_partition:
                        hooks.on_partition("search", part)
            _emit(hooks, run.id, "search", t0, seekers=run.seekers, partitions=len(todo), executor=executor.name)
        loaded.indexes = None
        gc.collect()  # the indexes are not needed from here on: give their memory back

        if not runs.done_parts(conn, run.id, "assign"):
            runs.set_state(conn, run.id, stage="assign")
            t0 = time.perf_counter()
            report = _assign(conn, run, catalog, settings.default_capacity)
            _emit(hooks, run.id, "assign", t0, mode=params.mode, matches=report["matches"])
            if hooks.on_partition:
                hooks.on_partition("assign", 0)

        todo = sorted(set(range(run.partitions)) - runs.done_parts(conn, run.id, "write"))
        if todo:
            runs.set_state(conn, run.id, stage="write")
            t0 = time.perf_counter()
            ctx = RetrievalContext.build(catalog, None, settings.default_capacity)  # seekers without vectors
            with _bar(hooks, "writing", run, todo) as advance:
                for part in todo:
                    found = PartitionCandidates.from_bytes(runs.part_data(conn, run.id, "search", part))
                    chosen = np.load(io.BytesIO(runs.part_data(conn, run.id, "assign", part)))
                    wanted = set(chosen_seekers(found, chosen).tolist())  # only they need explaining
                    refs = [r for r in runs.part_refs(conn, run.id, part) if r.seq in wanted]
                    seekers = ctx.seekers(seeker_accounts(reader, [r.account_id for r in refs]), vectors=False)
                    by_seq = {r.seq: (r.purpose, s) for r, s in zip(refs, seekers)}
                    rows = materialise(catalog, found, chosen, by_seq, settings)
                    runs.save_results(conn, run.id, part, found, rows, model=run.model,
                                      data_version=run.data_version, created_at=run.started_at)  # fmt: skip
                    advance(len(found.seq))
                    if hooks.on_partition:
                        hooks.on_partition("write", part)
            _emit(hooks, run.id, "write", t0, partitions=len(todo))

        export_path = None
        if params.out:
            runs.set_state(conn, run.id, stage="export")
            t0 = time.perf_counter()
            path = params.out_path(run.id)
            count = write_export(runs.result_rows(conn, run.id), path)  # type: ignore[arg-type]
            export_path = str(path)
            _emit(hooks, run.id, "export", t0, rows=count, file=export_path)
        runs.set_state(conn, run.id, status="done", stage="done", finished_at=now_iso(), export_path=export_path)
        runs.drop_checkpoint_data(conn, run.id)
    except BaseException as exc:
        message = (str(exc) or type(exc).__name__).splitlines()[0]
        with contextlib.suppress(Exception):  # never hide the cause behind a failure to record it
            runs.set_state(conn, run.id, status="failed", error=message)
        raise
    return runs.get_run(conn, run.id)


def _assign(conn, run: runs.RunInfo, catalog: Catalog, default_capacity: int) -> dict[str, Any]:
    """Solve the run's assignment over all its candidates; store it per partition with the report."""
    params = run.params
    seeker, advocate, score, sizes = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)], [np.zeros(0)], []
    for part in range(run.partitions):
        found = PartitionCandidates.from_bytes(runs.part_data(conn, run.id, "search", part))
        seeker.append(found.edge_seeker)
        advocate.append(found.advocate)
        score.append(found.score)
        sizes.append(len(found.score))
        del found
    edges = Edges(np.concatenate(seeker), np.concatenate(advocate), np.concatenate(score))
    room = room_left(catalog, default_capacity, params.per_advocate)
    if params.greedy:
        chosen, compared = greedy(edges, params.k), {}
    else:  # the other objective too, so that each run says what coverage-first changes
        chosen = assign(edges, params.k, room, params.objective)
        compared = {o: assign(edges, params.k, room, o) for o in OBJECTIVES if o != params.objective}
    report = build_report(edges, chosen, run.seekers, params.k, room, params.mode, compared, max_coverable(edges, room))
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    per_part = {}
    for part in range(run.partitions):
        local = np.flatnonzero(chosen[bounds[part] : bounds[part + 1]])
        buf = io.BytesIO()
        np.save(buf, local)
        per_part[part] = buf.getvalue()
    runs.save_assignment(conn, run.id, per_part, report)
    return report


# --------------------------------------------------------------------------- helpers


def _fresh_indexes(
    service: Service, build: bool, hooks: Hooks, executor: Executor
) -> tuple[Indexes, dict[str, Any], dict[str, dict], int]:
    """Both indexes, fresh; built first (embedding only what the cache lacks) when stale and allowed.

    After a build they are taken as saved, even if an import has landed since: the run leaves
    out what they lack (``run_batch``), as serving does.
    """
    embedded = 0
    try:
        loaded = [_load(service, name) for name in INDEX_NAMES]
    except StaleIndex:
        if not build:
            raise
        loaded = []
        pending = service.pending_embeddings() if hooks.progress else {}
        factory, bars = None, []
        if hooks.progress:
            progress = hooks.progress

            def factory(name: str, _total: int) -> Callable[[int], None]:
                bars.append(progress(f"embedding {name}", pending.get(name, 0)))
                return bars[-1]

        try:
            with executor.embedding(service.encoder) as encoder:
                embedded = sum(r.embedded for r in service.build_indexes(progress=factory, encoder=encoder))
        finally:
            for bar in bars:
                _close(bar)
        loaded = [_load(service, name, fresh=False) for name in INDEX_NAMES]
    indexes = Indexes(*(index for index, _, _ in loaded))
    versions = {name: version for name, (_, version, _) in zip(INDEX_NAMES, loaded)}
    return indexes, versions, {name: manifest for name, (_, _, manifest) in zip(INDEX_NAMES, loaded)}, embedded


def _load(service: Service, name: str, *, fresh: bool = True) -> tuple[Any, dict[str, Any], dict]:
    """(index, its versions, its manifest); ``fresh`` refuses one behind the database (StaleIndex)."""
    if fresh:
        index, manifest = load_fresh(service.conn, service.settings.index_path, name, service.model_name)
    else:
        index, manifest, _ = load_snapshot(service.conn, service.settings.index_path, name, service.model_name)
    return index, {k: manifest.get(k) for k in _VERSION_KEYS}, manifest


def _manifest_versions(service: Service) -> dict[str, Any]:
    """The versions the index files on disk declare (their manifests only; nothing is loaded)."""
    out = {}
    for name in INDEX_NAMES:
        try:
            manifest = json.loads(index_paths(service.settings.index_path, name)[1].read_text(encoding="utf-8"))
        except (OSError, ValueError):
            manifest = {}
        out[name] = {k: manifest.get(k) for k in _VERSION_KEYS}
    return out


def _emit(hooks: Hooks, run_id: int | None, stage: str, t0: float, **info: Any) -> None:
    if hooks.on_stage:
        hooks.on_stage(StageEvent(run_id, stage, time.perf_counter() - t0, info))


@contextmanager
def _bar(hooks: Hooks, what: str, run: runs.RunInfo, todo: list[int]) -> Iterator[Callable[[int], None]]:
    """Progress in seekers over the whole run, starting from what earlier attempts finished."""
    if hooks.progress is None:
        yield lambda n: None
        return
    size = run.params.partition_size
    left = sum(min(size, run.seekers - part * size) for part in todo)
    advance = hooks.progress(f"run {run.id}: {what}", run.seekers)
    if run.seekers - left:
        advance(run.seekers - left)
    try:
        yield advance
    finally:
        _close(advance)


def _close(advance: Callable[[int], None]) -> None:
    """Progress callbacks may carry a ``close`` (a bar to take off the screen)."""
    close = getattr(advance, "close", None)
    if close is not None:
        close()
