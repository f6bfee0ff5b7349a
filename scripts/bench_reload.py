#!/usr/bin/env python3
"""What a write costs the next match: a request approved, then an account changed.

    python scripts/bench_match.py --accounts 100000 --workdir /tmp/bm100k   # builds the data once
    python scripts/bench_reload.py --workdir /tmp/bm100k

Works on a copy of bench_match.py's database and indexes (the original is left as it
was), brings the index manifests up to date, then times the first match (indexes,
catalog and advocate vectors loaded), the match after a reference request is approved
(only slot counts re-read), and the match after an account's health changes (the
catalog reloaded, the indexes kept). Prints JSON lines with the seconds and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import torch  # noqa: E402, F401 - loaded, as in a server that has its model: the advocate vectors are fp16
from bench_match import SyntheticEncoder  # noqa: E402

from refmatch.app.service import Service  # noqa: E402
from refmatch.config import load_settings  # noqa: E402
from refmatch.store import transaction  # noqa: E402


def timed(label: str, action) -> None:
    t = time.perf_counter()
    action()
    print(json.dumps({
        "phase": label, "seconds": round(time.perf_counter() - t, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workdir", required=True, help="bench_match.py's --workdir (bench.db and indexes/)")
    args = parser.parse_args()
    source = Path(args.workdir)
    if not (source / "bench.db").is_file() or not (source / "indexes").is_dir():
        raise SystemExit(f"{source}: no bench.db and indexes/ here; run scripts/bench_match.py --workdir first")
    with tempfile.TemporaryDirectory(prefix="bench-reload-") as tmp:
        work = Path(tmp)
        shutil.copy(source / "bench.db", work / "bench.db")
        shutil.copytree(source / "indexes", work / "indexes")
        settings = load_settings({"db": str(work / "bench.db"), "index_dir": str(work / "indexes")}, env={})
        service = Service(settings, encoder=SyntheticEncoder())
        service.build_indexes()  # manifests of an older build gain the text version; nothing is embedded
        service.close()
        service = Service(settings, encoder=SyntheticEncoder())
        timed("first match (load indexes, catalog, advocate vectors)", lambda: service.match_account("B-1", k=5))
        timed("warm match", lambda: service.match_account("B-2", k=5))
        advocate = service.conn.execute("SELECT account_id FROM advocates LIMIT 1").fetchone()[0]
        today = date.today().isoformat()
        with transaction(service.db) as conn:
            conn.execute(
                "INSERT INTO reference_requests (advocate_account_id, purpose, status, created_at, updated_at, "
                "approved_at) VALUES (?, 'reference', 'approved', ?, ?, ?)",
                (advocate, today, today, today),
            )
        timed("match after a request is approved", lambda: service.match_account("B-3", k=5))
        with transaction(service.db) as conn:
            conn.execute("UPDATE accounts SET health = 55 WHERE id = 7")
        timed("match after an account changes", lambda: service.match_account("B-4", k=5))
        service.close()


if __name__ == "__main__":
    main()
