#!/usr/bin/env python3
"""How long the CLI takes to answer commands that should answer at once.

    python scripts/bench_startup.py                          # a small generated database (fake encoder)
    python scripts/bench_startup.py --db demo.db --index-dir indexes --runs 10

Runs each command ``--runs`` times as a fresh process (``python -m refmatch ...``, so
Python's own start-up is included) and prints one JSON line per command with the
median, fastest and slowest wall time, after one unmeasured run (which writes the
bytecode cache, as any installed copy has it; PYTHONDONTWRITEBYTECODE is cleared).
Commands: ``--help``, ``match --help``, ``index status`` and ``risk --help``. Target:
under 0.3 s each (issue 9). The machine
is shared: read the median.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = (("--help",), ("match", "--help"), ("index", "status"), ("risk", "--help"))


def small_world(folder: Path, accounts: int) -> tuple[Path, Path]:
    """``accounts`` accounts with a profile and a need each, indexed with the fake encoder."""
    sys.path.insert(0, str(ROOT))
    from refmatch.app.service import Service
    from refmatch.config import load_settings
    from refmatch.embed.fake import FakeEncoder

    rows = "external_id,name,stage,products,profile\n" + "".join(
        f"A{i},Company {i},{'prospect' if i % 3 else 'value'},Flow WMS,warehouse number {i} ships pallets\n"
        for i in range(accounts)
    )
    needs = "account_external_id,need,status\n" + "".join(f"A{i},need number {i % 50},open\n" for i in range(accounts))
    (folder / "accounts.csv").write_text(rows)
    (folder / "needs.csv").write_text(needs)
    db, index_dir = folder / "bench.db", folder / "indexes"
    service = Service(load_settings({"db": str(db), "index_dir": str(index_dir)}, env={}), encoder=FakeEncoder())
    service.import_file("accounts", folder / "accounts.csv")
    service.import_file("needs", folder / "needs.csv")
    service.build_indexes()
    service.close()
    return db, index_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--accounts", type=int, default=1000, help="size of the generated database")
    parser.add_argument("--db", help="an existing database instead of a generated one")
    parser.add_argument("--index-dir", help="its index directory")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        if args.db:
            db, index_dir = Path(args.db), Path(args.index_dir or "indexes")
        else:
            db, index_dir = small_world(Path(tmp), args.accounts)
        env = {**os.environ, "REFMATCH_DB": str(db), "REFMATCH_INDEX_DIR": str(index_dir), "HF_HUB_OFFLINE": "1"}
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # as installed: bytecode cached after the first run
        for command in COMMANDS:
            subprocess.run([sys.executable, "-m", "refmatch", *command], env=env, capture_output=True, check=False)
            times = []
            for _ in range(args.runs):
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "refmatch", *command], env=env, capture_output=True, check=False)
                times.append(time.perf_counter() - t)
            line = {"command": "refmatch " + " ".join(command), "runs": args.runs}
            line.update(median_s=round(statistics.median(times), 3), min_s=round(min(times), 3))
            line.update(max_s=round(max(times), 3), database="given" if args.db else f"{args.accounts} accounts")
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
