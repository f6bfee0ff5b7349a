#!/usr/bin/env python3
"""Benchmark the running HTTP server: concurrent clients against the matching endpoints.

    python scripts/bench_api.py                       # the demo (real model; builds it: ~80 s)
    python scripts/bench_api.py --accounts 100000     # synthetic 100k accounts (bench_match.py's data)
    python scripts/bench_api.py --clients 8 --duration 20
    python scripts/bench_api.py --workers 2 --compute-threads 2   # each worker's pools as large as the machine

Starts the server in its own process (``refmatch serve`` for the demo; for synthetic
data the same app and server (gunicorn) with bench_match.py's encoder, whose vectors the indexes
hold, embedding ad-hoc queries with the real model), waits for /readyz, then runs
``--clients`` keep-alive HTTP clients for ``--duration`` seconds per endpoint:

- ``GET /api/v1/accounts/{id}/matches`` for random stored seekers,
- ``POST /api/v1/match`` with a prospect description and two needs (embedded per request).

Prints one JSON line per endpoint: requests, errors, throughput, p50/p90/p99/max latency,
the time spent inside the app (its Server-Timing header), and the server's peak RSS and
current PSS (the workers' shared pages counted once). Client and server share the
machine's cores, so read the figures as a floor. Target: no errors; stored-seeker p99
<= 50 ms at 8 clients.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from refmatch.app import users  # noqa: E402

PROSPECTS = [
    "A mid-sized logistics company running regional warehouses and a fleet of delivery vans, moving from "
    "spreadsheets to a warehouse management system.",
    "A food distributor with three cold-chain depots that supplies supermarkets and restaurants nationwide.",
    "A construction contractor managing subcontractor crews, hired plant and snag lists across many sites.",
    "A pharmaceutical manufacturer with validated batch records, serialisation and a strict audit trail.",
]
NEEDS = [
    ["consolidate warehouses onto one WMS", "single sign-on with Azure AD"],
    ["track temperature across the cold chain", "route deliveries around store opening hours"],
    ["dispatch crews from a mobile app", "plant hire register with off-hire reminders"],
    ["electronic batch records", "serialisation for EU FMD"],
]


ENDPOINTS = {
    "matches": "GET /api/v1/accounts/{id}/matches",
    "match": "POST /api/v1/match",
    "healthz": "GET /healthz",
    "me": "GET /api/v1/me",
}


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def env_for(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "REFMATCH_DB": str(folder / "bench.db"),
        "REFMATCH_INDEX_DIR": str(folder / "indexes"),
    }


def build(folder: Path, args: argparse.Namespace) -> float:
    t = time.perf_counter()
    if args.accounts == 0:
        subprocess.run([sys.executable, "-m", "refmatch", "demo", "-q"], env=env_for(folder), check=True,
                       stdout=subprocess.DEVNULL)  # fmt: skip
    else:
        from bench_match import SyntheticEncoder, populate

        from refmatch.app.service import Service
        from refmatch.config import load_settings

        populate(folder / "bench.db", args.accounts, args.needs_per_account, args.seed)
        settings = load_settings({"db": str(folder / "bench.db"), "index_dir": str(folder / "indexes")}, env={})
        service = Service(settings, encoder=SyntheticEncoder())
        service.build_indexes()
        service.close()
    return time.perf_counter() - t


def token_and_seekers(folder: Path) -> tuple[str, list[str]]:
    from refmatch.app.service import Service
    from refmatch.config import load_settings

    service = Service(load_settings({"db": str(folder / "bench.db")}, env={}))
    try:
        if users.get_user_by_name(service, "bench") is None:
            users.add_user(service, "bench", "bench-password", "sales")
        token, _ = users.create_token(service, "bench", "bench_api")
        seekers = [r[0] for r in service.conn.execute("SELECT external_id FROM accounts")]
    finally:
        service.close()
    return token, seekers


def serve_synthetic(args: argparse.Namespace) -> None:
    """(--serve) The app under gunicorn with the synthetic encoder's name and the real model for queries."""
    from bench_match import QueryEncoder

    from refmatch.config import load_settings
    from refmatch.embed.st import SentenceTransformerEncoder
    from refmatch.web.server import serve

    settings = load_settings({"db": args.db, "index_dir": args.index_dir}, env={})
    encoder = QueryEncoder(SentenceTransformerEncoder("all-MiniLM-L6-v2"))  # loads in each worker, on first use
    serve(settings, encoder, host="127.0.0.1", port=args.port, workers=args.workers, threads=args.threads,
          compute_threads=args.compute_threads)  # fmt: skip


def start_server(folder: Path, args: argparse.Namespace, port: int) -> subprocess.Popen:
    if args.accounts == 0:
        cmd = [sys.executable, "-m", "refmatch", "serve", "--port", str(port), "--threads", str(args.threads),
               "--workers", str(args.workers), "--compute-threads", str(args.compute_threads)]  # fmt: skip
    else:
        cmd = [sys.executable, __file__, "--serve", "--db", str(folder / "bench.db"),
               "--index-dir", str(folder / "indexes"), "--port", str(port), "--threads", str(args.threads),
               "--workers", str(args.workers), "--compute-threads", str(args.compute_threads)]  # fmt: skip
    log = open(folder / "server.log", "w")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(cmd, env=env_for(folder), stdout=log, stderr=subprocess.STDOUT)


def wait_ready(port: int, proc: subprocess.Popen, folder: Path, workers: int, timeout: float = 900) -> float:
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"server exited:\n{(folder / 'server.log').read_text()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            response = conn.getresponse()
            body = json.loads(response.read())
            conn.close()
            log = (folder / "server.log").read_text()
            if response.status == 200 and (workers == 1 or log.count(" ready (") >= workers):
                return time.perf_counter() - t
            if body["checks"]["indexes"]["ok"] is False and "stale" in body["checks"]["indexes"]["message"]:
                raise SystemExit(f"indexes stale: {body}")
        except OSError:
            pass
        time.sleep(0.5)
    raise SystemExit("server not ready in time")


def family(pid: int) -> list[int]:
    """A process and all its descendants, itself first: the server, its workers (``--workers`` forks
    them) and its indexer (a thread starts it); a batch run's local Ray, its daemons and actors."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop(0)
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += map(int, (task / "children").read_text().split())
        except OSError:
            pass  # gone meanwhile
    return found


def _family_kb(pid: int, name: str, field: str) -> float | None:
    """A kB figure (``field:`` in /proc/<p>/<name>) of the server and its workers, added up, in MB."""
    total = 0
    for p in family(pid):
        try:
            for line in Path(f"/proc/{p}/{name}").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1) if total else None


def peak_rss_mb(pid: int) -> float | None:
    """Peak resident memory of the server, its workers added up."""
    return _family_kb(pid, "status", "VmHWM")


def pss_mb(pid: int) -> float | None:
    """Proportional resident memory of the server and its workers added up: pages shared
    between workers (memory-mapped index vectors, the page cache) count once, split among them."""
    return _family_kb(pid, "smaps_rollup", "Pss")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the server and its workers have used so far."""
    total = 0.0
    for p in family(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            continue
    return total


def run_load(port: int, token: str, kind: str, seekers: list[str], clients: int, duration: float, seed: int) -> dict:
    """``clients`` threads, each with one keep-alive connection, for ``duration`` seconds."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    in_app: list[list[float]] = [[] for _ in range(clients)]  # the server's own time (Server-Timing)
    errors = [0] * clients
    statuses: list[dict[str, int]] = [{} for _ in range(clients)]  # per client: status (or "error") -> count
    samples: list[str] = []
    stop = time.perf_counter() + duration
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def client(i: int) -> None:
        rnd = random.Random(seed * 1000 + i)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < stop:
            if kind == "matches":
                method, path, body = "GET", f"/api/v1/accounts/{rnd.choice(seekers)}/matches?k=5", None
            elif kind == "healthz":  # the server's floor: WSGI server + Flask, no work
                method, path, body = "GET", "/healthz", None
            elif kind == "me":  # the floor plus bearer-token authentication
                method, path, body = "GET", "/api/v1/me", None
            else:
                j = rnd.randrange(len(PROSPECTS))
                payload = {"text": f"{PROSPECTS[j]} Ref {rnd.getrandbits(32)}.", "needs": NEEDS[j], "k": 5}
                method, path, body = "POST", "/api/v1/match", json.dumps(payload)
            t = time.perf_counter()
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
                ok = response.status == 200
                statuses[i][str(response.status)] = statuses[i].get(str(response.status), 0) + 1
                timing = response.getheader("Server-Timing", "")
                if timing.startswith("app;dur="):
                    in_app[i].append(float(timing[len("app;dur=") :]))
            except (OSError, http.client.HTTPException) as exc:
                ok, data = False, str(exc).encode()
                statuses[i]["no_response"] = statuses[i].get("no_response", 0) + 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            latencies[i].append((time.perf_counter() - t) * 1000)
            if not ok:
                errors[i] += 1
                if len(samples) < 3:
                    samples.append(data[:300].decode(errors="replace"))
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    t0 = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    elapsed = time.perf_counter() - t0
    lat = [x for per in latencies for x in per]
    out = {
        "requests": len(lat),
        "errors": sum(errors),
        "statuses": {k: sum(s.get(k, 0) for s in statuses) for k in sorted({k for s in statuses for k in s})},
        "throughput_rps": round(len(lat) / elapsed, 1),
        "p50_ms": round(statistics.median(lat), 2) if lat else None,
        "p90_ms": round(pct(lat, 0.90), 2) if lat else None,
        "p99_ms": round(pct(lat, 0.99), 2) if lat else None,
        "max_ms": round(max(lat), 2) if lat else None,
    }
    app = [x for per in in_app for x in per]
    if app:  # time inside the app; the rest of the latency is queueing, HTTP and the client
        out["in_app_p50_ms"], out["in_app_p99_ms"] = round(statistics.median(app), 2), round(pct(app, 0.99), 2)
    if samples:
        out["error_samples"] = samples
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--accounts", type=int, default=0, help="0: the demo data; N: N synthetic accounts")
    parser.add_argument("--needs-per-account", type=int, default=3, help="synthetic data only")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of load before measuring each endpoint")
    parser.add_argument("--threads", type=int, default=1, help="server request threads per worker")
    parser.add_argument("--workers", type=int, default=1, help="server processes (refmatch serve --workers)")
    parser.add_argument("--compute-threads", type=int, default=0,
                        help="threads per worker for torch/BLAS/OpenMP; 0: cores // workers (the default)")  # fmt: skip
    parser.add_argument("--endpoints", default="matches,match", help=f"comma-separated, of: {', '.join(ENDPOINTS)}")
    parser.add_argument("--data-dir", help="build into (or reuse) this folder instead of a temporary one")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    parser.add_argument("--index-dir", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve_synthetic(args)
        return

    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        folder = Path(args.data_dir) if args.data_dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        size = "demo" if args.accounts == 0 else args.accounts
        if not (folder / "bench.db").exists():
            build_s = build(folder, args)
            print(json.dumps({"phase": "build", "accounts": size, "build_s": round(build_s, 1)}), flush=True)
        token, seekers = token_and_seekers(folder)
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = start_server(folder, args, port)
        try:
            ready_s = wait_ready(port, proc, folder, args.workers)
            print(json.dumps({"phase": "start", "accounts": size, "ready_s": round(ready_s, 1),
                              "server_peak_rss_mb": peak_rss_mb(proc.pid)}), flush=True)  # fmt: skip
            for kind in args.endpoints.split(","):
                if args.warmup > 0:
                    run_load(port, token, kind, seekers, args.clients, args.warmup, args.seed + 1)
                cpu, own = cpu_seconds(proc.pid), time.process_time()
                result = run_load(port, token, kind, seekers, args.clients, args.duration, args.seed)
                result["client_cpu_ms_per_request"] = round(
                    (time.process_time() - own) * 1000 / max(1, result["requests"]), 2
                )
                result["server_cpu_ms_per_request"] = round(
                    (cpu_seconds(proc.pid) - cpu) * 1000 / max(1, result["requests"]), 2
                )
                endpoint = ENDPOINTS[kind]
                line = {"phase": "load", "endpoint": endpoint, "accounts": size, "clients": args.clients}
                threads = args.compute_threads or max(1, (os.cpu_count() or 1) // args.workers)
                line.update(server_threads=args.threads, server_workers=args.workers, duration_s=args.duration)
                line.update(compute_threads=threads)
                line.update(result, server_peak_rss_mb=peak_rss_mb(proc.pid), server_pss_mb=pss_mb(proc.pid))
                print(json.dumps(line), flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
