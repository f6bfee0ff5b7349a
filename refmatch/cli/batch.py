"""``refmatch batch`` and ``refmatch runs``: a thin click shell over ``refmatch.batch``."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from refmatch.cli.common import common, executor_from, executor_options, progress_bars
from refmatch.domain.vocabulary import PURPOSES

if TYPE_CHECKING:
    from refmatch.app.service import Service
    from refmatch.batch import RunInfo

_RUN_OPTIONS = ("purpose", "k", "as_of", "greedy", "objective", "per_advocate", "depth", "partition_size", "no_build")


def _bars(enabled: bool) -> Callable[[str, int], Callable[[int], None]] | None:
    """tqdm bars on stderr, counting seekers (or texts while embedding)."""
    if not enabled:
        return None
    return progress_bars(
        describe=lambda name: name, unit=lambda name: "text" if name.startswith("embedding") else "seeker"
    )


@click.command()
@click.option("--purpose", type=click.Choice([*PURPOSES, "all"]), default="all", show_default=True)
@click.option("-k", type=int, default=3, show_default=True, help="Matches per seeker.")
@click.option("--as-of", metavar="DATE", help="Match as on DATE (capacity quarter, blackouts) [default: today].")
@click.option("--out", metavar="FILE", help="Export to FILE.csv or FILE.jsonl; '{run_id}' in FILE becomes the run id.")
@click.option("--greedy", is_flag=True, help="Each seeker's k best, advocate capacity ignored (for comparison).")
@click.option(
    "--objective",
    type=click.Choice(["coverage", "score"]),
    default="coverage",
    show_default=True,
    help="coverage: every seeker a first match before any seeker a second, then the best total score; "
    "score: the best total score alone (it may leave seekers without a match to give others a third).",
)
@click.option("--per-advocate", type=int, metavar="N", help="At most N seekers per advocate in this run.")
@click.option("--depth", type=int, default=10, show_default=True, help="Candidates per seeker to assign from.")
@click.option("--partition-size", type=int, default=2000, show_default=True, help="Seekers per checkpoint.")
@click.option("--resume", "resume_id", type=int, metavar="RUN_ID", help="Finish an interrupted run, as it started.")
@click.option("--no-build", is_flag=True, help="Refuse stale indexes instead of bringing them up to date first.")
@executor_options
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or stage lines.")
@common
def batch(service: Service, resume_id: int | None, out: str | None, quiet: bool, **opts: Any) -> None:
    """Match every seeker of the chosen purposes and share advocates out under their capacity.

    Seekers: prospects with an open need or a profile (reference), accounts in onboarding
    (mentor), at-risk accounts (retention). Candidates are searched in batches, then
    assigned across the whole run so that no advocate gets more seekers than the
    capacity it has left (and --per-advocate): every seeker gets a first match before any
    seeker gets a second, and within that the total score is maximal (--objective). The run
    is stored (see 'refmatch runs') and checkpointed per partition: a run that stops
    part-way is finished with --resume RUN_ID, with the same result.
    """
    from refmatch.batch import Hooks

    hooks = Hooks(progress=_bars(not quiet), on_stage=None if quiet else lambda e: click.echo(e.line(), err=True))
    executor = executor_from(opts, service.settings.device)
    try:
        run = _run_or_resume(service, resume_id, out, hooks, executor, opts)
    finally:
        executor.close()
    _echo_run(run)


def _run_or_resume(service: Service, resume_id: int | None, out: str | None, hooks, executor, opts) -> RunInfo:  # noqa: ANN001
    from refmatch.batch import BatchParams, resume_batch, run_batch

    if resume_id is not None:
        ctx = click.get_current_context()
        given = [n for n in _RUN_OPTIONS if ctx.get_parameter_source(n) == ParameterSource.COMMANDLINE]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise click.UsageError(f"--resume takes the run's own parameters; drop {flag}")
        return resume_batch(service, resume_id, out=out, hooks=hooks, executor=executor)
    else:
        params = BatchParams.create(
            opts["purpose"],
            as_of=opts["as_of"],
            k=opts["k"],
            greedy=opts["greedy"],
            objective=opts["objective"],
            per_advocate=opts["per_advocate"],
            depth=opts["depth"],
            partition_size=opts["partition_size"],
            out=out,
        )
        return run_batch(service, params, build=not opts["no_build"], hooks=hooks, executor=executor)


def _echo_run(run: RunInfo) -> None:
    from refmatch.batch import (
        format_report,
    )

    p = run.params
    took = ""
    if run.finished_at:
        from datetime import datetime

        seconds = (datetime.fromisoformat(run.finished_at) - datetime.fromisoformat(run.started_at)).total_seconds()
        took = f", {seconds:.0f} s"
    click.echo(
        f"run {run.id}: {run.status} ({p.mode}; {', '.join(p.purposes)}; k {p.k}; as of {p.as_of}; "
        f"{run.seekers} seekers in {run.partitions} partitions{took})"
    )
    if run.error:
        click.echo(f"error: {run.error}")
    if run.report:
        for line in format_report(run.report):
            click.echo(line)
    if run.export_path:
        click.echo(f"exported to {run.export_path}")


@click.group()
def runs() -> None:
    """Batch runs: list them, show one, see what changed between two, export one."""


@runs.command("list")
@click.option("--limit", type=int, default=20, show_default=True, help="How many of the latest runs.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@common
def runs_list(service: Service, limit: int, fmt: str) -> None:
    """The latest runs, newest first."""
    from refmatch.batch import (
        list_runs,
    )

    found = list_runs(service.conn, limit)
    if fmt == "json":
        click.echo(json.dumps([r.as_dict() for r in found], indent=2, ensure_ascii=False))
        return
    if not found:
        click.echo("no batch runs yet: start one with 'refmatch batch'")
    for r in found:
        matches = r.report["matches"] if r.report else "-"
        click.echo(
            f"{r.id:>4}  {r.status:<7} {r.started_at}  {r.params.mode:<10} {','.join(r.params.purposes):<26} "
            f"k={r.params.k}  seekers {r.seekers}  matches {matches}"
        )


@runs.command("show")
@click.argument("run_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@common
def runs_show(service: Service, run_id: int, fmt: str) -> None:
    """One run: parameters, model and index versions, times, status and report."""
    from refmatch.batch import (
        get_run,
    )

    run = get_run(service.conn, run_id)
    if fmt == "json":
        click.echo(json.dumps(run.as_dict(), indent=2, ensure_ascii=False))
        return
    _echo_run(run)
    p = run.params
    click.echo(
        f"parameters: depth {p.depth}; per advocate {p.per_advocate or 'capacity left'}; "
        f"partition size {p.partition_size}"
    )
    versions = "; ".join(
        f"{n} built {v.get('built_at')} ({v.get('count')} vectors)" for n, v in run.index_versions.items()
    )
    click.echo(f"model {run.model}; data version {run.data_version}; {versions}")
    click.echo(
        f"started {run.started_at}; finished {run.finished_at or '-'}; stage {run.stage}; resumed {run.resumes}x"
    )


@runs.command("diff")
@click.argument("run_a", type=int)
@click.argument("run_b", type=int)
@click.option("--limit", type=int, default=50, show_default=True, help="How many changed seekers to list (table).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@common
def runs_diff(service: Service, run_a: int, run_b: int, limit: int, fmt: str) -> None:
    """What changed for whom from RUN_A to RUN_B (e.g. last night's run and tonight's)."""
    from refmatch.batch import (
        diff_runs,
    )

    diff = diff_runs(service.conn, run_a, run_b)
    if fmt == "json":
        click.echo(json.dumps(diff.as_dict(), indent=2, ensure_ascii=False))
        return
    c = diff.counts
    click.echo(
        f"run {run_a} -> run {run_b}: {c['changed']} changed, {c['reranked']} reranked, {c['new']} new, "
        f"{c['gone']} gone, {c['unchanged']} unchanged"
    )
    for change in diff.changes[:limit]:
        seeker = f"{change.purpose:<9} {change.seeker} ({change.name})"
        if change.status == "new":
            click.echo(f"new       {seeker}: {', '.join(change.after) or 'no match'}")
        elif change.status == "gone":
            click.echo(f"gone      {seeker}: was {', '.join(change.before) or 'no match'}")
        else:
            moves = " ".join([*(f"+{a}" for a in change.added), *(f"-{a}" for a in change.removed)])
            now = ", ".join(change.after) or "no match"
            click.echo(f"{change.status:<9} {seeker}: {moves + '; ' if moves else ''}now {now}")
    if len(diff.changes) > limit:
        click.echo(f"... and {len(diff.changes) - limit} more (--limit, or --format json for all)")


@runs.command("export")
@click.argument("run_id", type=int)
@click.argument("file", type=click.Path(dir_okay=False))
@common
def runs_export(service: Service, run_id: int, file: str) -> None:
    """Write a run's matches to FILE (.csv or .jsonl), atomically."""
    from refmatch.batch import (
        get_run,
        result_rows,
    )
    from refmatch.batch.exports import write_export

    get_run(service.conn, run_id)
    count = write_export(result_rows(service.conn, run_id), file)
    click.echo(f"exported {count} matches of run {run_id} to {file}")
