#!/usr/bin/env python3
"""Nightly batch matching, for cron: a log line per stage, meaningful exit codes, never two runs at once.

    # crontab: every night at 02:00, one export file per run, the log appended
    0 2 * * *  cd /srv/refmatch && .venv/bin/python scripts/nightly_batch.py --resume-incomplete \\
               --out 'exports/matches-{run_id}.csv' >> logs/nightly.log 2>&1

Exit codes: 0 the run is done; 1 it failed (finish it with --resume RUN_ID, or let
--resume-incomplete do so next time); 2 bad arguments, configuration or stale indexes
with --no-build; 75 another run holds the lock (EX_TEMPFAIL: try again later).

--resume-incomplete finishes the latest run that did not complete when the data it
started on is unchanged, and starts a new run otherwise.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refmatch.app.service import Service  # noqa: E402
from refmatch.batch import (  # noqa: E402
    BatchParams,
    Hooks,
    RunLocked,
    format_report,
    list_runs,
    resume_batch,
    run_batch,
)
from refmatch.config import load_settings  # noqa: E402
from refmatch.domain.errors import Conflict, RefmatchError  # noqa: E402

EX_TEMPFAIL = 75
log = logging.getLogger("refmatch.nightly")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", help="SQLite database [env REFMATCH_DB]")
    parser.add_argument("--index-dir", help="index directory [env REFMATCH_INDEX_DIR]")
    parser.add_argument("--model", help="embedding model [env REFMATCH_MODEL]")
    parser.add_argument("--purpose", default="all", help="reference, mentor, retention or all [all]")
    parser.add_argument("-k", type=int, default=3, help="matches per seeker [3]")
    parser.add_argument("--as-of", help="match as on this date, YYYY-MM-DD [today]")
    parser.add_argument("--out", help="export file, .csv or .jsonl; {run_id} becomes the run id")
    parser.add_argument("--greedy", action="store_true", help="each seeker's k best, capacity ignored")
    parser.add_argument(
        "--objective",
        choices=["coverage", "score"],
        default="coverage",
        help="coverage: a first match for every seeker before a second for any [coverage]",
    )
    parser.add_argument("--per-advocate", type=int, help="at most N seekers per advocate in one run")
    parser.add_argument("--depth", type=int, default=10, help="candidates per seeker to assign from [10]")
    parser.add_argument("--partition-size", type=int, default=2000, help="seekers per checkpoint [2000]")
    parser.add_argument("--no-build", action="store_true", help="refuse stale indexes instead of updating them")
    parser.add_argument("--resume", type=int, metavar="RUN_ID", help="finish this interrupted run")
    parser.add_argument("--resume-incomplete", action="store_true", help="finish the latest incomplete run if it can")
    parser.add_argument("--progress", action="store_true", help="progress bars on stderr (off for cron)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    progress = None
    if args.progress:
        from tqdm import tqdm

        def progress(name, total):
            return tqdm(total=total or None, desc=name, leave=False).update

    hooks = Hooks(progress=progress, on_stage=lambda event: log.info(event.line()))
    try:
        settings = load_settings({"db": args.db, "index_dir": args.index_dir, "model": args.model})
        service = Service(settings)
        try:
            run = _run(service, args, hooks)
        finally:
            service.close()
    except RunLocked as exc:
        log.warning("%s", exc.message)
        return EX_TEMPFAIL
    except RefmatchError as exc:
        log.error("%s", exc.message)
        return exc.exit_code
    except Exception:
        log.exception("the batch run failed; finish it with --resume RUN_ID (see 'refmatch runs list')")
        return 1
    for line in format_report(run.report) if run.report else ():
        log.info("run %s: %s", run.id, line)
    log.info("run %s: done%s", run.id, f"; exported to {run.export_path}" if run.export_path else "")
    return 0


def _run(service: Service, args: argparse.Namespace, hooks: Hooks):
    if args.resume is not None:
        log.info("resuming run %s", args.resume)
        return resume_batch(service, args.resume, out=args.out, hooks=hooks)
    if args.resume_incomplete:
        latest = next(iter(list_runs(service.conn, 1)), None)
        if latest is not None and latest.status != "done":
            try:
                log.info("resuming run %s (stopped in %s)", latest.id, latest.stage)
                return resume_batch(service, latest.id, hooks=hooks)
            except RunLocked:
                raise
            except Conflict as exc:
                log.warning("%s", exc.message)
    params = BatchParams.create(
        args.purpose,
        as_of=args.as_of,
        k=args.k,
        greedy=args.greedy,
        objective=args.objective,
        per_advocate=args.per_advocate,
        depth=args.depth,
        partition_size=args.partition_size,
        out=args.out,
    )
    log.info("starting a run: %s; %s; k %s; as of %s", params.mode, ", ".join(params.purposes), params.k, params.as_of)
    return run_batch(service, params, build=not args.no_build, hooks=hooks)


if __name__ == "__main__":
    sys.exit(main())
