#!/usr/bin/env python3
"""Match quality on held-out prospects: precision at 5 of the raw model, the matcher, BM25 and their fusion.

    refmatch demo -q && python scripts/bench_quality.py --db refmatch.db --index-dir indexes

The demo's needs come from a catalogue in which each need has three wordings
(scripts/make_demo_data.py), so relevance is known: for a prospect, an advocate is relevant
when it has met needs of the same catalogue entries as at least half of the prospect's open
needs (``--cover``).
Every prospect with an open need and at least one relevant advocate is a query; all
advocates are ranked (eligibility aside, so that the methods are compared on similarity
alone) by:

- raw model: for each open need, the closest met need's cosine (all-MiniLM-L6-v2), averaged;
- matcher without the lexical component: the weighted score of matching's other components;
- BM25: the lexical component alone (refmatch.match.lexical: Okapi BM25 of each open need's
  words against the advocate's met needs, scaled by the best, averaged);
- matcher: refmatch's score (no fatigue), the lexical component weighted by ``w_lexical``;
- fused: raw model + w x BM25 and matcher + w x BM25, with w chosen on half of the prospects
  (seeded) and reported on the other half, the held-out queries;
- weights chosen: the matcher with ``w_need`` and ``w_lexical`` chosen together on the tuning half
  (the other weights as set), reported on the held-out half: how the shipped defaults were chosen.

Prints one JSON line per method with its P@5 on the held-out prospects, and the w chosen.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from refmatch.app.service import Service  # noqa: E402
from refmatch.config import load_settings  # noqa: E402
from refmatch.match.scoring import COMPONENTS, weights  # noqa: E402


def catalogue_keys() -> dict[str, str]:
    spec = importlib.util.spec_from_file_location("make_demo_data", REPO / "scripts" / "make_demo_data.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return {text: need["key"] for need in module.load_catalogue() for text in need["variants"]}


def precision_at(scores: np.ndarray, relevant: np.ndarray, k: int = 5) -> float:
    top = np.lexsort((np.arange(len(scores)), -scores))[:k]
    return float(relevant[top].mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", required=True)
    parser.add_argument("--index-dir", required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--cover", type=float, default=0.5, help="relevant: met at least this share of the needs")
    parser.add_argument("--lexical", type=float, help="w_lexical for the matcher [as configured]")
    args = parser.parse_args(argv)
    overrides = {"db": args.db, "index_dir": args.index_dir}
    if args.lexical is not None:
        overrides["w_lexical"] = args.lexical
    service = Service(load_settings(overrides))
    conn = service.conn
    keys = catalogue_keys()
    advocates = [r[0] for r in conn.execute("SELECT account_id FROM advocates ORDER BY account_id")]
    advocate_pos = {a: i for i, a in enumerate(advocates)}
    met = conn.execute(
        "SELECT n.id, n.account_id, n.text FROM needs n JOIN advocates v ON v.account_id = n.account_id "
        "WHERE n.status = 'met'"
    ).fetchall()
    met_owner = {i: a for i, a, _ in met}
    met_keys: dict[int, set[str]] = {}
    for _, a, text in met:
        met_keys.setdefault(a, set()).add(keys.get(text, text))
    prospects = conn.execute(
        "SELECT a.external_id, a.id FROM accounts a WHERE a.stage = 'prospect' AND EXISTS "
        "(SELECT 1 FROM needs n WHERE n.account_id = a.id AND n.status != 'met') ORDER BY a.external_id"
    ).fetchall()
    base = weights(service.settings, True)
    w_vec = np.array([base[c] for c in COMPONENTS])
    lexical = COMPONENTS.index("lexical")
    no_lex = w_vec.copy()
    no_lex[lexical] = 0.0
    rows = []
    for external_id, account_id in prospects:
        texts = [t for (t,) in conn.execute(
            "SELECT text FROM needs WHERE account_id = ? AND status != 'met' ORDER BY id", (account_id,))]  # fmt: skip
        wanted = {keys.get(t, t) for t in texts}
        covered = np.array([len(wanted & met_keys.get(a, set())) / len(wanted) for a in advocates])
        relevant = covered >= args.cover
        if not relevant.any():
            continue
        comps = service.pair_components(external_id, advocates)
        matrix = np.array([[comps[a][c] if a in comps else 0.0 for c in COMPONENTS] for a in advocates])
        catalog, indexes, _ = service._loaded()
        open_ids = catalog.open_needs_of(account_id)
        q = indexes.needs.reconstruct(np.array(open_ids))
        raw = np.zeros(len(advocates))
        for a, pos in advocate_pos.items():
            mine = [i for i, owner in met_owner.items() if owner == a]
            if mine:
                raw[pos] = (q @ indexes.needs.reconstruct(np.array(mine)).T).max(axis=1).mean()
        rows.append({
            "raw": raw, "matcher": matrix @ no_lex / no_lex.sum(), "hybrid": matrix @ w_vec / w_vec.sum(),
            "relevant": relevant, "bm25": matrix[:, lexical], "none": np.zeros(len(raw)), "matrix": matrix,
        })  # fmt: skip
    order = list(range(len(rows)))
    random.Random(args.seed).shuffle(order)
    tune, held = [rows[i] for i in order[: len(order) // 2]], [rows[i] for i in order[len(order) // 2 :]]

    def p5(part, key, w=0.0):
        return float(np.mean([precision_at(r[key] + w * r["bm25"], r["relevant"]) for r in part]))

    grid = np.round(np.arange(0.0, 1.01, 0.05), 2)
    print(json.dumps({"queries": len(rows), "tune": len(tune), "held_out": len(held), "advocates": len(advocates)}))
    for name, key, w in (("raw model", "raw", 0.0), ("matcher without the lexical component", "matcher", 0.0),
                         ("BM25", "none", 1.0), (f"matcher (w_lexical {base['lexical']})", "hybrid", 0.0)):  # fmt: skip
        print(json.dumps({"method": name, "p@5_held_out": round(p5(held, key, w), 4),
                          "p@5_tune": round(p5(tune, key, w), 4)}))  # fmt: skip
    for key in ("raw", "matcher"):  # the lexical weight chosen on the tuning half, judged on the held-out half
        w = max(grid, key=lambda w: (p5(tune, key, w), -w))
        print(json.dumps({"method": f"{key} + {w} x BM25", "p@5_held_out": round(p5(held, key, w), 4),
                          "p@5_tune": round(p5(tune, key, w), 4)}))  # fmt: skip
    need = COMPONENTS.index("need_coverage")

    def p5_weights(part, w_need, w_lexical):
        w = w_vec.copy()
        w[need], w[lexical] = w_need, w_lexical
        return float(np.mean([precision_at(r["matrix"] @ w, r["relevant"]) for r in part]))

    pairs = [(n, x) for n in (0.45, 0.6, 0.75, 0.9, 1.2) for x in (0.0, 0.1, 0.2, 0.3, 0.45, 0.6)]
    w_need, w_lexical = max(pairs, key=lambda p: (p5_weights(tune, *p), -p[0], -p[1]))
    print(json.dumps({"method": f"matcher, w_need {w_need} and w_lexical {w_lexical} chosen on the tuning half",
                      "p@5_held_out": round(p5_weights(held, w_need, w_lexical), 4),
                      "p@5_tune": round(p5_weights(tune, w_need, w_lexical), 4)}))  # fmt: skip
    service.close()


if __name__ == "__main__":
    main()
