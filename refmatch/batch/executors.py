"""Where a run's per-partition searches run: in this process (the default) or on a Ray cluster.

The driver (``job._execute``) reads each partition's seekers from its snapshot of the
database and writes each result as a checkpoint; an executor only turns
``PartitionTask``s into ``search_partition`` bytes, in any order. Both executors run the
same pure function on the same inputs, so a run gives byte-identical results on either.

Ray (``pip install 'refmatch[ray]'``): a pool of actors, each of which loads the run's
snapshot once (the catalog, and the index files' bytes named by their sha256, both put
in Ray's object store once) and then searches partition after partition. Results flow
back to the driver as they finish, which checkpoints them one by one, so ``--resume``
works as it does in process. The assignment stays on the driver: it needs every
candidate at once.

Why an actor pool and not Ray Data's ``map_batches``: the work here is a short list of
partitions whose inputs the driver already holds, not a dataset to stream from storage.
Ray Data would add pyarrow and pandas and a streaming executor to do what a pool of
actors does here (a callable per worker that loads its state once, results as they
come), with no more tasks read from SQLite than there are actors to take them. Measured
(``scripts/bench_batch.py --seekers 5000 --advocates 1000 --partition-size 500 --workers 2``,
``--executor ray`` against the benchmark's ``--executor ray-data``, the same actors fed by
``map_batches``): search 2.4-2.5 s against 4.7 s, 933 MB of process-tree PSS against 1,287 MB.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any, Protocol

import numpy as np

from refmatch.config import Settings
from refmatch.domain.errors import ConfigError, InvalidInput
from refmatch.embed.base import Encoder, texts_per_call
from refmatch.index.files import IndexBlob, load_blob
from refmatch.index.threads import search_threads, set_search_threads
from refmatch.match import Indexes
from refmatch.match.batch_retrieval import RetrievalContext
from refmatch.match.catalog import Catalog

EXECUTORS = ("in-process", "ray")


@dataclass(frozen=True)
class PartitionTask:
    """One partition to search: its seekers' plan positions and purposes, and their account rows."""

    part: int
    refs: Sequence[tuple[int, str]]  # (seq, purpose)
    accounts: Sequence[dict[str, Any]]  # seeker_accounts rows, in the order of refs


@dataclass(frozen=True)
class SearchSnapshot:
    """What every partition's search reads: the same for a whole run."""

    catalog: Catalog
    settings: Settings
    k: int
    depth: int


class Executor(Protocol):
    def embedding(self, encoder: Encoder) -> AbstractContextManager[Encoder]:
        """What embeds for an index build under this executor: ``encoder`` itself, or a pool of
        workers running copies of it, ended (their CPUs or GPUs given back) when the block ends."""
        ...

    name: str

    def search(
        self, snapshot: SearchSnapshot, indexes: IndexSource, tasks: Iterable[PartitionTask]
    ) -> Iterator[tuple[int, bytes, int]]:
        """(part, ``PartitionCandidates.to_bytes()``, seekers searched) for each task, in any order."""
        ...

    def close(self) -> None: ...


class IndexSource(Protocol):
    def loaded(self) -> Indexes:
        """The run's indexes in this process."""
        ...

    def blobs(self) -> tuple[IndexBlob, IndexBlob]:
        """The run's index files as bytes (profiles, needs), checked against the run's checksums."""
        ...


def search_task(ctx: RetrievalContext, snapshot: SearchSnapshot, task: PartitionTask) -> tuple[int, bytes, int]:
    """The search of one partition, wherever it runs."""
    from refmatch.batch.partitions import search_partition

    seekers = ctx.seekers(list(task.accounts))
    found = search_partition(
        ctx,
        [(seq, purpose, s) for (seq, purpose), s in zip(task.refs, seekers)],
        snapshot.settings,
        k=snapshot.k,
        depth=snapshot.depth,
    )
    return task.part, found.to_bytes(), len(task.refs)


def without_secrets(settings: Settings) -> Settings:
    """The settings with every secret blanked: what may travel to other processes and machines."""
    blank: dict[str, Any] = {f.name: f.default for f in fields(settings) if not f.repr}
    return replace(settings, **blank)


class InProcess:
    """Every partition in this process, one after another, FAISS on every core."""

    name = "in-process"

    @contextmanager
    def embedding(self, encoder: Encoder) -> Iterator[Encoder]:
        yield encoder

    def search(
        self, snapshot: SearchSnapshot, indexes: IndexSource, tasks: Iterable[PartitionTask]
    ) -> Iterator[tuple[int, bytes, int]]:
        ctx = RetrievalContext.build(snapshot.catalog, indexes.loaded(), snapshot.settings.default_capacity)
        with search_threads():
            for task in tasks:
                yield search_task(ctx, snapshot, task)

    def close(self) -> None:
        pass


class _SearchWorker:
    """A Ray actor: loads the snapshot once, then searches the partitions it is given."""

    def __init__(self, snapshot: SearchSnapshot, blobs: tuple[IndexBlob, IndexBlob]) -> None:
        set_search_threads(1)  # one core per actor: the pool, not OpenMP, spreads the work
        self.snapshot = snapshot
        indexes = Indexes(*(load_blob(b) for b in blobs))
        self.ctx = RetrievalContext.build(snapshot.catalog, indexes, snapshot.settings.default_capacity)

    def search(self, task: PartitionTask) -> tuple[int, bytes, int]:
        return search_task(self.ctx, self.snapshot, task)


class _EmbedWorker:
    """A Ray actor: a copy of the driver's encoder (its recipe, not its weights), loaded on first use."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder

    def dim(self) -> int:
        return self.encoder.dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.encoder.encode(texts)


class RayEncoder:
    """An Encoder whose texts are embedded by a pool of Ray actors, each holding a copy of ``encoder``.

    It asks for two calls' worth of texts per actor at once (``texts_per_call``), cuts them,
    in order, into pieces of what the encoder itself takes in one call, and sends those
    round-robin: each actor makes exactly the calls the encoder would have made here, so it
    sorts and pads the same batches and the vectors are the same bytes. They come back in
    order: ``embed_texts`` (the cache, written by the driver) and the index builds use it like
    any encoder. The actors start on first use; ``close`` ends them.
    """

    def __init__(self, ray: Any, encoder: Encoder, workers: int, gpus_per_worker: float) -> None:
        self.name = encoder.name
        self.chunk = texts_per_call(encoder)
        self.texts_per_call = self.chunk * workers * 2  # every actor busy, with its next piece waiting
        self._ray, self._encoder, self._workers, self._gpus = ray, encoder, workers, gpus_per_worker
        self._actors: list[Any] = []
        self._dim: int | None = None

    def _pool(self) -> list[Any]:
        if not self._actors:
            ref = self._ray.put(self._encoder)  # pickled without a loaded model: each actor loads its own
            actor = self._ray.remote(num_cpus=1, num_gpus=self._gpus)(_EmbedWorker)
            self._actors = [actor.remote(ref) for _ in range(self._workers)]
        return self._actors

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self._ray.get(self._pool()[0].dim.remote()))
        return self._dim

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        actors = self._pool()
        pieces = [list(texts[i : i + self.chunk]) for i in range(0, len(texts), self.chunk)]
        refs = [actors[n % len(actors)].encode.remote(piece) for n, piece in enumerate(pieces)]
        return np.concatenate(self._ray.get(refs)).astype(np.float32, copy=False)

    def close(self) -> None:
        for actor in self._actors:
            self._ray.kill(actor)
        self._actors = []


class RayExecutor:
    """Partitions searched by a pool of Ray actors: on a local Ray started here, or on the
    cluster at ``address`` (``ray://host:10001`` or ``auto``)."""

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None, gpus_per_worker: float = 0.0) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ConfigError("--executor ray needs Ray: pip install 'refmatch[ray]'") from exc
        if workers is not None and workers < 1:
            raise InvalidInput(f"workers: must be at least 1, got {workers}")
        if gpus_per_worker < 0:
            raise InvalidInput(f"gpus_per_worker: must not be negative, got {gpus_per_worker}")
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if address:
                options["address"] = address
            else:  # a local Ray of this machine's cores (or the workers asked for)
                options["num_cpus"] = workers or os.cpu_count() or 1
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"cannot start or reach Ray{f' at {address}' if address else ''}: {exc}") from exc
            self._started = True
        self.workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.gpus_per_worker = gpus_per_worker

    @contextmanager
    def embedding(self, encoder: Encoder) -> Iterator[Encoder]:
        check_gpus(self.gpus_per_worker, str(getattr(encoder, "device", "cpu")))
        pool = RayEncoder(self._ray, encoder, self.workers, self.gpus_per_worker)
        try:
            yield pool
        finally:
            pool.close()  # each actor holds a CPU: the search's actors need them next

    def search(
        self, snapshot: SearchSnapshot, indexes: IndexSource, tasks: Iterable[PartitionTask]
    ) -> Iterator[tuple[int, bytes, int]]:
        ray = self._ray
        snapshot = replace(snapshot, settings=without_secrets(snapshot.settings))
        snapshot_ref, blobs_ref = ray.put(snapshot), ray.put(indexes.blobs())  # once, shared by every actor
        actor = ray.remote(num_cpus=1)(_SearchWorker)  # FAISS on the CPU: GPUs are for the embedding actors
        actors = [actor.remote(snapshot_ref, blobs_ref) for _ in range(self.workers)]
        idle = list(actors)
        busy: dict[Any, Any] = {}  # result ref -> the actor computing it
        pending = iter(tasks)  # read only as actors free up: at most one task per actor is held
        try:
            while True:
                while idle and (task := next(pending, None)) is not None:
                    worker = idle.pop()
                    busy[worker.search.remote(task)] = worker
                if not busy:
                    return
                done, _ = ray.wait(list(busy), num_returns=1)
                idle.append(busy.pop(done[0]))
                yield ray.get(done[0])
        finally:  # done, failed or interrupted: the actors and their copies of the snapshot go
            for worker in actors:
                ray.kill(worker)

    def close(self) -> None:
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()


def check_gpus(gpus_per_worker: float, device: str) -> None:
    """Actors that ask for GPUs must embed on one: else they would hold cards they never use."""
    if gpus_per_worker and not device.startswith("cuda"):
        raise ConfigError(
            f"--gpus-per-worker: the actors would hold GPUs but embed on {device!r}; set REFMATCH_DEVICE=cuda"
        )


def executor_for(
    name: str, *, address: str | None = None, workers: int | None = None, gpus: float = 0.0, device: str | None = None
) -> Executor:
    """The executor called ``name``; ``address``, ``workers`` and ``gpus`` are Ray's. ``device``, where
    known (the settings'), is checked against ``gpus`` before Ray starts."""
    if name == "in-process":
        if address or workers or gpus:
            raise InvalidInput("executor: --address, --workers and --gpus-per-worker need --executor ray")
        return InProcess()
    if name == "ray":
        if device is not None:
            check_gpus(gpus, device)
        return RayExecutor(address=address, workers=workers, gpus_per_worker=gpus)
    raise InvalidInput(f"executor: must be one of {', '.join(EXECUTORS)}, got {name!r}")
