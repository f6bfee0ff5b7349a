"""Imports started from the UI: an uploaded file imported in the background, with its progress on record.

An import is one transaction (nothing is written unless every row is), so its progress cannot be
kept in the database it is writing: each job is a small JSON file in ``<db>.imports/``, replaced
atomically as the import goes (phase, done, total, a heartbeat), and read by whichever server worker
is asked. The job runs on a thread of its own with a Service (and connection) of its own. A job whose
heartbeat stopped (the server died) is reported as interrupted: its transaction was rolled back.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from refmatch.app.risk import import_churn
from refmatch.app.service import IMPORT_ORDER, Service
from refmatch.config import Settings
from refmatch.domain import clock
from refmatch.domain.errors import InvalidInput, NotFound, RefmatchError

KINDS = (*IMPORT_ORDER, "churn")
SUFFIXES = (".csv", ".tsv", ".txt", ".xlsx", ".jsonl")
STALE_SECONDS = 30.0  # a running job whose heartbeat is older than this was interrupted
BEAT_SECONDS = 0.5  # at most one progress write per this many seconds
KEEP = 50  # the newest jobs kept on record
MAX_UPLOAD_BYTES = 1024**3  # the largest file the import form takes


@dataclass
class Job:
    id: str
    kind: str
    filename: str
    user: str
    started_at: str
    options: dict[str, Any] = field(default_factory=dict)
    status: str = "running"  # running | done | failed | interrupted
    phase: str = "queued"
    done: int = 0
    total: int = 0
    unit: str = ""
    beat: float = 0.0
    finished_at: str | None = None
    report: dict[str, Any] | None = None
    summary: str | None = None
    error: str | None = None
    details: list[dict[str, Any]] = field(default_factory=list)

    @property
    def percent(self) -> int | None:
        return min(100, int(100 * self.done / self.total)) if self.total else None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "percent": self.percent}


def folder(settings: Settings) -> Path:
    return Path(str(settings.db_path) + ".imports")


def _write(settings: Settings, job: Job) -> None:
    target = folder(settings) / f"{job.id}.json"
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{job.id}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(asdict(job), fh)
    os.replace(tmp, target)


def _read(path: Path) -> Job:
    job = Job(**json.loads(path.read_text(encoding="utf-8")))
    if job.status == "running" and time.time() - job.beat > STALE_SECONDS:
        job.status, job.error = "interrupted", "the server stopped during the import: nothing was written"
    return job


def get(settings: Settings, job_id: str) -> Job:
    path = folder(settings) / f"{job_id}.json"
    if not job_id.isalnum() or not path.is_file():
        raise NotFound(f"no import {job_id!r}")
    return _read(path)


def recent(settings: Settings, limit: int = 10) -> list[Job]:
    """The newest jobs first."""
    if not folder(settings).is_dir():
        return []
    paths = sorted(folder(settings).glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in paths[KEEP:]:
        with contextlib.suppress(OSError):
            old.unlink()
    return [_read(p) for p in paths[:limit]]


def check(kind: str, filename: str) -> None:
    problems = []
    if kind not in KINDS:
        problems.append({"field": "kind", "message": f"must be one of {', '.join(KINDS)}, got {kind!r}"})
    if not filename:
        problems.append({"field": "file", "message": "choose a file to import"})
    elif not filename.lower().endswith(SUFFIXES):
        problems.append({"field": "file", "message": f"must be a {', '.join(SUFFIXES)} file, got {filename!r}"})
    if problems:
        raise InvalidInput("; ".join(f"{p['field']}: {p['message']}" for p in problems), details=problems)


def start(
    settings: Settings,
    *,
    kind: str,
    filename: str,
    save: Callable[[Path], None],
    user: str,
    column_map: str | None = None,
    dry_run: bool = False,
    skip_invalid: bool = False,
    ignore_unknown: bool = False,
) -> Job:
    """Save the upload (``save(path)``) and import it on a thread; the job, to follow with ``get``."""
    check(kind, filename)
    folder(settings).mkdir(parents=True, exist_ok=True)
    job_id = uuid.uuid4().hex[:12]
    upload = folder(settings) / f".{job_id}{Path(filename).suffix.lower()}"
    save(upload)
    options = {"column_map": column_map, "dry_run": dry_run, "skip_invalid": skip_invalid,
               "ignore_unknown": ignore_unknown}  # fmt: skip
    job = Job(job_id, kind, Path(filename).name, user, clock.now().isoformat(timespec="seconds"), options)
    job.beat = time.time()
    _write(settings, job)
    threading.Thread(target=_run, args=(settings, job, upload), name=f"import-{job_id}", daemon=True).start()
    return job


def _run(settings: Settings, job: Job, upload: Path) -> None:
    service = Service(settings)  # its own connection: the web worker's stays free for requests
    lock = threading.Lock()

    def factory(phase: str, total: int) -> Callable[[int], None]:
        with lock:
            job.phase, job.total, job.done = phase, total, 0
            job.unit = "bytes" if phase.startswith("read") else "rows"
            job.beat = time.time()
            _write(settings, job)

        def advance(n: int) -> None:
            with lock:
                job.done += n
                now = time.time()
                if now - job.beat >= BEAT_SECONDS:
                    job.beat = now
                    _write(settings, job)

        return advance

    beating = threading.Event()

    def heartbeat() -> None:  # a long step that reports no progress (the risk replay) still beats
        while not beating.wait(STALE_SECONDS / 3):
            with lock:
                job.beat = time.time()
                _write(settings, job)

    threading.Thread(target=heartbeat, name=f"import-{job.id}-beat", daemon=True).start()
    try:
        if job.kind == "churn":
            report = import_churn(service, upload, dry_run=job.options["dry_run"])
        else:
            report = service.import_file(job.kind, upload, rejects_path=None, progress=factory, **job.options)
        report.file = job.filename
        job.status, job.report, job.summary = "done", asdict(report), report.summary()
    except RefmatchError as exc:
        message = exc.message.replace(str(upload), job.filename)
        details = [{k: d.get(k) for k in ("row", "column", "message")} for d in exc.details[:200]]
        job.status, job.error, job.details = "failed", message, details
    except Exception as exc:  # noqa: BLE001 - reported on the job's page, never a traceback there
        job.status, job.error = "failed", f"the import failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        beating.set()
        with lock:
            job.phase, job.finished_at, job.beat = "finished", clock.now().isoformat(timespec="seconds"), time.time()
            _write(settings, job)
        service.close()
        with contextlib.suppress(OSError):
            upload.unlink()
        for rejects in upload.parent.glob(upload.name + ".rejects.csv"):
            with contextlib.suppress(OSError):
                rejects.unlink()
