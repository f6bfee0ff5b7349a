"""The batch job: match every seeker of every purpose, share advocates out under capacity,
store the run, export it, resume it when interrupted (see ``job``)."""

from refmatch.batch.exports import COLUMNS as EXPORT_COLUMNS
from refmatch.batch.exports import flat_rows as export_rows
from refmatch.batch.job import Hooks, StageEvent, resume_batch, run_batch
from refmatch.batch.lock import RunLocked
from refmatch.batch.params import BatchParams
from refmatch.batch.reports import format_report
from refmatch.batch.runs import RunDiff, RunInfo, diff_runs, get_run, list_runs, result_rows

__all__ = [
    "EXPORT_COLUMNS",
    "BatchParams",
    "Hooks",
    "RunDiff",
    "RunInfo",
    "RunLocked",
    "StageEvent",
    "diff_runs",
    "export_rows",
    "format_report",
    "get_run",
    "list_runs",
    "resume_batch",
    "result_rows",
    "run_batch",
]
