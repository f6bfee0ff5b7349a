"""The core commands: init, import, index build / status / verify, match, demo."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from refmatch.cli.common import (
    close_bars,
    common,
    echo_matches,
    executor_from,
    executor_options,
    orphaned_or,
    progress_bars,
)
from refmatch.domain.vocabulary import IMPORT_KINDS, PURPOSES, REFERENCE_TYPES

if TYPE_CHECKING:
    from refmatch.app.service import Service


@click.command()
@common
def init(service: Service) -> None:
    """Create (or migrate) the database."""
    service.init()
    click.echo(f"database ready: {service.settings.db_path}")


@click.command("import")
@click.argument("kind", type=click.Choice(IMPORT_KINDS))
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate and count only; write nothing.")
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows and write the rejects to a file.")
@click.option("--rejects", metavar="FILE", help="Where --skip-invalid writes rejected rows [FILE.rejects.csv].")
@click.option("--ignore-unknown", is_flag=True, help="Drop unknown columns instead of refusing the file.")
@click.option(
    "--map",
    "column_map",
    metavar="PRESET|FILE.toml",
    help="Read a CRM export: salesforce, hubspot, cs-health, or a TOML map of your own (see the README). "
    "Default: found from the header of a known export; 'none' never maps.",
)
@common
def import_(
    service: Service,
    kind: str,
    file: str,
    dry_run: bool,
    skip_invalid: bool,
    rejects: str | None,
    ignore_unknown: bool,
    column_map: str | None,
) -> None:
    """Import KIND (accounts, needs, advocates, signals) from a CSV, TSV, .xlsx or JSON Lines FILE.

    Rows are upserted by external id. A file with any invalid row is refused whole
    unless --skip-invalid is given. Headers match without regard to case, and a CSV's
    delimiter (, ; tab |) is found from its header line.
    """
    bars = progress_bars(sys.stderr.isatty(), describe=lambda name: name, unit=lambda _name: "B", scale=True)
    report = service.import_file(
        kind,
        file,
        dry_run=dry_run,
        skip_invalid=skip_invalid,
        rejects_path=rejects,
        ignore_unknown=ignore_unknown,
        column_map=column_map,
        progress=bars,
    )
    close_bars()
    click.echo(report.summary())
    if not dry_run and kind in ("accounts", "needs") and (report.inserted or report.updated):
        click.echo(
            "new text is matched once indexed: a running 'refmatch serve' indexes it in the background; "
            "otherwise run 'refmatch index build'",
            err=True,
        )


@click.group()
def index() -> None:
    """Build and check the FAISS indexes (account profiles and needs)."""


@index.command("build")
@click.option("--full", is_flag=True, help="Rebuild from scratch instead of updating incrementally.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@executor_options
@common
def index_build(service: Service, full: bool, quiet: bool, **opts: Any) -> None:
    """Embed new or changed text (cached by content hash) and update the indexes.

    With --executor ray the texts are embedded by a pool of Ray actors, each running its own
    copy of the model (on a GPU with --gpus-per-worker and REFMATCH_DEVICE=cuda); the cache
    and the indexes are written here.
    """
    pending = service.pending_embeddings()
    make_bar = progress_bars(not quiet)

    def factory(name: str, _total: int) -> Callable[[int], None]:
        return make_bar(name, pending.get(name, 0))

    executor = executor_from(opts, service.settings.device)
    try:
        with executor.embedding(service.encoder) as encoder:
            reports = service.build_indexes(full=full, progress=factory, encoder=encoder)
    finally:
        executor.close()
    for report in reports:
        how = "rebuilt" if report.rebuilt else "updated"
        click.echo(
            f"{report.name}: {how}, {report.total} vectors ({report.kind}); "
            f"{report.added} added, {report.removed} removed, {report.embedded} embedded"
        )


@index.command("status")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@common
def index_status(service: Service, fmt: str) -> None:
    """Say whether each index describes the database, and exactly what is stale. Exit 1 if stale."""
    statuses = service.index_status()
    if fmt == "json":
        click.echo(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        for s in statuses:
            click.echo(s.describe())
    if not all(s.fresh for s in statuses):
        sys.exit(1)


@index.command("watch")
@click.option(
    "--batch", default=2000, show_default=True, type=click.IntRange(1, 1_000_000), help="New texts per index per round."
)
@click.option(
    "--interval", default=2.0, show_default=True, type=click.FloatRange(0.1, 3600), help="Seconds between checks."
)
@click.option("--nice", default=0, show_default=True, type=click.IntRange(0, 19), help="Lower the CPU priority by N.")
@click.option(
    "--idle",
    is_flag=True,
    help="Run only on CPU time nothing else wants (Linux SCHED_IDLE): serving never waits for indexing; "
    "under constant full load indexing waits instead.",
)
@click.option("--threads", type=click.IntRange(1, 256), help="Compute threads for embedding [default: every core].")
@common
def index_watch(service: Service, batch: int, interval: float, nice: int, idle: bool, threads: int | None) -> None:
    """Keep the indexes up to date: embed new and changed text in rounds, saving after each, until stopped.

    'refmatch serve' runs this in a process of its own (and restarts it if it dies); run it
    yourself beside a server started with --no-indexer. Each saved round is served at once.
    Killed at any point, it loses at most the round in progress.
    """
    import signal

    from refmatch.app.indexer import watch
    from refmatch.app.runtime import limit_threads, run_below, set_env_threads

    lowered = run_below(nice, idle)  # before the model loads: its threads inherit the class
    if threads:
        set_env_threads(threads)  # for the libraries that load later (torch, with the model)
        limit_threads(threads)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    below = f", {' and '.join(lowered)}" if lowered else ""
    click.echo(f"indexer watching {service.settings.db_path} (batches of {batch}{below})", err=True)
    try:
        watch(
            service, batch=batch, interval=interval, stop=orphaned_or(stopping), log=lambda s: click.echo(s, err=True)
        )
    except KeyboardInterrupt:
        pass
    click.echo("indexer stopped", err=True)


@index.command("verify")
@common
def index_verify(service: Service) -> None:
    """Check every indexed vector against its text's cached embedding. Exit 1 on any problem."""
    problems = service.verify_indexes()
    for p in problems[:50]:
        click.echo(p)
    if problems:
        raise click.ClickException(f"{len(problems)} problem(s) found")
    click.echo("indexes verified: every vector matches its text")


@click.command()
@click.argument("external_id", required=False)
@click.option("--purpose", type=click.Choice(PURPOSES), default="reference", show_default=True)
@click.option("-k", type=int, default=None, help="How many matches [default 5].")
@click.option("--reference-type", type=click.Choice(REFERENCE_TYPES), help="Reference type asked for.")
@click.option("--product", help="The product the seeker needs a peer on.")
@click.option("--text", help="Ad-hoc seeker: a free-text description of the prospect.")
@click.option("--need", "needs", multiple=True, help="Ad-hoc seeker: an open need (repeatable).")
@click.option("--name", default="ad-hoc prospect", help="Ad-hoc seeker: a name for the output.")
@click.option("--industry", help="Ad-hoc seeker: industry.")
@click.option("--employees", type=int, help="Ad-hoc seeker: number of employees.")
@click.option("--country", help="Ad-hoc seeker: country.")
@click.option("--region", help="Ad-hoc seeker: region (EMEA, NA, APAC, LATAM...).")
@click.option("--products", help="Ad-hoc seeker: products, ';'-separated.")
@click.option("--stage", help="Ad-hoc seeker: journey stage [default: the first stage].")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse (exit 2) while text imported since the last 'index build' is not indexed, instead of "
    "answering from the indexes as built.",
)
@common
def match(service: Service, external_id: str | None, text: str | None, fmt: str, strict: bool, **opts: Any) -> None:
    """Propose advocates for EXTERNAL_ID, or for an ad-hoc prospect described with --text.

    Answers from the indexes as last built: accounts whose text changed since are not proposed
    until 'refmatch index build' (a note on stderr says how many texts wait); the seeker's own
    new text is embedded on the spot.
    """
    lag = service.index_lag()
    pending = sum(v.pending for v in lag.values())
    if strict and pending:
        from refmatch.domain.errors import StaleIndex

        described = "; ".join(v.describe(name) for name, v in lag.items() if v.pending)
        raise StaleIndex(f"the indexes are behind the database ({described}); run 'refmatch index build'")
    common_args = {k: opts[k] for k in ("purpose", "k", "reference_type", "product")}
    if external_id and text is not None:
        raise click.UsageError("give either EXTERNAL_ID or --text, not both")
    if external_id:
        result = service.match_account(external_id, **common_args)
    elif text is not None:
        products = [p.strip() for p in (opts["products"] or "").split(";") if p.strip()]
        result = service.match_text(
            text,
            needs=opts["needs"],
            name=opts["name"],
            industry=opts["industry"],
            employees=opts["employees"],
            country=opts["country"],
            region=opts["region"],
            products=products,
            stage=opts["stage"],
            **common_args,
        )
    else:
        raise click.UsageError("give an EXTERNAL_ID or --text (see refmatch match --help)")
    if pending:
        click.echo(
            f"note: {pending} texts changed since the last index build are not indexed yet; their accounts are "
            "not proposed until 'refmatch index build'",
            err=True,
        )
    if fmt == "json":
        click.echo(json.dumps(result.as_dict(), indent=2, ensure_ascii=False))
        return
    seeker = result.seeker
    click.echo(
        f"{result.purpose} matches for {seeker.name} ({seeker.external_id or 'ad hoc'}, {seeker.stage}); "
        f"{result.eligible} eligible advocates"
    )
    echo_matches(result)


@click.command()
@click.option(
    "--fresh",
    is_flag=True,
    help="Start afresh: empty the database (users, requests and runs too; its embedding cache is kept, so "
    "nothing is embedded again) and remove the index files.",
)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@common
def demo(service: Service, fresh: bool, quiet: bool) -> None:
    """Load the bundled demo dataset (Irish Top 1000 + generated journeys) and build the indexes."""
    if fresh:
        from refmatch.app.service import reset_files

        service.close()
        click.echo(reset_files(service.settings))
    make_bar = progress_bars(not quiet)
    pending: dict[str, int] = {}

    def factory(name: str, _total: int) -> Callable[[int], None]:
        if not pending:
            pending.update(service.pending_embeddings())
        return make_bar(name, pending.get(name, 0))

    from refmatch.app import demo as demo_data

    demo_data.load(service, progress=factory, echo=click.echo)
    from refmatch.app.users import DEMO_USERS, ensure_demo_users

    if created := ensure_demo_users(service):
        shown = ", ".join(f"{DEMO_USERS[name]}: {name} / {password}" for name, password in created.items())
        click.echo(f"demo users (role: username / password): {shown}")
    click.echo("demo ready. Try: refmatch match --help, or refmatch match <EXTERNAL_ID> from the accounts")
