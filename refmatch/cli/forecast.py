"""refmatch forecast: which segments run out of references, and when."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from refmatch.cli.common import common

if TYPE_CHECKING:
    from refmatch.app.service import Service


@click.command()
@click.option(
    "--by", default="industry,product,region", show_default=True,
    help="Segments: a comma-separated choice of industry, product, region.",
)  # fmt: skip
@click.option("--quarters", type=int, default=4, show_default=True, help="Quarters ahead, the current one first.")
@click.option("--lookback", type=int, default=4, show_default=True, help="Past quarters the run rate is taken over.")
@click.option(
    "--pipeline-quarters", type=int, default=2, show_default=True,
    help="Quarters over which the open prospects' references are expected.",
)  # fmt: skip
@click.option("--as-of", metavar="DATE", help="Forecast as of this date, YYYY-MM-DD [default: today].")
@click.option("--all", "show_all", is_flag=True, help="List every segment with demand, not only those that run dry.")
@click.option(
    "--recruits", is_flag=True,
    help="List who to recruit instead: healthy promoters not yet consenting, by the shortfall they would cover.",
)  # fmt: skip
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@common
def forecast(
    service: Service, by: str, quarters: int, lookback: int, pipeline_quarters: int, as_of: str | None,
    show_all: bool, recruits: bool, fmt: str,
) -> None:  # fmt: skip
    """Reference demand (open pipeline, past request rate) against the slots advocates have left, per segment:
    the quarter each segment runs dry in and its shortfall. Soonest and largest first."""
    from refmatch.app import tables
    from refmatch.app.forecast import forecast as compute

    options: dict[str, Any] = {
        "by": by, "quarters": quarters, "lookback": lookback, "pipeline_quarters": pipeline_quarters, "today": as_of,
    }  # fmt: skip
    if fmt == "csv":
        t = (tables.recruits if recruits else tables.forecast)(service, **options)
        click.echo(tables.encode(t, "csv").decode("utf-8"), nl=False)
        return
    f = compute(service, **options)
    if recruits:
        _echo_recruits(service, f, show_all, fmt)
        return
    if fmt == "json":
        click.echo(json.dumps(f.as_dict(), indent=2))
        return
    dry = f.running_dry()
    click.echo(
        f"forecast as of {f.as_of} by {', '.join(f.by)}: {len(f.segments)} segments with demand, {len(dry)} run dry "
        f"within {len(f.quarters)} quarters ({f.quarters[0]} to {f.quarters[-1]}); {f.per_prospect} references per "
        f"prospect, run rate over {f.lookback} quarters"
    )
    shown = f.segments if show_all else dry
    if not shown:
        click.echo("no segment runs dry" if not show_all else "no segment has any demand")
        return
    width = max(len(s.name) for s in shown)
    click.echo(
        f"{'segment':<{width}}  runs dry  shortfall  prospects  advocates  " + "  ".join(f"{q:<8}" for q in f.quarters)
    )
    for s in shown:
        cells = "  ".join(f"{q.demand:>4.1f}/{q.capacity:<3}" for q in s.quarters)
        click.echo(
            f"{s.name:<{width}}  {s.dry or '-':<8}  {s.shortfall:>9.1f}  {s.prospects:>9}  {s.advocates:>9}  {cells}"
        )
    click.echo("(each quarter: demand/capacity)")


def _echo_recruits(service: Service, f: Any, show_all: bool, fmt: str) -> None:
    from dataclasses import asdict

    from refmatch.app.forecast import recruits

    found = recruits(service, f)
    if fmt == "json":
        click.echo(json.dumps([asdict(r) for r in found], indent=2))
        return
    helping = [r for r in found if r.covers > 0]
    click.echo(
        f"recruits as of {f.as_of}: {len(found)} healthy promoters not yet consenting, {len(helping)} of them in "
        f"segments that run dry by {f.quarters[-1]}"
    )
    for r in found if show_all else helping:
        nps = "?" if r.nps is None else f"{r.nps:.0f}"
        click.echo(
            f"{r.external_id:<28} covers {r.covers:>5.1f}  NPS {nps:>2}  health {r.health:>3.0f}  {r.status:<14}  "
            + "; ".join(r.segments)
        )
