#!/usr/bin/env python3
"""Benchmark matching at scale: index build, stored-seeker and ad-hoc match latency, peak RSS.

    python scripts/bench_match.py --accounts 10000
    python scripts/bench_match.py --accounts 100000 --needs-per-account 3

Synthetic data: N accounts (a share of them advocates) with needs-per-account needs
each. Their vectors come from a fast synthetic encoder with cluster structure (the
real model would take ~1.5 h per 400k texts on 2 cores; its cost is measured
separately), so the index part is real FAISS on realistic sizes. Ad-hoc queries are
embedded with the real model, as a server would, then matched against the synthetic
indexes. The serving phase runs in a fresh process so its peak RSS is what a server
holding the model, both indexes and the catalog would use. Prints JSON lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refmatch.app.service import Service  # noqa: E402
from refmatch.config import load_settings  # noqa: E402
from refmatch.embed.base import normalize  # noqa: E402
from refmatch.store import open_db, transaction  # noqa: E402

INDUSTRIES = [
    "Logistics",
    "Retail",
    "Pharma",
    "Energy",
    "Food",
    "Finance",
    "Construction",
    "Transport",
    "Telecoms",
    "Health",
]
PRODUCTS = ["Ledger", "Flow WMS", "Shield", "Insight", "Connect"]
STAGES = ["prospect", "onboarding", "adoption", "value", "expansion"]
CLUSTERS = 200


class SyntheticEncoder:
    """Deterministic clustered vectors: the text's hash picks a cluster centre and the noise."""

    name = "bench-synthetic"
    dim = 384

    def __init__(self) -> None:
        self.centres = normalize(np.random.default_rng(0).standard_normal((CLUSTERS, self.dim)))

    def encode(self, texts):
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "little")
            rng = np.random.default_rng(seed)
            out[i] = self.centres[seed % CLUSTERS] + 0.6 * rng.standard_normal(self.dim) / np.sqrt(self.dim) * 4
        return normalize(out)


class QueryEncoder(SyntheticEncoder):
    """Reports the synthetic model's name (so the indexes load) but embeds queries with the real model."""

    def __init__(self, real) -> None:
        super().__init__()
        self.real = real

    def encode(self, texts):
        return self.real.encode(texts)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def populate(db_path: Path, n: int, needs_per_account: int, seed: int) -> None:
    rnd = random.Random(seed)
    db = open_db(db_path)
    now = "2026-01-01T00:00:00+00:00"
    with transaction(db) as conn:
        conn.executemany(
            "INSERT INTO accounts (id, external_id, name, industry, employees, size_band, country, region, products, "
            "stage, "
            "stage_since, health, profile, do_not_match, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, NULL, 'Ireland', 'EMEA', ?, ?, '2024-01-01', ?, ?, '[]', ?, ?)",
            [
                (
                    i, f"B-{i}", f"Company {i}", rnd.choice(INDUSTRIES), rnd.randint(10, 20000),
                    json.dumps(rnd.sample(PRODUCTS, rnd.randint(1, 3))), rnd.choice(STAGES), rnd.uniform(30, 100),
                    f"Company {i} profile {rnd.getrandbits(48)}", now, now,
                )
                for i in range(1, n + 1)
            ],
        )  # fmt: skip
        conn.execute(
            "INSERT INTO stage_history (account_id, stage, entered_on, recorded_at) "
            "SELECT id, stage, stage_since, created_at FROM accounts"
        )
        conn.executemany(
            "INSERT INTO needs (account_id, text, text_key, status, updated_at) VALUES (?, ?, ?, ?, ?)",
            [
                (i, text, text, rnd.choice(["open", "in_progress", "met", "met"]), now)
                for i in range(1, n + 1)
                for text in (f"need {i}-{j} {rnd.getrandbits(40)}" for j in range(needs_per_account))
            ],
        )
        conn.execute(
            "INSERT INTO advocates (account_id, consent, reference_types, capacity_per_quarter, updated_at) "
            'SELECT id, 1, \'["call", "mentoring", "peer_call"]\', 4, ? FROM accounts '
            "WHERE stage IN ('adoption', 'value', 'expansion') AND abs(random()) % 10 < 3",
            (now,),
        )
    db.conn.close()


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def serve_phase(args) -> None:
    """Fresh process: load model + indexes + catalog, then time matches."""
    import faiss

    faiss.omp_set_num_threads(1)
    from refmatch.embed.st import SentenceTransformerEncoder

    overrides = {"db": args.db, "index_dir": args.index_dir}
    if args.searches:
        overrides["advocate_vectors_max"] = 0
    if args.lexical is not None:
        overrides["w_lexical"] = args.lexical
    settings = load_settings(overrides, env={})
    real = SentenceTransformerEncoder("all-MiniLM-L6-v2")
    service = Service(settings, encoder=QueryEncoder(real))
    real.encode(["warm up the model"])  # as a server does, before the indexes (torch loaded: fp16 vectors)
    t0 = time.perf_counter()
    service.match_account("B-1", k=5)  # loads indexes and catalog
    load_s = time.perf_counter() - t0
    store = service.advocate_vectors(*service._loaded()[:2])
    held = {"kernel": store.kernel, "vectors": store.size, "mb": round(store.nbytes / 1e6, 1)} if store else None
    rnd = random.Random(1)
    seekers = [f"B-{rnd.randint(1, args.accounts)}" for _ in range(args.queries)]
    stored = []
    for ext in seekers:
        t = time.perf_counter()
        service.match_account(ext, k=5)
        stored.append((time.perf_counter() - t) * 1000)
    adhoc = []
    for i in range(args.text_queries):
        t = time.perf_counter()
        service.match_text(
            f"A mid-sized logistics company number {i} running regional warehouses and a fleet of delivery vans, "
            "moving from spreadsheets to a proper warehouse management system with SSO.",
            needs=["consolidate warehouses onto one WMS", "single sign-on with Azure AD"],
            industry="Logistics",
            employees=800,
            products=["Flow WMS"],
            k=5,
        )
        adhoc.append((time.perf_counter() - t) * 1000)
    if store is not None and args.compare:
        print(json.dumps(compare_paths(service, seekers[: args.compare])))
    for kind, lat in (("stored_seeker", stored), ("adhoc_text", adhoc)):
        print(json.dumps({
            "phase": "match", "kind": kind, "accounts": args.accounts, "queries": len(lat),
            "p50_ms": round(statistics.median(lat), 2), "p99_ms": round(pct(lat, 0.99), 2),
            "first_load_s": round(load_s, 2), "peak_rss_mb": round(peak_rss_mb(), 1), "advocate_vectors": held,
        }))  # fmt: skip


def compare_paths(service: Service, seekers: list[str]) -> dict:
    """The same seekers matched from the held advocate vectors and from index searches (k=5, reference)."""
    from refmatch.match import find_matches

    catalog, indexes, _ = service._loaded()
    store = service.advocate_vectors(catalog, indexes)
    rules = service._rules("reference", None, None)
    same_top5 = better_top1 = worse_top1 = with_matches = 0
    for ext in seekers:
        seeker = service.match_account(ext, k=1).seeker
        held, _ = find_matches(catalog, indexes, seeker, rules, service.settings, 5, store)
        searched, _ = find_matches(catalog, indexes, seeker, rules, service.settings, 5)
        if not held and not searched:
            continue
        with_matches += 1
        same_top5 += [m.external_id for m in held] == [m.external_id for m in searched]
        top_held, top_searched = (held[0].score if held else 0.0), (searched[0].score if searched else 0.0)
        better_top1 += top_held > top_searched + 1e-6
        worse_top1 += top_held < top_searched - 1e-6
    return {
        "phase": "compare", "seekers_with_matches": with_matches, "identical_top5": same_top5,
        "held_top1_scores_higher": better_top1, "held_top1_scores_lower": worse_top1,
    }  # fmt: skip


def build(args, db: Path, index_dir: Path) -> None:
    t = time.perf_counter()
    populate(db, args.accounts, args.needs_per_account, args.seed)
    populate_s = time.perf_counter() - t
    settings = load_settings({"db": str(db), "index_dir": str(index_dir)}, env={})
    service = Service(settings, encoder=SyntheticEncoder())
    t = time.perf_counter()
    reports = service.build_indexes()
    build_s = time.perf_counter() - t
    service.close()
    print(json.dumps({
        "phase": "build", "accounts": args.accounts, "needs": args.accounts * args.needs_per_account,
        "populate_s": round(populate_s, 1), "index_build_s": round(build_s, 1),
        "indexes": {r.name: {"kind": r.kind, "count": r.total} for r in reports},
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--needs-per-account", type=int, default=3)
    parser.add_argument("--queries", type=int, default=300, help="stored-seeker matches to time")
    parser.add_argument("--text-queries", type=int, default=50, help="ad-hoc text matches to time")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", help="keep the synthetic database and indexes here and reuse them next time")
    parser.add_argument(
        "--searches", action="store_true", help="match by index searches (advocate_vectors_max=0), for comparison"
    )
    parser.add_argument(
        "--lexical", type=float, metavar="W", help="the lexical component's weight (w_lexical) [the setting's, 0.45]"
    )
    parser.add_argument(
        "--compare", type=int, default=0, metavar="N",
        help="also match N of the seekers both ways and count how often the results differ",
    )  # fmt: skip
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--index-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_phase(args)
        return

    with tempfile.TemporaryDirectory(prefix="bench-match-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        db, index_dir = work / "bench.db", work / "indexes"
        if not (args.workdir and db.exists() and index_dir.exists()):
            db.unlink(missing_ok=True)
            build(args, db, index_dir)
        subprocess.run(
            [sys.executable, __file__, "--serve", "--db", str(db), "--index-dir", str(index_dir),
             "--accounts", str(args.accounts), "--queries", str(args.queries),
             "--text-queries", str(args.text_queries), "--compare", str(args.compare),
             *(["--searches"] if args.searches else []),
             *(["--lexical", str(args.lexical)] if args.lexical is not None else [])],
            check=True,
        )  # fmt: skip


if __name__ == "__main__":
    main()
