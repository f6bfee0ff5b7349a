"""The global assignment against brute force, the greedy baselines and the report, on hand-made edges."""

import itertools

import numpy as np
import pytest

from refmatch.batch.assignment import Edges, assign, greedy, greedy_within_capacity, loads, max_coverable
from refmatch.batch.reports import build_report, format_report, top_share


def edges_of(pairs):
    """pairs: [(seeker, advocate, score)], given grouped by seeker and best first."""
    s, a, w = zip(*pairs)
    return Edges(np.array(s, dtype=np.int64), np.array(a, dtype=np.int64), np.array(w, dtype=np.float64))


def chosen_pairs(edges, chosen):
    return sorted((int(s), int(a)) for s, a in zip(edges.seeker[chosen], edges.advocate[chosen]))


# seeker 0 likes A (10) a little more than B (20); seeker 1 only likes A
HOT = edges_of([(0, 10, 0.9), (0, 20, 0.8), (1, 10, 0.85), (1, 20, 0.1)])


def test_assignment_beats_greedy_where_greedy_overloads_one_advocate():
    room = {10: 1, 20: 1}
    unconstrained = greedy(HOT, k=1)
    assert loads(HOT, unconstrained) == {10: 2}  # both seekers sent to A, whose room is 1
    within = greedy_within_capacity(HOT, 1, room)
    assert chosen_pairs(HOT, within) == [(0, 10), (1, 20)]  # first come, first served: 0.9 + 0.1
    best = assign(HOT, 1, room, "score")
    assert chosen_pairs(HOT, best) == [(0, 20), (1, 10)]  # 0.8 + 0.85
    assert HOT.score[best].sum() == pytest.approx(1.65)
    assert HOT.score[best].sum() > HOT.score[within].sum()


def brute_force(edges, k, room):
    best = 0.0
    for picks in itertools.product((0, 1), repeat=len(edges)):
        x = np.array(picks, dtype=bool)
        if np.bincount(edges.seeker[x], minlength=10).max(initial=0) > k:
            continue
        if any(n > room.get(a, 0) for a, n in loads(edges, x).items()):
            continue
        best = max(best, edges.score[x].sum())
    return best


def random_edges(rng):
    """Four seekers with 1-4 of four advocates each (best first), and each advocate's room (0-2)."""
    pairs = []
    for s in range(4):
        advocates = rng.choice(4, size=int(rng.integers(1, 5)), replace=False)
        scores = np.round(rng.uniform(0.05, 1.0, len(advocates)), 3)
        for a, w in sorted(zip(advocates.tolist(), scores.tolist()), key=lambda p: -p[1]):
            pairs.append((s, a, w))
    return edges_of(pairs), {a: int(rng.integers(0, 3)) for a in range(4)}


@pytest.mark.parametrize("seed", range(12))
def test_assignment_is_optimal_and_within_capacity(seed):
    rng = np.random.default_rng(seed)
    edges, room = random_edges(rng)
    k = int(rng.integers(1, 3))
    chosen = assign(edges, k, room, "score")
    assert all(n <= room[a] for a, n in loads(edges, chosen).items())
    assert np.bincount(edges.seeker[chosen], minlength=4).max() <= k
    assert edges.score[chosen].sum() == pytest.approx(brute_force(edges, k, room))
    assert edges.score[chosen].sum() >= edges.score[greedy_within_capacity(edges, k, room)].sum() - 1e-9


def test_no_room_and_no_score_means_no_assignment():
    edges = edges_of([(0, 10, 0.5), (0, 20, -0.1), (1, 20, 0.0)])
    assert not assign(edges, 2, {10: 0, 20: 5}).any()
    assert chosen_pairs(edges, assign(edges, 2, {10: 1})) == [(0, 10)]  # 20 is not an advocate with room


def test_unconstrained_pairs_are_taken_without_the_solver():
    edges = edges_of([(0, 10, 0.5), (0, 20, 0.4), (1, 30, 0.3)])
    assert assign(edges, 2, {10: 1, 20: 1, 30: 1}).all()


def test_edges_rank_within_seeker():
    assert HOT.rank().tolist() == [0, 1, 0, 1]
    assert greedy(HOT, 1).tolist() == [True, False, True, False]


def test_report_counts_coverage_load_and_score_lost():
    room = {10: 1, 20: 1}
    chosen = assign(HOT, 1, room, "score")
    report = build_report(HOT, chosen, 3, 1, room, "assignment")
    assert report["coverage"] == {"full": 2, "fewer": 0, "none": 1, "none_without_candidates": 1}
    assert report["advocates"] == {
        "in_play": 2, "used": 2, "at_capacity": 2, "over_capacity": 0, "max_load": 1, "top10_share": 0.5,
        "greedy_top10_share": 1.0, "greedy_over_capacity": 1, "greedy_max_load": 2,
    }  # fmt: skip
    assert report["score"] == {
        "total": 1.65, "mean": 0.825, "greedy_total": 1.75, "lost": 0.1, "lost_share": 0.0571,
        "greedy_within_capacity_total": 1.0, "greedy_within_capacity_matches": 2,
    }  # fmt: skip
    assert format_report(report) == [
        "seekers: 3: 2 with 1 matches, 0 with fewer, 1 with none (1 had no eligible advocate); 2 matches",
        "advocates: 2 of 2 candidates used, 2 at capacity, 0 over; top 10% take 50% of matches "
        "(unconstrained greedy: 100%, 1 over capacity); max load 1 (greedy: 2)",
        "score: 1.650 in total, 0.825 per match; unconstrained greedy 1.750 (5.7% lost); "
        "greedy within capacity 1.000 with 2 matches",
    ]


def test_top_share():
    assert top_share(np.array([5, 1, 1, 1, 1, 1, 0, 0, 0, 0])) == 0.5
    assert top_share(np.array([], dtype=int)) == 0.0


# -- coverage first -----------------------------------------------------------------------------------------


def lexicographic_best(edges, k, room, n_seekers=4):
    """By brute force: the most seekers with 1 match, then with 2, ..., then the highest score."""
    best = None
    for picks in itertools.product((0, 1), repeat=len(edges)):
        x = np.array(picks, dtype=bool)
        counts = np.bincount(edges.seeker[x], minlength=n_seekers)
        if counts.max(initial=0) > k or any(n > room.get(a, 0) for a, n in loads(edges, x).items()):
            continue
        if (x & (edges.score <= 0)).any():
            continue
        key = (*[int((counts >= level).sum()) for level in range(1, k + 1)], round(float(edges.score[x].sum()), 9))
        best = key if best is None or key > best else best
    return best


@pytest.mark.parametrize("seed", range(16))
def test_coverage_first_is_lexicographically_optimal(seed):
    rng = np.random.default_rng(100 + seed)
    edges, room = random_edges(rng)
    k = int(rng.integers(1, 4))
    chosen = assign(edges, k, room)
    counts = np.bincount(edges.seeker[chosen], minlength=4)
    assert counts.max() <= k and all(n <= room[a] for a, n in loads(edges, chosen).items())
    got = (*[int((counts >= level).sum()) for level in range(1, k + 1)], round(float(edges.score[chosen].sum()), 9))
    assert got[:k] == lexicographic_best(edges, k, room)[:k]
    assert got[k] == pytest.approx(lexicographic_best(edges, k, room)[k])
    assert int((counts >= 1).sum()) == max_coverable(edges, room)


def test_coverage_first_gives_everyone_a_first_match_before_anyone_a_second():
    # two strong seekers could take both slots of advocate 10 and 20 as second matches; a weak third seeker
    # likes only 20. The score objective gives 20 to a seeker that already has one; coverage gives it to 2.
    edges = edges_of([(0, 10, 0.9), (0, 20, 0.8), (1, 30, 0.9), (1, 20, 0.7), (2, 20, 0.2)])
    room = {10: 1, 20: 1, 30: 1}
    by_score = assign(edges, 2, room, "score")
    assert np.bincount(edges.seeker[by_score], minlength=3).tolist() == [2, 1, 0]
    covered = assign(edges, 2, room)
    assert np.bincount(edges.seeker[covered], minlength=3).tolist() == [1, 1, 1]
    assert max_coverable(edges, room) == 3
    report = build_report(edges, covered, 3, 2, room, "coverage", {"score": by_score}, max_coverable(edges, room))
    assert report["coverage"]["none"] == 0 and report["compared"]["score"]["coverage"]["none"] == 1
    lines = format_report(report)
    assert "coverage: 3 seekers with a match, of the 3 the advocates' room could cover at all (max-flow)" in lines
    assert any(line.startswith("the score objective would give: 1 with 2, 1 with fewer, 1 with none") for line in lines)
