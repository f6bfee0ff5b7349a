#!/usr/bin/env python3
"""How well does the real model separate a need from its paraphrases, and from other needs?

    refmatch demo -q && python scripts/eval_need_threshold.py [--db refmatch.db --index-dir indexes]

Reads the demo's needs index (real all-MiniLM-L6-v2 vectors) and prints, as JSON lines,
the cosine percentiles of pairs of distinct need texts (most are unrelated, so their
upper percentiles bound what chance gives) and, for each planted known match in
refmatch/demo_data/known_matches.json, the similarity of each open need to the closest
need its advocate met (paraphrases by construction). ``need_threshold`` should sit
above the first and below most of the second.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refmatch.app.service import Service  # noqa: E402
from refmatch.config import load_settings  # noqa: E402

KNOWN = Path(__file__).resolve().parents[1] / "refmatch" / "demo_data" / "known_matches.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db")
    parser.add_argument("--index-dir")
    args = parser.parse_args()
    settings = load_settings({"db": args.db, "index_dir": args.index_dir})
    svc = Service(settings)
    catalog, indexes, _ = svc._loaded()
    ids = catalog.need_ids
    first_of_text: dict[str, int] = {}
    for i in ids.tolist():
        first_of_text.setdefault(catalog.need_text[i], i)
    unique = np.array(sorted(first_of_text.values()), dtype=np.int64)
    vectors = indexes.needs.reconstruct(unique)
    sims = vectors @ vectors.T
    pairs = sims[np.triu_indices(len(unique), 1)]
    print(json.dumps({
        "what": "distinct need texts, all pairs", "texts": len(unique), "pairs": int(pairs.size),
        "p50": round(float(np.percentile(pairs, 50)), 3), "p90": round(float(np.percentile(pairs, 90)), 3),
        "p99": round(float(np.percentile(pairs, 99)), 3), "p99.9": round(float(np.percentile(pairs, 99.9)), 3),
    }))  # fmt: skip
    planted = []
    for case in json.loads(KNOWN.read_text()):
        seeker = catalog.row_by_external(case["seeker"])
        advocate = catalog.row_by_external(case["advocate"])
        open_ids = catalog.open_needs_of(int(catalog.ids[seeker]))
        met = catalog.met_needs_of(advocate)
        best = (indexes.needs.reconstruct(np.array(open_ids)) @ indexes.needs.reconstruct(met).T).max(axis=1)
        planted += best.tolist()
    planted_arr = np.array(planted)
    print(json.dumps({
        "what": "planted paraphrases: open need vs the advocate's closest met need", "pairs": len(planted),
        "min": round(float(planted_arr.min()), 3), "p50": round(float(np.median(planted_arr)), 3),
        "share_at_or_above_threshold": round(float((planted_arr >= settings.need_threshold).mean()), 3),
        "need_threshold": settings.need_threshold,
    }))  # fmt: skip
    svc.close()


if __name__ == "__main__":
    main()
