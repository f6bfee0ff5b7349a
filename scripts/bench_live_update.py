#!/usr/bin/env python3
"""What a large import costs a running server: matching under load while new accounts are imported and indexed.

    python scripts/bench_live_update.py                      # 20,000 new accounts, 16 clients, 2 workers
    python scripts/bench_live_update.py --accounts 2000 --data-dir /tmp/live   # smaller; the demo kept for reruns

Builds the demo (real model, ~1.5 min) into --data-dir/demo unless it is there, works on a
fresh copy of it (so runs start alike), starts
``refmatch serve --workers 2`` (with its background indexer), and runs ``--clients``
clients on ``GET /api/v1/accounts/{id}/matches`` (the demo's accounts): first for
``--quiet`` seconds with nothing else happening, then for ``--duration`` seconds while
``refmatch import`` loads ``--accounts`` generated accounts (a profile and
``--needs-per-account`` needs each; every fifth a consenting advocate) and the indexer
embeds them. Then it waits until ``/readyz`` reports no pending text: the moment the
last new account is proposable.

Prints JSON lines: each phase's requests, statuses, p50/p99 (and the ratio of the
import's p99 to the quiet one; the target is at most 2x and no non-2xx), the import's
seconds, the seconds from the import's start until nothing was pending, and the server's
peak RSS and PSS (workers and indexer added up). Each load phase also says where the CPU
went (``cpu``): seconds of CPU per second that the workers and the indexer ran and that
they waited runnable in the run queue (Linux schedstat), which shows when background
work takes the workers' time, and the CPU the importer used. Clients, server and indexer share this
machine's cores: read the figures as a floor.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_api import build, env_for, family, peak_rss_mb, pss_mb, run_load, token_and_seekers, wait_ready  # noqa: E402

WORDS = (
    "warehouse pallets cold chain dairy exporters retail stores fleet routing customs invoices ledger payroll "
    "clinics patients scheduling tenders hotels bookings kitchens menus farms grain tractors ports containers "
    "couriers parcels returns pharmacies prescriptions schools timetables factories lines maintenance sensors"
).split()
NEEDS = (
    "track temperature of chilled stock", "book delivery slots at the dock doors", "single sign-on with azure ad",
    "consolidate warehouses on one system", "post-brexit customs declarations", "route vans around road works",
    "forecast demand for fresh produce", "reconcile supplier invoices automatically", "roster shift workers fairly",
)  # fmt: skip


def generate(folder: Path, count: int, needs_per: int, seed: int) -> list[tuple[str, Path]]:
    rnd = random.Random(seed)
    accounts, needs, advocates = [], [], []
    for i in range(count):
        eid = f"LIVE-{i:06d}"
        advocate = i % 5 == 0
        profile = " ".join(rnd.choice(WORDS) for _ in range(40))
        accounts.append({"external_id": eid, "name": f"Live Account {i}", "industry": rnd.choice(["Transport", "Retail",
                         "Food"]), "employees": rnd.randrange(10, 5000), "country": "Ireland", "region": "EMEA",
                         "products": "Flow WMS", "stage": "value" if advocate else "prospect",
                         "stage_since": "2025-01-15", "health": 85, "profile": profile})  # fmt: skip
        for _ in range(needs_per):
            need = f"{rnd.choice(NEEDS)} for {rnd.choice(WORDS)} {rnd.choice(WORDS)}"
            status, met_on = ("met", "2025-06-01") if advocate else ("open", "")
            needs.append({"account_external_id": eid, "need": need, "status": status, "met_on": met_on})
        if advocate:
            advocates.append({"account_external_id": eid, "consent": "true", "reference_types": "call;peer_call",
                              "capacity_per_quarter": 4})  # fmt: skip
    out = []
    for kind, rows in (("accounts", accounts), ("needs", needs), ("advocates", advocates)):
        path = folder / f"live-{kind}.csv"
        with path.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        out.append((kind, path))
    return out


def pending_texts(port: int) -> int | None:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/readyz")
        body = json.loads(conn.getresponse().read())
        conn.close()
        return body["checks"]["indexes"].get("pending_texts")
    except (OSError, ValueError, KeyError):
        return None


def _cpu_seconds(pid: int) -> tuple[float, float]:
    """Seconds a process's threads ran and waited runnable in the run queue (0, 0 when unreadable)."""
    ran = waited = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "schedstat").read_text().split()
            ran, waited = ran + int(fields[0]), waited + int(fields[1])
    except (OSError, IndexError, ValueError):
        pass
    return ran / 1e9, waited / 1e9


def _roles(server_pid: int) -> dict[int, str]:
    """worker or indexer, for the server's children."""
    roles = {}
    for pid in family(server_pid)[1:]:
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        roles[pid] = "indexer" if b"watch" in argv else "worker"
    return roles


def _children_cpu() -> float:
    """CPU seconds of this script's finished children: the ``refmatch import`` runs."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class CpuShare:
    """Sampled every second during a load phase: run and run-queue seconds per second, by role."""

    def __init__(self, server_pid: int):
        self.server_pid, self.stop = server_pid, threading.Event()
        self.last: dict[int, tuple[str, float, float]] = {}
        self.totals: dict[str, list[float]] = {}
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> CpuShare:
        self.started, self.children = time.perf_counter(), _children_cpu()
        self._sample()
        self.thread.start()
        return self

    def _sample(self) -> None:
        first = not self.last
        for pid, role in _roles(self.server_pid).items():
            ran, waited = _cpu_seconds(pid)
            # a process that started during the phase counts from its start
            _, ran0, waited0 = self.last.get(pid, (role, ran, waited) if first else (role, 0.0, 0.0))
            total = self.totals.setdefault(role, [0.0, 0.0])
            total[0] += ran - ran0
            total[1] += waited - waited0
            self.last[pid] = (role, ran, waited)

    def _run(self) -> None:
        while not self.stop.wait(1.0):
            self._sample()

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()
        seconds = time.perf_counter() - self.started
        self.figures = {
            f"{role}s_{what}": round(t[i] / seconds, 2)
            for role, t in sorted(self.totals.items())
            for i, what in enumerate(("ran", "waited"))
        }
        self.figures["importer_ran"] = round((_children_cpu() - self.children) / seconds, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=20000, help="new accounts imported under load")
    parser.add_argument("--needs-per-account", type=int, default=3)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--quiet", type=float, default=20.0, help="seconds of load with no import (the baseline)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load while importing")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--max-wait", type=float, default=7200.0, help="most seconds to wait for the indexer")
    parser.add_argument("--data-dir", help="build the demo into (or reuse it from) this folder")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument(
        "--no-indexer", action="store_true",
        help="serve without the background indexer: what the import and the workers' reloads cost alone",
    )  # fmt: skip
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        base = Path(args.data_dir) if args.data_dir else Path(tmp)
        demo = base / "demo"
        demo.mkdir(parents=True, exist_ok=True)
        if not (demo / "bench.db").exists():
            build(demo, argparse.Namespace(accounts=0))  # the demo, real model
        folder = base / "run"
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(demo, folder)  # each run starts from the demo as built
        token, seekers = token_and_seekers(folder)
        seekers = [s for s in seekers if not s.startswith("LIVE-")]
        files = generate(folder, args.accounts, args.needs_per_account, args.seed)
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = open(folder / "server.log", "w")  # noqa: SIM115 - lives as long as the server
        server = subprocess.Popen(
            [sys.executable, "-m", "refmatch", "serve", "--port", str(port), "--workers", str(args.workers),
             *(["--no-indexer"] if args.no_indexer else [])],
            env=env_for(folder), stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_ready(port, server, folder, args.workers)
            with CpuShare(server.pid) as cpu:
                quiet = run_load(port, token, "matches", seekers, args.clients, args.quiet, args.seed)
            print(json.dumps({"phase": "quiet", "clients": args.clients, "workers": args.workers, **quiet,
                              "cpu": cpu.figures}), flush=True)  # fmt: skip

            started = time.perf_counter()
            imported: dict[str, float] = {}

            def do_import() -> None:
                for kind, path in files:
                    subprocess.run([sys.executable, "-m", "refmatch", "import", kind, str(path)], env=env_for(folder),
                                   check=True, stdout=subprocess.DEVNULL)  # fmt: skip
                imported["s"] = time.perf_counter() - started

            importer = threading.Thread(target=do_import)
            importer.start()
            with CpuShare(server.pid) as cpu:
                busy = run_load(port, token, "matches", seekers, args.clients, args.duration, args.seed + 1)
            ratio = round(busy["p99_ms"] / quiet["p99_ms"], 2) if busy["p99_ms"] and quiet["p99_ms"] else None
            print(json.dumps({"phase": "import", "accounts": args.accounts, "indexer": not args.no_indexer,
                              "p99_vs_quiet": ratio, **busy, "cpu": cpu.figures}), flush=True)  # fmt: skip
            importer.join()
            waited = time.perf_counter()
            while not args.no_indexer and time.perf_counter() - waited < args.max_wait:
                # every worker must say so: each loads new index files on its own (after a request asks)
                if all(pending_texts(port) == 0 for _ in range(4 * args.workers)):
                    break
                time.sleep(1)
            done = round(time.perf_counter() - started, 1)
            print(json.dumps({"phase": "indexed", "accounts": args.accounts, "import_s": round(imported["s"], 1),
                              "until_all_proposable_s": done,
                              "pending_at_end": max((pending_texts(port) or 0) for _ in range(4 * args.workers)),
                              "server_peak_rss_mb": peak_rss_mb(server.pid), "server_pss_mb": pss_mb(server.pid),
                              "processes": len(family(server.pid))}), flush=True)  # fmt: skip
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
