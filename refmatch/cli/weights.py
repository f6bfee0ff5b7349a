"""refmatch weights: learn the match weights from past requests, see the fits, choose which are used."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from refmatch.cli.common import common

if TYPE_CHECKING:
    from refmatch.app.service import Service


@click.group()
def weights() -> None:
    """Match weights learned from outcomes: fit them, compare them, use them (or not)."""


@weights.command("fit")
@click.option("--test-share", type=float, default=0.3, show_default=True, help="Share of requests held out.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the held-out split.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@common
def weights_fit(service: Service, test_share: float, seed: int, fmt: str) -> None:
    """Learn the weights of the score's components from finished requests and judge them on held-out ones.

    Good: completed with a rating of 4-5 or a won deal. Bad: declined, cancelled, or completed
    with a rating of 1-2 or a lost deal. The fit is stored, not used: 'refmatch weights use ID'.
    """
    from refmatch.app import weights as learned

    report = learned.fit(service, test_share=test_share, seed=seed)
    click.echo(json.dumps(report.as_dict(), indent=2) if fmt == "json" else "\n".join(report.summary()))


@weights.command("list")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@common
def weights_list(service: Service, fmt: str) -> None:
    """The stored fits, newest first, and which one is in use."""
    from refmatch.app import weights as learned

    found = learned.fits(service)
    if fmt == "json":
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no weights fit yet: run 'refmatch weights fit'; the hand-set weights (the settings) are in use")
    for f in found:
        r = f["report"]
        mark = "in use" if f["in_use"] else "      "
        click.echo(
            f"{f['id']:>3}  {mark}  {f['created_at']}  held-out ROC AUC {r['auc_fitted']} (hand-set "
            f"{r['auc_hand_set']})  " + ", ".join(f"{k} {v:.3f}" for k, v in f["weights"].items())
        )


@weights.command("use")
@click.argument("which")
@common
def weights_use(service: Service, which: str) -> None:
    """Use fit WHICH (its id) for matching, or 'hand-set' for the weights in the settings."""
    from refmatch.app import weights as learned

    if which != "hand-set" and not which.isdigit():
        raise click.BadParameter(f"a fit's id (refmatch weights list) or 'hand-set', got {which!r}")
    click.echo(learned.use(service, None if which == "hand-set" else int(which)))
