#!/usr/bin/env python3
"""Precision and recall of "met need" claims: is the need an advocate met the same as the seeker's?

    python scripts/eval_need_claims.py [--threshold 0.45] [--model all-MiniLM-L6-v2]

A claim is made when a seeker's open need and a need the advocate met are at least
``need_threshold`` alike (cosine of their embeddings), and the reason then says the need was
met. The labelled pairs: every pair of statements in the demo's need catalogue
(scripts/make_demo_data.py: each entry is one need in three wordings, so two statements are
the same need exactly when they share an entry), plus the hand-checked pairs in
scripts/need_pairs_checked.csv (near misses across entries, checked by a person). Prints
one JSON line per threshold of a sweep, then the smallest threshold that reaches precision
0.9, with its recall, and the figures at the threshold given.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import sys
from itertools import combinations
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHECKED = REPO / "scripts" / "need_pairs_checked.csv"


def catalogue() -> list[dict]:
    spec = importlib.util.spec_from_file_location("make_demo_data", REPO / "scripts" / "make_demo_data.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.load_catalogue()


def labelled_pairs() -> tuple[list[str], list[tuple[int, int, bool]]]:
    """(texts, [(i, j, same)]): every pair of catalogue statements, and the hand-checked pairs."""
    texts: list[str] = []
    key_of: list[str] = []
    for need in catalogue():
        for variant in need["variants"]:
            texts.append(variant)
            key_of.append(need["key"])
    pairs = {(i, j): key_of[i] == key_of[j] for i, j in combinations(range(len(texts)), 2)}
    index = {t: i for i, t in enumerate(texts)}
    with open(CHECKED, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            for text in (row["a"], row["b"]):
                if text not in index:
                    index[text] = len(texts)
                    texts.append(text)
            i, j = sorted((index[row["a"]], index[row["b"]]))
            pairs[(i, j)] = row["same"] == "yes"  # a person's label wins over the catalogue's
    return texts, [(i, j, same) for (i, j), same in pairs.items()]


def measure(sims: np.ndarray, same: np.ndarray, threshold: float) -> dict[str, float | int]:
    claimed = sims >= threshold
    tp = int((claimed & same).sum())
    precision = tp / int(claimed.sum()) if claimed.any() else 1.0
    return {
        "threshold": round(threshold, 3), "claims": int(claimed.sum()), "correct": tp,
        "precision": round(precision, 3), "recall": round(tp / int(same.sum()), 3),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    from refmatch.config import load_settings
    from refmatch.embed.st import SentenceTransformerEncoder

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threshold", type=float, help="the claim threshold to report [the need_threshold setting]")
    parser.add_argument("--model", help="embedding model [the model setting]")
    args = parser.parse_args(argv)
    settings = load_settings({"model": args.model} if args.model else {})
    threshold = settings.need_threshold if args.threshold is None else args.threshold
    texts, pairs = labelled_pairs()
    vectors = SentenceTransformerEncoder(settings.model).encode(texts)
    i, j, same = (np.array(x) for x in zip(*pairs))
    sims = np.einsum("ij,ij->i", vectors[i], vectors[j])
    print(json.dumps({"model": settings.model, "texts": len(texts), "pairs": len(pairs), "same": int(same.sum())}))
    for t in np.arange(0.30, 0.86, 0.05):
        print(json.dumps(measure(sims, same, float(t))))
    sweep = [measure(sims, same, float(t)) for t in np.arange(0.30, 0.95, 0.005)]
    good = [m for m in sweep if m["precision"] >= 0.9]
    print(json.dumps({"lowest threshold with precision >= 0.9": good[0] if good else None}))
    print(json.dumps({"at the threshold": measure(sims, same, threshold)}))
    worst = np.argsort(-(sims * ~same))[:5]
    for w in worst:
        print(json.dumps({"closest different needs": [texts[i[w]], texts[j[w]]], "cosine": round(float(sims[w]), 3)}))


if __name__ == "__main__":
    main()
