"""Every standing advocate's vectors, packed for scoring them all at once.

The FAISS indexes hold every account and every need (400k vectors at 100k accounts),
but matching only ever reads the profiles and met needs of standing advocates
(consenting, live, not at risk, not in a blackout, not known to be unhealthy): a few
percent of them. Read in place from the
indexes those rows are scattered over hundreds of megabytes, and gathering them was
most of a match. Here they are copied once per catalog into contiguous blocks, one
per journey stage, latest stage first (the advocates further along than a seeker are
then a prefix of blocks), and packed for the fastest product available:

* ``fp16``: PyTorch's FBGEMM half-precision linear kernel (on x86 builds of torch):
  half the bytes of float32 and every query vector in one pass over the block;
  similarities within about 1e-4 of float32;
* ``float32``: NumPy matrix-vector products, where FBGEMM is not available, and in a
  process that has not loaded torch (a one-shot CLI match: importing it would cost
  seconds to save milliseconds).

``approximate`` gives every eligible advocate its profile similarity and its best
met-need similarity per open need. Matching scores all of them, keeps the best few
dozen, and rescores those exactly from the indexes: so no advocate can be missed by
a top-n search, and the numbers shown are float32-exact. Above ``limit`` vectors the
copy is not made and matching falls back to candidate searches in the indexes.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np

from refmatch.index.base import VectorIndex
from refmatch.match.catalog import Catalog
from refmatch.match.eligibility import standing_mask

Kernel = Literal["auto", "fp16", "float32"]
Products = Callable[[np.ndarray], np.ndarray]  # (queries, dim) -> (queries, rows)


@dataclass(frozen=True)
class _Block:
    """The advocates at positions [start, stop) (one stage) and their met needs [need_start, need_stop)."""

    start: int
    stop: int
    need_start: int
    need_stop: int
    profiles: Products
    needs: Products | None


@dataclass(frozen=True)
class AdvocateVectors:
    rows: np.ndarray  # catalog rows of the standing advocates, latest stage first, then by row
    need_start: np.ndarray  # (advocates + 1,) offsets of each advocate's met needs
    need_ids: np.ndarray  # (met needs,) grouped by advocate in ``rows`` order, ascending within
    blocks: tuple[_Block, ...]
    kernel: str  # "fp16" or "float32"
    nbytes: int  # memory the packed vectors take
    min_health: float | None  # advocates known to be below it are left out: rules must ask at least this

    @property
    def size(self) -> int:
        """Vectors held (profiles plus met needs)."""
        return len(self.rows) + len(self.need_ids)


def vectors_needed(catalog: Catalog, min_health: float | None = None) -> int:
    """How many vectors ``build_advocate_vectors`` would copy for this catalog."""
    rows = np.flatnonzero(standing_mask(catalog, min_health))
    return int(len(rows) + (catalog.met_need_start[rows + 1] - catalog.met_need_start[rows]).sum())


@cache
def fp16_available() -> bool:
    """Whether this torch build has FBGEMM's half-precision linear kernel."""
    try:
        import torch

        packed = torch.ops.quantized.linear_prepack_fp16(torch.ones((1, 8)), None)
        torch.ops.quantized.linear_dynamic_fp16(torch.ones((1, 8)), packed)
    except Exception:  # noqa: BLE001 - no torch, or a build without FBGEMM (e.g. ARM)
        return False
    return True


def _fp16(matrix: np.ndarray) -> tuple[Products, int]:
    import torch

    matrix = np.ascontiguousarray(matrix, dtype=np.float32)
    if not matrix.flags.writeable:  # torch.from_numpy wants a writable array (it is only read)
        matrix = matrix.copy()
    packed = torch.ops.quantized.linear_prepack_fp16(torch.from_numpy(matrix), None)
    linear = torch.ops.quantized.linear_dynamic_fp16

    def products(queries: np.ndarray) -> np.ndarray:
        return linear(torch.from_numpy(np.array(queries, dtype=np.float32)), packed).numpy()

    return products, matrix.size * 2


def _float32(matrix: np.ndarray) -> tuple[Products, int]:
    block = np.ascontiguousarray(matrix, dtype=np.float32)

    def products(queries: np.ndarray) -> np.ndarray:
        # one GEMV per query: OpenBLAS's skinny GEMM is slower than n of them
        return np.stack([block @ q for q in queries]) if len(queries) else np.zeros((0, len(block)), np.float32)

    return products, block.nbytes


def build_advocate_vectors(
    catalog: Catalog,
    profiles: VectorIndex,
    needs: VectorIndex,
    kernel: Kernel = "auto",
    min_health: float | None = None,
) -> AdvocateVectors:
    """Copy the standing advocates' profile and met-need vectors out of the indexes, one block per stage.

    With ``min_health`` (the service's setting), advocates known to be below it are left
    out: matching then uses these vectors only for rules at least as strict.
    """
    if kernel == "auto":
        # fp16 once torch is loaded (a server, which loads the model first); a one-shot command
        # would spend more importing torch (seconds) than fp16 saves it
        kernel = "fp16" if "torch" in sys.modules and fp16_available() else "float32"
    pack = _fp16 if kernel == "fp16" else _float32
    rows = np.flatnonzero(standing_mask(catalog, min_health))
    rows = rows[np.argsort(-catalog.stage_rank[rows], kind="stable")]
    need_ids, counts = catalog.met_needs_of_rows(rows)
    need_start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

    blocks, nbytes = [], 0
    stage = catalog.stage_rank[rows]
    cuts = np.flatnonzero(np.diff(stage)) + 1
    for start, stop in zip([0, *cuts.tolist()], [*cuts.tolist(), len(rows)], strict=True):
        if start == stop:
            continue
        # one stage's float32 copy at a time: packing it is the only transient memory
        profile_products, size = pack(profiles.reconstruct(catalog.ids[rows[start:stop]]))
        nbytes += size
        n0, n1 = int(need_start[start]), int(need_start[stop])
        need_products = None
        if n1 > n0:
            need_products, size = pack(needs.reconstruct(need_ids[n0:n1]))
            nbytes += size
        blocks.append(_Block(start, stop, n0, n1, profile_products, need_products))
    return AdvocateVectors(rows, need_start, need_ids, tuple(blocks), kernel, nbytes, min_health)


@dataclass
class Approximate:
    """Similarities of every eligible advocate, to about 1e-4 (fp16) or exact (float32)."""

    rows: np.ndarray  # catalog rows of the eligible advocates (in stage order)
    profile_sims: np.ndarray  # (eligible,)
    need_best: np.ndarray  # (eligible, open needs) best similarity over the advocate's met needs (0: none)


def approximate(store: AdvocateVectors, mask: np.ndarray, profile: np.ndarray, queries: np.ndarray) -> Approximate:
    """Profile similarity and best met-need similarity per open need of every advocate ``mask`` allows.

    ``mask`` is the eligibility mask over catalog rows; ``queries`` the (open needs, dim)
    vectors of the seeker's open needs (possibly none).
    """
    local = np.flatnonzero(mask[store.rows])
    n_q = len(queries)
    need_best = np.zeros((len(local), n_q), dtype=np.float32)
    if len(local) == 0:
        return Approximate(np.zeros(0, dtype=np.int64), np.zeros(0, np.float32), need_best)
    end = int(local[-1]) + 1  # stage order: everyone eligible lies in the blocks before it
    blocks = [b for b in store.blocks if b.start < end]
    profile_sims = np.empty(blocks[-1].stop, dtype=np.float32)
    n_end = blocks[-1].need_stop
    sims = np.empty((n_q, n_end + 1), dtype=np.float32)  # a spare column: reduceat wants bounds < len
    profile_q = np.asarray(profile, dtype=np.float32)[None, :]
    need_q = np.asarray(queries, dtype=np.float32)
    for block in blocks:
        profile_sims[block.start : block.stop] = block.profiles(profile_q)[0]
        if n_q and block.needs is not None:
            sims[:, block.need_start : block.need_stop] = block.needs(need_q)

    if n_q and n_end:
        # the best per advocate of the prefix, one reduceat over its contiguous runs (an advocate with no
        # met need gets its neighbour's first value, or the spare column's -inf: masked out below)
        sims[:, n_end] = -np.inf
        best = np.maximum.reduceat(sims, store.need_start[:end], axis=1)[:, local].T
        has = (store.need_start[local + 1] > store.need_start[local])[:, None]
        need_best = np.where(has, best, np.float32(0.0))
    return Approximate(store.rows[local], profile_sims[local], need_best)
