"""What a run achieved: coverage, how evenly advocates were loaded, and the score given up for it.

Everything is computed from the run's candidate edges and the chosen ones, and
compared with two baselines over the same edges: unconstrained greedy (each seeker's
k best, capacity ignored: the upper bound of the score, and the load it would put on
popular advocates) and greedy within capacity (best pairs first while there is room).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refmatch.batch.assignment import Edges, greedy, greedy_within_capacity


def top_share(loads: np.ndarray, share: float = 0.1) -> float:
    """Share of all assignments taken by the most loaded ``share`` of the advocates."""
    total = loads.sum()
    if len(loads) == 0 or total == 0:
        return 0.0
    top = max(1, math.ceil(share * len(loads)))
    return float(np.sort(loads)[::-1][:top].sum() / total)


def coverage(edges: Edges, chosen: np.ndarray, n_seekers: int, k: int) -> dict[str, int]:
    """How many seekers got k matches, fewer, none, and none for want of any candidate."""
    counts = np.bincount(edges.seeker[chosen], minlength=n_seekers)
    has_candidates = np.bincount(edges.seeker, minlength=n_seekers) > 0
    return {
        "full": int((counts >= k).sum()),
        "fewer": int(((counts > 0) & (counts < k)).sum()),
        "none": int((counts == 0).sum()),
        "none_without_candidates": int((~has_candidates).sum()),
    }


def build_report(
    edges: Edges,
    chosen: np.ndarray,
    n_seekers: int,
    k: int,
    room: dict[int, int],
    mode: str,
    compared: dict[str, np.ndarray] | None = None,
    coverable: int | None = None,
) -> dict[str, Any]:
    """The run's report (JSON-ready); seekers are numbered 0 .. n_seekers - 1 (their plan position).

    ``compared``: the pairs other objectives would have chosen (their coverage and score are reported);
    ``coverable``: the most seekers the advocates' room could give a match at all (a max-flow)."""

    # advocates in play: every advocate that is some seeker's candidate
    in_play, at = np.unique(edges.advocate, return_inverse=True)
    room_of = np.array([room.get(a, 0) for a in in_play.tolist()], dtype=np.int64)
    load = np.bincount(at[chosen], minlength=len(in_play))
    unconstrained = greedy(edges, k)
    greedy_load = np.bincount(at[unconstrained], minlength=len(in_play))
    within = greedy_within_capacity(edges, k, room)

    assigned = float(edges.score[chosen].sum())
    upper = float(edges.score[unconstrained].sum())
    return {
        "mode": mode,
        "k": k,
        "seekers": int(n_seekers),
        "coverage": coverage(edges, chosen, n_seekers, k),
        "coverable": coverable,
        "compared": {
            name: {
                "coverage": coverage(edges, other, n_seekers, k),
                "matches": int(other.sum()),
                "score_total": round(float(edges.score[other].sum()), 4),
            }
            for name, other in (compared or {}).items()
        },
        "matches": int(chosen.sum()),
        "advocates": {
            "in_play": len(in_play),
            "used": int((load > 0).sum()),
            "at_capacity": int(((load >= room_of) & (load > 0)).sum()),
            "over_capacity": int((load > room_of).sum()),
            "max_load": int(load.max()) if len(load) else 0,
            "top10_share": round(top_share(load), 4),
            "greedy_top10_share": round(top_share(greedy_load), 4),
            "greedy_over_capacity": int((greedy_load > room_of).sum()),
            "greedy_max_load": int(greedy_load.max()) if len(greedy_load) else 0,
        },
        "score": {
            "total": round(assigned, 4),
            "mean": round(assigned / chosen.sum(), 4) if chosen.any() else 0.0,
            "greedy_total": round(upper, 4),
            "lost": round(upper - assigned, 4),
            "lost_share": round((upper - assigned) / upper, 4) if upper else 0.0,
            "greedy_within_capacity_total": round(float(edges.score[within].sum()), 4),
            "greedy_within_capacity_matches": int(within.sum()),
        },
    }


def format_report(report: dict[str, Any]) -> list[str]:
    """The report as a few lines a person reads."""
    c, a, s = report["coverage"], report["advocates"], report["score"]
    k = report["k"]
    without = c["none_without_candidates"]
    no_candidates = f" ({without} had no eligible advocate)" if without else ""
    lines = [
        f"seekers: {report['seekers']}: {c['full']} with {k} matches, {c['fewer']} with fewer, "
        f"{c['none']} with none{no_candidates}; {report['matches']} matches",
    ]
    if report.get("coverable") is not None:
        covered = c["full"] + c["fewer"]
        lines.append(f"coverage: {covered} seekers with a match, of the {report['coverable']} the advocates' room "
                     "could cover at all (max-flow)")  # fmt: skip
    for name, other in (report.get("compared") or {}).items():
        o = other["coverage"]
        lines.append(
            f"the {name} objective would give: {o['full']} with {k}, {o['fewer']} with fewer, {o['none']} with none; "
            f"{other['matches']} matches, score {other['score_total']:.3f}"
        )
    lines += [
        f"advocates: {a['used']} of {a['in_play']} candidates used, {a['at_capacity']} at capacity, "
        f"{a['over_capacity']} over; top 10% take {a['top10_share']:.0%} of matches "
        f"(unconstrained greedy: {a['greedy_top10_share']:.0%}, {a['greedy_over_capacity']} over capacity); "
        f"max load {a['max_load']} (greedy: {a['greedy_max_load']})",
        f"score: {s['total']:.3f} in total, {s['mean']:.3f} per match; unconstrained greedy {s['greedy_total']:.3f} "
        f"({s['lost_share']:.1%} lost); greedy within capacity {s['greedy_within_capacity_total']:.3f} "
        f"with {s['greedy_within_capacity_matches']} matches",
    ]
    return lines
