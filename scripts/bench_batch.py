#!/usr/bin/env python3
"""Benchmark the batch job: seekers/s per stage (embed, search, assign, write) and peak RSS.

    python scripts/bench_batch.py --seekers 100000 --advocates 20000
    python scripts/bench_batch.py --seekers 10000 --advocates 2000 --embed-sample 500 --device cuda

Synthetic data as in bench_match.py: accounts whose profile and need vectors come from a
fast clustered encoder, needs about one of 3000 topics (every text unique, but needs of a
topic alike, so met needs really cover open ones), a skew towards a few products, capacities of 2-6 with some
already used. Embeddings are cached (the setup builds the indexes), so the batch's
embed stage only checks that the indexes are fresh; ``--embed-sample N`` measures
what embedding costs on ``--device`` by embedding N real texts with the real model
(refmatch.embed.st.SentenceTransformerEncoder). The batch and the sample each run in a
fresh process, so their peak RSS is their own; the batch's total line adds the peak PSS of its
whole process tree (``tree_peak_pss_mb``: with ``--executor ray``, Ray's daemons and actors too).
Prints JSON lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from bench_api import family, pss_mb  # noqa: E402
from bench_match import INDUSTRIES, SyntheticEncoder, peak_rss_mb  # noqa: E402

from refmatch.app.service import Service  # noqa: E402
from refmatch.config import load_settings  # noqa: E402
from refmatch.embed.base import normalize  # noqa: E402
from refmatch.store import open_db, transaction  # noqa: E402

PRODUCTS = ["Flow WMS", "Ledger", "Shield", "Insight", "Connect", "Fleet"]
PRODUCT_WEIGHTS = [6, 4, 3, 2, 2, 1]
REGIONS = ["EMEA", "NA", "APAC", "LATAM"]
NEED_TOPICS = 3000
TEXT = (
    "A mid-sized {industry} company with {n} staff across several regional sites, running warehouses and a fleet "
    "of vans, moving from spreadsheets to a proper system with single sign-on and nightly reporting."
)


class BenchEncoder(SyntheticEncoder):
    """Profiles as SyntheticEncoder; a need "need <topic> <n>" lies near its topic's centre, so needs of
    one topic read like paraphrases (cosine ~0.75) and needs of different topics are unrelated."""

    name = "bench-batch-synthetic"

    def __init__(self) -> None:
        super().__init__()
        self.topics = normalize(np.random.default_rng(1).standard_normal((NEED_TOPICS, self.dim)))

    def encode(self, texts):
        out = super().encode(texts)
        for i, text in enumerate(texts):
            if text.startswith("need "):
                topic = int(text.split(" ")[1])
                rng = np.random.default_rng(int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest()))
                out[i] = self.topics[topic] + 0.55 * rng.standard_normal(self.dim) / np.sqrt(self.dim)
        return normalize(out)


def populate(db_path: Path, seekers: int, advocates: int, seed: int) -> dict:
    """Accounts 1..advocates are advocates; the rest are seekers: 80% prospects, 10% onboarding, 10% at risk."""
    rnd = random.Random(seed)
    db = open_db(db_path)
    now, today = "2026-01-01T00:00:00+00:00", time.strftime("%Y-%m-%d")
    accounts, need_rows, advocate_rows, requests = [], [], [], []
    n = seekers + advocates
    for i in range(1, n + 1):
        products = json.dumps(sorted(set(rnd.choices(PRODUCTS, PRODUCT_WEIGHTS, k=rnd.randint(1, 2)))))
        r = rnd.random()
        if i <= advocates:
            stage, health, status, count = rnd.choice(["adoption", "value", "expansion"]), 55 + 45 * r, "met", 3
        else:
            stage, health = ("prospect", None) if r < 0.8 else ("onboarding", 80.0) if r < 0.9 else ("value", 40.0)
            status, count = "open", rnd.choice([1, 2, 2, 3])
        dnm = json.dumps([f"B-{rnd.randint(1, advocates)}" for _ in range(2)]) if i > advocates and r < 0.01 else "[]"
        accounts.append(
            (i, f"B-{i}", f"Company {i}", rnd.choice(INDUSTRIES), rnd.randint(10, 20000), rnd.choice(REGIONS),
             products, stage, health, f"Company {i} profile {rnd.getrandbits(48)}", dnm, now, now)
        )  # fmt: skip
        for topic in rnd.sample(range(NEED_TOPICS), count):  # every need text is unique; its topic is shared
            text = f"need {topic} {rnd.getrandbits(40)}"
            need_rows.append((i, text, text, status, "2025-06-01" if status == "met" else None, now))
        if i <= advocates:
            advocate_rows.append((i, rnd.randint(2, 6), now))
            if rnd.random() < 0.1:
                requests.extend([(i, today, today, today)] * rnd.randint(1, 2))
    with transaction(db) as conn:
        conn.executemany(
            "INSERT INTO accounts (id, external_id, name, industry, employees, country, region, products, stage, "
            "stage_since, health, profile, do_not_match, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, 'Ireland', ?, ?, ?, '2024-01-01', ?, ?, ?, ?, ?)",
            accounts,
        )
        conn.execute(
            "INSERT INTO stage_history (account_id, stage, entered_on, recorded_at) "
            "SELECT id, stage, stage_since, created_at FROM accounts"
        )
        conn.executemany(
            "INSERT INTO needs (account_id, text, text_key, status, met_on, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            need_rows,
        )
        conn.executemany(
            "INSERT INTO advocates (account_id, consent, reference_types, capacity_per_quarter, updated_at) "
            'VALUES (?, 1, \'["call", "mentoring", "peer_call"]\', ?, ?)',
            advocate_rows,
        )
        conn.executemany(
            "INSERT INTO reference_requests (advocate_account_id, purpose, status, created_at, updated_at, "
            "approved_at) VALUES (?, 'reference', 'approved', ?, ?, ?)",
            requests,
        )
    db.conn.close()
    return {"accounts": n, "needs": len(need_rows), "advocates": advocates}


def current_rss_mb() -> float:
    """Resident memory now (Linux), beside the peak: the indexes are let go after the search."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return float("nan")


class TreeMemory:
    """Peak memory of this process and every process it started (Ray's daemons and actors are
    its descendants when it starts a local Ray), as the sum of their PSS: shared pages, Ray's
    object store among them, count once. Sampled every ``every`` seconds on a thread (Linux)."""

    def __init__(self, every: float = 0.2) -> None:
        self.every, self.peak_mb, self.most_processes = every, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-tree-memory", daemon=True)

    def __enter__(self) -> TreeMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            self.sample()
            if self._stop.wait(self.every):
                self.sample()
                return

    def sample(self) -> None:
        me = os.getpid()
        self.peak_mb = max(self.peak_mb, pss_mb(me) or 0.0)
        self.most_processes = max(self.most_processes, len(family(me)))


def need_ray_data() -> None:
    try:
        import ray.data  # noqa: F401 - pandas and pyarrow come with it
    except ImportError as exc:
        raise SystemExit(f"--executor ray-data needs Ray Data: pip install 'ray[data]' ({exc})") from None


def ray_data_executor(workers: int | None):
    """A Ray executor whose partitions go through Ray Data's ``map_batches`` (a callable per
    actor that loads the snapshot once) instead of refmatch's pool of actors: what issue 15
    first asked for, kept here to measure that choice (refmatch/batch/executors.py says why
    the product does not use it). Needs Ray Data: pip install 'ray[data]'."""
    need_ray_data()
    from dataclasses import replace

    from refmatch.batch.executors import RayExecutor, _SearchWorker, without_secrets

    class Search:
        def __init__(self, refs: list) -> None:
            import ray

            self.worker = _SearchWorker(ray.get(refs[0]), ray.get(refs[1]))

        def __call__(self, batch: dict) -> dict:
            found = [self.worker.search(task) for task in batch["task"]]
            return {"part": np.array([f[0] for f in found]), "found": np.array([f[1] for f in found], dtype=object),
                    "n": np.array([f[2] for f in found])}  # fmt: skip

    class RayDataExecutor(RayExecutor):
        def search(self, snapshot, indexes, tasks):
            import ray.data

            snapshot = replace(snapshot, settings=without_secrets(snapshot.settings))
            refs = [ray.put(snapshot), ray.put(indexes.blobs())]
            data = ray.data.from_items([{"task": task} for task in tasks])  # every partition read here first
            data = data.map_batches(Search, fn_constructor_args=(refs,), batch_size=1, concurrency=self.workers,
                                    num_cpus=1, batch_format="numpy")  # fmt: skip
            for row in data.iter_rows():
                yield int(row["part"]), bytes(row["found"]), int(row["n"])

    return RayDataExecutor(workers=workers)


def batch_phase(args) -> None:
    """Fresh process: one batch run; a JSON line per stage and one for the whole run."""
    from refmatch.batch import BatchParams, Hooks, run_batch

    settings = load_settings({"db": args.db, "index_dir": args.index_dir}, env={})
    service = Service(settings, encoder=BenchEncoder())
    params = BatchParams.create(
        args.purpose,
        k=args.k,
        depth=args.depth,
        partition_size=args.partition_size,
        greedy=args.greedy,
        objective=args.objective,
        out=args.out,
    )
    seekers = 0

    def on_stage(event) -> None:
        nonlocal seekers
        seekers = event.info.get("seekers", seekers)
        line = {"phase": "batch", "stage": event.stage, "seconds": round(event.seconds, 2)}
        if event.stage in ("embed", "search", "assign", "write", "export") and event.seconds and seekers:
            line["seekers_per_s"] = round(seekers / event.seconds, 1)
        line.update({k: v for k, v in event.info.items() if k != "file"})
        line["rss_mb"] = round(current_rss_mb(), 1)
        line["peak_rss_mb"] = round(peak_rss_mb(), 1)
        print(json.dumps(line), flush=True)

    from refmatch.batch.executors import executor_for

    t0 = time.perf_counter()
    with TreeMemory() as tree:
        if args.executor == "ray-data":
            executor = ray_data_executor(args.workers)
        else:
            executor = executor_for(args.executor, workers=args.workers)  # Ray's start-up counts: a user waits
        try:
            run = run_batch(service, params, hooks=Hooks(on_stage=on_stage), executor=executor)
        finally:
            executor.close()
    wall = time.perf_counter() - t0
    report = run.report or {}
    print(json.dumps({
        "phase": "batch", "stage": "total", "seekers": run.seekers, "advocates": args.advocates,
        "mode": params.mode, "k": args.k, "depth": args.depth, "executor": args.executor, "seconds": round(wall, 1),
        "seekers_per_s": round(run.seekers / wall, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "tree_peak_pss_mb": round(tree.peak_mb, 1), "tree_processes": tree.most_processes,
        "coverage": report.get("coverage"), "coverable": report.get("coverable"), "compared": report.get("compared"),
        "score": report.get("score"),
        "top10_share": report.get("advocates", {}).get("top10_share"),
        "greedy_top10_share": report.get("advocates", {}).get("greedy_top10_share"),
    }), flush=True)  # fmt: skip
    service.close()


def embed_phase(args) -> None:
    """Fresh process: embed N realistic texts with the real model on the device asked for."""
    from refmatch.embed.st import SentenceTransformerEncoder

    rnd = random.Random(3)
    texts = [TEXT.format(industry=rnd.choice(INDUSTRIES).lower(), n=rnd.randint(50, 5000)) for _ in range(args.sample)]
    encoder = SentenceTransformerEncoder(device=args.device, batch_size=args.batch_size)
    t = time.perf_counter()
    encoder.encode(texts[: min(64, len(texts))])  # load the model and warm up
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    encoder.encode(texts)
    seconds = time.perf_counter() - t
    per_seeker = 1 + args.needs_per_seeker
    print(json.dumps({
        "phase": "embed_sample", "device": args.device, "texts": len(texts), "load_s": round(load_s, 1),
        "seconds": round(seconds, 2), "texts_per_s": round(len(texts) / seconds, 1),
        "texts_per_seeker": per_seeker, "seekers_per_s": round(len(texts) / seconds / per_seeker, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seekers", type=int, default=10_000)
    parser.add_argument("--advocates", type=int, default=2_000)
    parser.add_argument("--purpose", default="all", help="reference, mentor, retention or all")
    parser.add_argument("-k", type=int, default=3)
    parser.add_argument("--depth", type=int, default=10, help="candidates per seeker to assign from")
    parser.add_argument("--partition-size", type=int, default=2000)
    parser.add_argument("--greedy", action="store_true", help="per-seeker top-k instead of the assignment")
    parser.add_argument(
        "--objective",
        choices=["coverage", "score"],
        default="coverage",
        help="coverage: a first match for every seeker before a second for any [coverage]",
    )
    parser.add_argument("--out", help="also export the run (e.g. /tmp/run.csv)")
    parser.add_argument(
        "--executor",
        choices=["in-process", "ray", "ray-data"],
        default="in-process",
        help="ray-data: Ray's actors fed by Ray Data's map_batches, to compare (pip install 'ray[data]') [in-process]",
    )
    parser.add_argument("--workers", type=int, help="Ray actors (--executor ray) [the CPUs]")
    parser.add_argument("--hnsw-threshold", type=int, help="index size above which HNSW is built [the setting's]")
    parser.add_argument("--workdir", help="keep (and reuse) the generated database and indexes here")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"], help="for --embed-sample")
    parser.add_argument("--embed-sample", dest="sample", type=int, default=0, help="embed N real texts on --device")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=0,
        help="embedding batch size for --embed-sample [0: 64 on a CPU, sized for a GPU]",
    )
    parser.add_argument("--needs-per-seeker", type=float, default=2.0, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--phase", choices=["batch", "embed"], help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--index-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase == "batch":
        batch_phase(args)
        return
    if args.phase == "embed":
        embed_phase(args)
        return
    if args.executor == "ray-data":
        need_ray_data()  # before the set-up, not after it

    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        folder = Path(args.workdir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        db, index_dir, stamp = folder / "bench.db", folder / "indexes", folder / "bench.json"
        wanted = {"seekers": args.seekers, "advocates": args.advocates, "seed": args.seed,
                  "hnsw_threshold": args.hnsw_threshold}  # fmt: skip
        if not (stamp.exists() and json.loads(stamp.read_text()) == wanted and db.exists()):
            for f in [db, *folder.glob("bench.db-*"), *index_dir.glob("*")]:
                f.unlink(missing_ok=True)
            t = time.perf_counter()
            counts = populate(db, args.seekers, args.advocates, args.seed)
            populate_s = time.perf_counter() - t
            overrides = {"db": str(db), "index_dir": str(index_dir), "hnsw_threshold": args.hnsw_threshold}
            service = Service(load_settings(overrides, env={}), encoder=BenchEncoder())
            t = time.perf_counter()
            reports = service.build_indexes()
            build_s = time.perf_counter() - t
            service.close()
            stamp.write_text(json.dumps(wanted))
            print(json.dumps({
                "phase": "setup", **counts, "populate_s": round(populate_s, 1), "index_build_s": round(build_s, 1),
                "indexes": {r.name: {"kind": r.kind, "count": r.total} for r in reports},
            }), flush=True)  # fmt: skip
        common = [sys.executable, __file__, "--seekers", str(args.seekers), "--advocates", str(args.advocates)]
        batch = [*common, "--phase", "batch", "--db", str(db), "--index-dir", str(index_dir), "--purpose",
                 args.purpose, "-k", str(args.k), "--depth", str(args.depth), "--partition-size",
                 str(args.partition_size), "--objective", args.objective]  # fmt: skip
        if args.greedy:
            batch.append("--greedy")
        if args.out:
            batch += ["--out", args.out]
        batch += ["--executor", args.executor] + (["--workers", str(args.workers)] if args.workers else [])
        subprocess.run(batch, check=True)
        if args.sample:
            subprocess.run(
                [*common, "--phase", "embed", "--embed-sample", str(args.sample), "--device", args.device,
                 "--batch-size", str(args.batch_size), "--needs-per-seeker", str(args.needs_per_seeker)],
                check=True,
            )  # fmt: skip


if __name__ == "__main__":
    main()
