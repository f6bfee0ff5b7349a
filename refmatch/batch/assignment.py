"""Share advocates out across the whole run: maximal total score under capacity.

The problem is a capacitated bipartite b-matching, i.e. a min-cost flow: seeker s takes
at most k advocates, advocate a at most its capacity left (and the per-run cap), each
pair at most once; maximise the summed match score. It is solved as the flow's linear
programme by scipy's HiGHS dual simplex. The constraint matrix is a bipartite
incidence matrix (totally unimodular), so the basic optimal solution the simplex
returns is integral: the optimum of the flow, not a rounding of it. Solving the LP
exactly, seeker and advocate constraints that cannot bind (no more candidates than
room) are left out, and pairs with both ends unconstrained are taken outright.

Edges arrive grouped by seeker, each seeker's best first; every function returns a
boolean mask over them. Ties are broken by that order, so a run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.optimize import Bounds, LinearConstraint, linprog, milp

from refmatch.match.catalog import Catalog
from refmatch.match.eligibility import capacity_of


@dataclass
class Edges:
    """Candidate pairs of a run: grouped by seeker (its plan seq), each seeker's best first."""

    seeker: np.ndarray  # int64
    advocate: np.ndarray  # int64 account ids
    score: np.ndarray  # float64

    def __len__(self) -> int:
        return len(self.score)

    def rank(self) -> np.ndarray:
        """0-based position of each edge within its seeker's list."""
        n = len(self.seeker)
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        first = np.concatenate([[True], self.seeker[1:] != self.seeker[:-1]])
        starts = np.flatnonzero(first)
        return np.arange(n) - np.repeat(starts, np.diff(np.append(starts, n)))


def room_left(catalog: Catalog, default_capacity: int, per_run: int | None) -> dict[int, int]:
    """Advocate account id -> how many seekers it may still receive in this run."""
    left = np.maximum(capacity_of(catalog, default_capacity) - catalog.used_quarter, 0)
    if per_run is not None:
        left = np.minimum(left, per_run)
    rows = np.flatnonzero(catalog.is_advocate)
    return dict(zip(catalog.ids[rows].tolist(), left[rows].tolist()))


def _capacity_per_edge(edges: Edges, room: dict[int, int]) -> np.ndarray:
    return np.fromiter((room.get(a, 0) for a in edges.advocate.tolist()), dtype=np.int64, count=len(edges))


def greedy(edges: Edges, k: int) -> np.ndarray:
    """Each seeker's k best, capacity ignored: what per-seeker matching does."""
    return edges.rank() < k


def greedy_within_capacity(edges: Edges, k: int, room: dict[int, int]) -> np.ndarray:
    """Best pairs first while both sides have room: the simple capacity-respecting baseline."""
    chosen = np.zeros(len(edges), dtype=bool)
    _, s_of = np.unique(edges.seeker, return_inverse=True)
    advocates, a_of = np.unique(edges.advocate, return_inverse=True)
    left = [room.get(a, 0) for a in advocates.tolist()]
    wants = [k] * (int(s_of.max()) + 1 if len(s_of) else 0)
    s_list, a_list = s_of.tolist(), a_of.tolist()
    for e in np.lexsort((np.arange(len(edges)), -edges.score)).tolist():
        s, a = s_list[e], a_list[e]
        if wants[s] and left[a]:
            chosen[e] = True
            wants[s] -= 1
            left[a] -= 1
    return chosen


def assign(edges: Edges, k: int, room: dict[int, int]) -> np.ndarray:
    """The pairs of maximal total score with at most k per seeker and ``room`` per advocate."""
    chosen = np.zeros(len(edges), dtype=bool)
    cap = _capacity_per_edge(edges, room)
    usable = np.flatnonzero((edges.score > 0) & (cap > 0))
    if len(usable) == 0:
        return chosen
    _, s_of = np.unique(edges.seeker[usable], return_inverse=True)
    advocates, a_of = np.unique(edges.advocate[usable], return_inverse=True)
    a_room = cap[usable][np.unique(a_of, return_index=True)[1]]
    s_binds = np.bincount(s_of) > k
    a_binds = np.bincount(a_of) > a_room
    free = ~s_binds[s_of] & ~a_binds[a_of]
    chosen[usable[free]] = True

    lp = np.flatnonzero(~free)
    if len(lp):
        s_row = np.cumsum(s_binds) - 1  # binding seekers and advocates get constraint rows
        a_row = np.cumsum(a_binds) - 1 + int(s_binds.sum())
        cols, rows = [], []
        for owner, binds, row in ((s_of[lp], s_binds, s_row), (a_of[lp], a_binds, a_row)):
            keep = binds[owner]
            cols.append(np.flatnonzero(keep))
            rows.append(row[owner[keep]])
        col, row = np.concatenate(cols), np.concatenate(rows)
        n_rows = int(s_binds.sum() + a_binds.sum())
        matrix = sp.csc_array((np.ones(len(col)), (row, col)), shape=(n_rows, len(lp)))
        bounds = np.concatenate([np.full(int(s_binds.sum()), k), a_room[a_binds]]).astype(np.float64)
        x = _solve(-edges.score[usable[lp]], matrix, bounds)
        chosen[usable[lp]] = x > 0.5
    return chosen


def _solve(cost: np.ndarray, matrix: sp.csc_array, bounds: np.ndarray) -> np.ndarray:
    result = linprog(cost, A_ub=matrix, b_ub=bounds, bounds=(0, 1), method="highs-ds", options={"presolve": False})
    if result.status != 0:
        raise RuntimeError(f"assignment: the linear programme was not solved ({result.message})")
    x = result.x
    if np.abs(x - np.round(x)).max() > 1e-6:  # a vertex is integral; guard against a non-basic answer anyway
        result = milp(cost, constraints=LinearConstraint(matrix, -np.inf, bounds), bounds=Bounds(0, 1), integrality=1)
        if result.status != 0:
            raise RuntimeError(f"assignment: the integer programme was not solved ({result.message})")
        x = result.x
    return np.round(x)


def loads(edges: Edges, chosen: np.ndarray) -> dict[int, int]:
    """Advocate account id -> seekers it received."""
    ids, counts = np.unique(edges.advocate[chosen], return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist()))
