"""Share advocates out across the whole run: coverage first, then maximal total score, under capacity.

The problem is a capacitated bipartite b-matching, i.e. a min-cost flow: seeker s takes
at most k advocates, advocate a at most its capacity left (and the per-run cap), each
pair at most once. Two objectives:

- ``coverage`` (the default): every seeker that can have a first match gets one before any
  seeker gets a second, and so on; within that, the summed score is maximal. Each seeker's
  j-th match earns a bonus B_j on top of its score, B_1 > B_2 > ... > B_k, each step larger
  than any total of scores (a concave value per seeker in the same flow): an exchange that
  trades a j-th match for a later one always loses more bonus than it can gain in score, so
  the optimum is lexicographic (most seekers with one, then with two, ...; then score).
- ``score``: the summed match score alone (the objective before coverage came first); it
  hands out third matches before every seeker has a first one.
 It is solved as the flow's linear
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
from scipy.sparse.csgraph import maximum_flow

from refmatch.batch.params import OBJECTIVES
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


def assign(edges: Edges, k: int, room: dict[int, int], objective: str = "coverage") -> np.ndarray:
    """The pairs with at most k per seeker and ``room`` per advocate that maximise ``objective``."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective: must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
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
        cost = -edges.score[usable[lp]]
        if objective == "coverage":
            x = _solve_coverage(cost, matrix, bounds, s_of[lp], np.bincount(s_of[free], minlength=len(s_binds)), k)
        else:
            x = _solve(cost, matrix, bounds)
        chosen[usable[lp]] = x > 0.5
    return chosen


def _solve_coverage(
    cost: np.ndarray, matrix: sp.csc_array, bounds: np.ndarray, owner: np.ndarray, taken: np.ndarray, k: int
) -> np.ndarray:
    """``_solve`` with a bonus per seeker slot: slot j (after the ``taken`` free pairs) earns B_j, decreasing.

    Slot variables y[s, j] in [0, 1] join each edge column: sum of the seeker's edges = sum of its slots.
    The matrix stays a network matrix (source -> slot -> seeker -> advocate -> sink), so the vertex the
    simplex returns is integral as before."""
    n_edges = len(cost)
    seekers = np.unique(owner)
    wanted = np.minimum(np.bincount(owner, minlength=len(taken))[seekers], k - taken[seekers])
    levels = np.concatenate([taken[s] + np.arange(w) for s, w in zip(seekers.tolist(), wanted.tolist())])
    slot_owner = np.repeat(np.arange(len(seekers)), wanted)
    step = float(np.abs(cost).sum()) + 1.0  # more than any total of scores
    bonus = (k - levels) * step  # level 0 (a first match) earns k * step, the k-th earns step
    position = np.searchsorted(seekers, owner)
    balance = sp.csc_array(
        (
            np.concatenate([np.ones(n_edges), -np.ones(len(slot_owner))]),
            (np.concatenate([position, slot_owner]), np.arange(n_edges + len(slot_owner))),
        ),
        shape=(len(seekers), n_edges + len(slot_owner)),
    )
    upper = sp.hstack([matrix, sp.csc_array((matrix.shape[0], len(slot_owner)))], format="csc")
    full_cost = np.concatenate([cost, -bonus])
    result = linprog(
        full_cost, A_ub=upper, b_ub=bounds, A_eq=balance, b_eq=np.zeros(len(seekers)), bounds=(0, 1),
        method="highs-ds", options={"presolve": False},
    )  # fmt: skip
    if result.status != 0:
        raise RuntimeError(f"assignment: the linear programme was not solved ({result.message})")
    x = result.x[:n_edges]
    if np.abs(x - np.round(x)).max() > 1e-6:
        integer = milp(
            full_cost,
            constraints=[LinearConstraint(upper, -np.inf, bounds), LinearConstraint(balance, 0, 0)],
            bounds=Bounds(0, 1),
            integrality=1,
        )
        if integer.status != 0:
            raise RuntimeError(f"assignment: the integer programme was not solved ({integer.message})")
        x = integer.x[:n_edges]
    return np.round(x)


def max_coverable(edges: Edges, room: dict[int, int]) -> int:
    """The most seekers that could have at least one match at all under the advocates' room (a max-flow)."""
    cap = _capacity_per_edge(edges, room)
    usable = np.flatnonzero((edges.score > 0) & (cap > 0))
    if len(usable) == 0:
        return 0
    seekers, s_of = np.unique(edges.seeker[usable], return_inverse=True)
    advocates, a_of = np.unique(edges.advocate[usable], return_inverse=True)
    a_room = cap[usable][np.unique(a_of, return_index=True)[1]]
    n_s, n_a = len(seekers), len(advocates)
    source, sink = n_s + n_a, n_s + n_a + 1  # nodes: seekers, advocates, source, sink
    tail = np.concatenate([np.full(n_s, source), s_of, n_s + np.arange(n_a)])
    head = np.concatenate([np.arange(n_s), n_s + a_of, np.full(n_a, sink)])
    capacity = np.concatenate([np.ones(n_s), np.ones(len(usable)), a_room]).astype(np.int32)
    graph = sp.csr_array((capacity, (tail, head)), shape=(n_s + n_a + 2, n_s + n_a + 2))
    return int(maximum_flow(graph, source, sink).flow_value)


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
