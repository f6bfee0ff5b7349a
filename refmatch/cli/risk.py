"""``refmatch risk ...``: a click shell over ``refmatch.app.risk``.

Registered by ``refmatch.cli``.
"""

from __future__ import annotations

import csv
import io
import json
from typing import TYPE_CHECKING, Any

import click

from refmatch.cli.common import common, echo_matches
from refmatch.domain.vocabulary import RISK_LEVELS as LEVELS

if TYPE_CHECKING:
    from refmatch.app.service import Service

_AS_OF = click.option("--as-of", metavar="DATE", help="Score as of this date, YYYY-MM-DD [default: today].")
_CONFIG = click.option(
    "--config", "config_path", metavar="FILE", help="Risk rules TOML [default: risk.toml beside the database, if any]."
)


def _echo_matches(result: Any) -> None:
    echo_matches(result, "check consent, capacity, stage, products and risk")


@click.group("risk", invoke_without_command=True)
@_AS_OF
@click.option("--level", type=click.Choice(LEVELS), help="Lowest level shown [default: the at-risk level, medium].")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--limit", type=int, help="Show at most this many accounts.")
@_CONFIG
@common
def risk(
    service: Service, as_of: str | None, level: str | None, fmt: str, limit: int | None, config_path: str | None
) -> None:
    """Spot likely defectors: every account's risk score (0-100), level and reasons.

    Without a subcommand, lists the accounts at --level or above, riskiest first. The rules,
    their weights and thresholds are in a TOML file: see 'refmatch risk config'. Scores are
    stored after every import of accounts or signals, and by 'refmatch risk update'.
    """
    from refmatch.app import risk as risk_service

    if click.get_current_context().invoked_subcommand is not None:
        return
    listing = risk_service.risk_list(service, as_of=as_of, level=level, config_path=config_path, limit=limit)
    if fmt == "json":
        click.echo(json.dumps(listing.as_dict(), indent=2, ensure_ascii=False))
        return
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["external_id", "name", "stage", "score", "level", "at_risk_since", "troubles", "reasons"])
        for a in listing.accounts:
            reasons = "; ".join(r["text"] for r in a.reasons)
            row = [a.external_id, a.name, a.stage, f"{a.score:.0f}", a.level, a.at_risk_since or ""]
            writer.writerow([*row, "; ".join(a.troubles), reasons])
        click.echo(buf.getvalue(), nl=False)
        return
    counts = ", ".join(f"{listing.counts[name]} {name}" for name in reversed(LEVELS))
    click.echo(
        f"risk as of {listing.as_of} (rules: {listing.config}): {counts}; "
        f"{len(listing.accounts)} shown at {listing.level} or above"
    )
    for i, a in enumerate(listing.accounts, start=1):
        since = f", at risk since {a.at_risk_since}" if a.at_risk_since else ""
        click.echo(f"{i}. {a.name} ({a.external_id}, {a.stage})  score {a.score:.0f}  {a.level}{since}")
        for reason in a.reasons:
            click.echo(f"     - {reason['text']}")


@risk.command("update")
@_AS_OF
@click.option("--rebuild", is_flag=True, help="Forget the stored episodes and replay the whole signal history.")
@_CONFIG
@common
def risk_update(service: Service, as_of: str | None, rebuild: bool, config_path: str | None) -> None:
    """Store every account's score as of a date and record risk episodes up to it.

    An episode opens when an account reaches the at-risk level and ends when it drops
    below it (resolved) or churns. The first run replays the signal history; later runs
    go on from the last one. Run it nightly, before matching.
    """
    from refmatch.app import risk as risk_service

    click.echo(risk_service.update(service, as_of=as_of, rebuild=rebuild, config_path=config_path).summary())


@risk.command("show")
@click.argument("external_id")
@_AS_OF
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_CONFIG
@common
def risk_show(service: Service, external_id: str, as_of: str | None, fmt: str, config_path: str | None) -> None:
    """One account's risk: score, level, every rule's measured value, and its risk episodes."""
    from refmatch.app import risk as risk_service

    data = risk_service.account_risk(service, external_id, as_of=as_of, config_path=config_path)
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    at_risk = " (at risk)" if data["at_risk"] else ""
    click.echo(
        f"{data['name']} ({data['external_id']}, {data['stage']}) as of {data['as_of']}: "
        f"score {data['score']:.0f}, {data['level']}{at_risk}"
    )
    for rule in data["rules"]:
        mark = "x" if rule["fired"] else " "
        measure = "-" if rule["measure"] is None else rule["measure"]
        click.echo(f"  [{mark}] {rule['rule']:<20} {rule['points']:>5.0f} pts  measured {measure}")
    for reason in data["reasons"]:
        click.echo(f"     - {reason['text']}")
    for ep in data["episodes"]:
        end = f"{ep['outcome']} {ep['ended_on']}" if ep["ended_on"] else "open"
        click.echo(f"  episode {ep['entered_on']} .. {end}: peak {ep['peak_score']:.0f}; {', '.join(ep['troubles'])}")


@risk.command("episodes")
@click.argument("external_id", required=False)
@click.option("--outcome", type=click.Choice(["open", "resolved", "churned"]), help="Only episodes that ended so.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@common
def risk_episodes(service: Service, external_id: str | None, outcome: str | None, fmt: str) -> None:
    """List recorded risk episodes (of EXTERNAL_ID, or of every account), newest first."""
    from refmatch.app import risk as risk_service

    found = risk_service.episodes(service, external_id=external_id, outcome=outcome)
    if fmt == "json":
        click.echo(json.dumps(found, indent=2, ensure_ascii=False))
        return
    click.echo(f"{len(found)} episodes")
    for ep in found:
        end = f"{ep['outcome']} on {ep['ended_on']}" if ep["ended_on"] else "open"
        click.echo(
            f"{ep['entered_on']}  {ep['name']} ({ep['external_id']}): {end}; peak {ep['peak_score']:.0f} "
            f"{ep['peak_level']}; {', '.join(ep['troubles'])}"
        )


@risk.command("match")
@click.argument("external_id")
@click.option("--purpose", type=click.Choice(["retention", "mentor"]), default="retention", show_default=True)
@click.option("-k", type=int, default=None, help="How many matches [default 5].")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@common
def risk_match(service: Service, external_id: str, purpose: str, k: int | None, fmt: str) -> None:
    """Peers for EXTERNAL_ID with its risk: retention (who overcame the same troubles) or mentor."""
    from refmatch.app import risk as risk_service

    call = risk_service.retention_matches if purpose == "retention" else risk_service.mentor_matches
    found = call(service, external_id, k=k)
    if fmt == "json":
        click.echo(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
        return
    r = found.risk
    click.echo(f"{purpose} matches for {r.name} ({r.external_id}, {r.stage}): risk {r.score:.0f} {r.level}")
    if r.troubles:
        click.echo(f"troubles now: {', '.join(r.troubles)}")
    click.echo(f"{found.result.eligible} eligible advocates")
    _echo_matches(found.result)


@risk.command("fit")
@_AS_OF
@click.option("--horizon", type=int, default=90, show_default=True, help="Days after each cutoff a churn counts.")
@click.option("--test-share", type=float, default=0.3, show_default=True, help="Share of accounts held out.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the held-out split.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@_CONFIG
@common
def risk_fit(
    service: Service,
    as_of: str | None,
    horizon: int,
    test_share: float,
    seed: int,
    fmt: str,
    config_path: str | None,
) -> None:
    """Fit a logistic regression on the churn history and say whether it beats the rules.

    Snapshots every 30 days of history; each account's rule measures as of the cutoff,
    labelled by churn within --horizon days. Judged on held-out accounts. The rules stay
    the default either way; the report is saved for the UI.
    """
    from refmatch.app import risk as risk_service

    report = risk_service.fit(
        service, as_of=as_of, horizon_days=horizon, test_share=test_share, seed=seed, config_path=config_path
    )
    click.echo(json.dumps(report.as_dict(), indent=2) if fmt == "json" else report.table())


@risk.command("churn")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Validate and count only; write nothing.")
@common
def risk_churn(service: Service, file: str, dry_run: bool) -> None:
    """Import churn events from a CSV or JSON Lines FILE: account_external_id, churned_on, reason.

    Open risk episodes of those accounts end as churned, and 'refmatch risk fit' learns from them.
    """
    from refmatch.app import risk as risk_service

    click.echo(risk_service.import_churn(service, file, dry_run=dry_run).summary())


@risk.command("config")
@click.option("--init", "init", is_flag=True, help="Write the documented defaults to risk.toml beside the database.")
@click.option("--force", is_flag=True, help="With --init: overwrite an existing risk.toml.")
@_CONFIG
@common
def risk_config(service: Service, init: bool, force: bool, config_path: str | None) -> None:
    """Show the risk rules in force (or write the defaults to edit with --init)."""
    from refmatch.app import risk as risk_service

    if init:
        click.echo(f"wrote {risk_service.init_config(service, force=force)}: edit it; it applies to every risk command")
        return
    info = risk_service.config_info(service, config_path)
    levels = info["levels"]
    click.echo(f"rules from {info['source']}")
    click.echo(
        f"levels: medium from {levels['medium']:g}, high from {levels['high']:g}; at risk from {levels['at_risk']}"
    )
    for name, rule in info["rules"].items():
        params = ", ".join(f"{k}={v}" for k, v in rule.items() if k not in ("type", "points", "trouble"))
        click.echo(f"  {name:<20} {rule['points']:>5g} pts  {rule['type']}({params})  trouble: {rule['trouble']}")
