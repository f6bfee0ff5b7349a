"""The two partition steps of a run, each a pure function of its inputs.

``search_partition``: (seekers, index snapshot, settings) -> each seeker's best
candidates, with everything needed later to explain them; ``materialise``: (those
candidates, the ones the assignment chose, catalog, settings) -> result rows. Nothing
here reads or writes the database, so a step can run anywhere (another process, a
distributed engine) and is checkpointed as bytes (``PartitionCandidates.to_bytes``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from refmatch.config import Settings
from refmatch.domain.models import DEFAULT_REFERENCE_TYPE, Seeker
from refmatch.match.batch_retrieval import RetrievalContext, Scored, group_key, retrieve_group
from refmatch.match.catalog import Catalog
from refmatch.match.eligibility import Rules, capacity_of
from refmatch.match.retention import explain_troubles
from refmatch.match.scoring import Candidates, explain


def rules_for(purpose: str, settings: Settings) -> Rules:
    return Rules(purpose, DEFAULT_REFERENCE_TYPE[purpose], settings.default_capacity, settings.min_health)


@dataclass
class PartitionCandidates:
    """Per seeker of a partition (in plan order) its best candidates, best first.

    Edges (seeker, advocate) are stored flat: seeker ``i`` owns edges
    ``start[i]:start[i + 1]``; edge ``e`` owns ``need_best[need_start[e]:need_start[e + 1]]``
    (one entry per open need of its seeker). Components a purpose lacks are NaN.
    """

    seq: np.ndarray  # int64 (n,)
    eligible: np.ndarray  # int64 (n,)
    start: np.ndarray  # int64 (n + 1,)
    advocate: np.ndarray  # int64 (E,)
    score: np.ndarray  # float64 (E,)
    component_names: tuple[str, ...]
    components: np.ndarray  # float64 (E, C)
    need_start: np.ndarray  # int64 (E + 1,)
    need_best: np.ndarray  # float32
    need_best_id: np.ndarray  # int64

    @property
    def edge_seeker(self) -> np.ndarray:
        """The plan position (seq) of each edge's seeker."""
        return np.repeat(self.seq, np.diff(self.start))

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        arrays = {k: v for k, v in self.__dict__.items() if k != "component_names"}
        np.savez(buf, component_names=np.asarray(json.dumps(self.component_names)), **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> PartitionCandidates:
        with np.load(io.BytesIO(data)) as npz:
            values = {k: npz[k] for k in npz.files}
        values["component_names"] = tuple(json.loads(str(values["component_names"])))
        return cls(**values)

    @classmethod
    def assemble(cls, seq: Sequence[int], scored: Sequence[Scored], account_ids: np.ndarray) -> PartitionCandidates:
        """Flatten per-seeker results; ``account_ids`` maps catalog rows to account ids."""
        names: list[str] = []
        for s in scored:
            names.extend(n for n in s.candidates.components if n not in names)
        sizes = np.array([len(s.candidates.rows) for s in scored], dtype=np.int64)
        parts = [s.candidates for s in scored if len(s.candidates.rows)]
        comps = np.full((int(sizes.sum()), len(names)), np.nan)
        at = 0
        for c in parts:
            for j, name in enumerate(names):
                if name in c.components:
                    comps[at : at + len(c.rows), j] = c.components[name]
            at += len(c.rows)
        per_part = [np.full(len(c.rows), c.need_best.shape[1], dtype=np.int64) for c in parts]
        widths = np.concatenate(per_part or [np.zeros(0, dtype=np.int64)])
        return cls(
            seq=np.asarray(seq, dtype=np.int64),
            eligible=np.array([s.eligible for s in scored], dtype=np.int64),
            start=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            advocate=np.concatenate([np.zeros(0, np.int64), *(account_ids[c.rows] for c in parts)]),
            score=np.concatenate([np.zeros(0), *(c.scores for c in parts)]).astype(np.float64),
            component_names=tuple(names),
            components=comps,
            need_start=np.concatenate([[0], np.cumsum(widths)]).astype(np.int64),
            need_best=np.concatenate([np.zeros(0, np.float32), *(c.need_best.ravel() for c in parts)]),
            need_best_id=np.concatenate([np.zeros(0, np.int64), *(c.need_best_id.ravel() for c in parts)]),
        )


def search_partition(
    ctx: RetrievalContext,
    seekers: Sequence[tuple[int, str, Seeker]],
    settings: Settings,
    *,
    k: int,
    depth: int,
) -> PartitionCandidates:
    """Each (seq, purpose, seeker)'s best ``depth`` candidates; seekers alike are searched together."""
    groups: dict[tuple, list[int]] = {}
    for i, (_, purpose, seeker) in enumerate(seekers):
        groups.setdefault((purpose, group_key(seeker)), []).append(i)
    scored: list[Scored | None] = [None] * len(seekers)
    for (purpose, _), members in groups.items():
        found = retrieve_group(
            ctx, [seekers[i][2] for i in members], rules_for(purpose, settings), settings, k=k, depth=depth
        )
        for i, s in zip(members, found):
            scored[i] = s
    return PartitionCandidates.assemble([seq for seq, _, _ in seekers], scored, ctx.catalog.ids)  # type: ignore[arg-type]


@dataclass
class ResultRow:
    """One match of a run, ready to store."""

    seq: int
    purpose: str
    seeker_id: int
    advocate_id: int
    rank: int
    score: float
    components: dict[str, float]
    reasons: list[str]


def chosen_seekers(found: PartitionCandidates, chosen: np.ndarray) -> np.ndarray:
    """Plan positions (seq) of the seekers that have at least one chosen edge."""
    return np.unique(found.edge_seeker[chosen])


def materialise(
    catalog: Catalog,
    found: PartitionCandidates,
    chosen: np.ndarray,
    seekers: Mapping[int, tuple[str, Seeker]],
    settings: Settings,
) -> list[ResultRow]:
    """Result rows for the chosen edges (indices into ``found``'s edges), ranked by score, with reasons.

    ``seekers``: (purpose, seeker) by seq, for at least the ``chosen_seekers``; they need
    no vectors, explanations read only the stored component scores.
    """
    capacity = capacity_of(catalog, settings.default_capacity)
    picked = np.zeros(len(found.advocate), dtype=bool)
    picked[chosen] = True
    rows_out: list[ResultRow] = []
    for i, seq in enumerate(found.seq.tolist()):
        edges = np.flatnonzero(picked[found.start[i] : found.start[i + 1]]) + found.start[i]
        if len(edges) == 0:
            continue
        purpose, seeker = seekers[seq]
        rows = catalog.rows(found.advocate[edges])
        width = len(seeker.need_texts)
        need_at = found.need_start[edges][:, None] + np.arange(width)
        present = [j for j, _ in enumerate(found.component_names) if not np.isnan(found.components[edges[0], j])]
        cands = Candidates(
            rows=rows,
            components={found.component_names[j]: found.components[edges, j] for j in present},
            scores=found.score[edges],
            need_best=found.need_best[need_at].reshape(len(edges), width),
            need_best_id=found.need_best_id[need_at].reshape(len(edges), width),
            capacity=capacity[rows],
        )
        for e in range(len(edges)):  # stored best first, so position is rank
            reasons = explain(catalog, seeker, cands, e, settings)
            if purpose == "retention":
                reasons = [*explain_troubles(catalog, seeker, int(rows[e])), *reasons]
            rows_out.append(
                ResultRow(
                    seq=seq,
                    purpose=purpose,
                    seeker_id=int(seeker.account_id),  # type: ignore[arg-type]
                    advocate_id=int(found.advocate[edges[e]]),
                    rank=e + 1,
                    score=float(found.score[edges[e]]),
                    components={n: float(v[e]) for n, v in cands.components.items()},
                    reasons=reasons,
                )
            )
    return rows_out
