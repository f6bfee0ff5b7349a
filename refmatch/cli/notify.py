"""``refmatch notify ...`` and ``refmatch requests``: a click shell over ``refmatch.app.notify`` and the
workflow's lists.

Registered by ``refmatch.cli``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click

from refmatch.cli.common import common, orphaned_or

if TYPE_CHECKING:
    from refmatch.app.service import Service

EVENT_CHANNEL = "EVENT:CHANNEL"


@click.group("notify")
def notify() -> None:
    """Notifications: deliver the outbox, see what failed, retry it, set who hears what."""


@notify.command("send")
@common
def notify_send(service: Service) -> None:
    """Deliver every notification that is due now, once (for cron; 'serve' runs 'notify watch' by itself).

    Exit 1 when a delivery failed for good in this pass."""
    from refmatch.app.notify.deliver import deliver_due

    done = deliver_due(service)
    click.echo(done.line())
    for error in done.errors[:50]:
        click.echo(f"  {error}", err=True)
    if done.failed:
        raise SystemExit(1)


@notify.command("watch")
@click.option(
    "--interval", default=5.0, show_default=True, type=click.FloatRange(0.1, 3600), help="Seconds between passes."
)
@common
def notify_watch(service: Service, interval: float) -> None:
    """Deliver notifications as they fall due, with retries and back-off, until stopped.

    'refmatch serve' runs this in a process of its own (and restarts it if it dies); run it
    yourself beside a server started with --no-notifier. Killed at any point, nothing is lost:
    a delivery in flight is sent again after its lease ends (at least once).
    """
    import signal

    from refmatch.app.notify.deliver import watch

    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: stopping.append(signum))
    click.echo(f"notifier watching {service.settings.db_path}", err=True)
    try:
        watch(service, interval=interval, stop=orphaned_or(stopping), log=lambda s: click.echo(s, err=True))
    except KeyboardInterrupt:
        pass
    click.echo("notifier stopped", err=True)


@notify.command("status")
@click.option(
    "--status",
    "only",
    type=click.Choice(["pending", "sent", "failed"]),
    help="List the newest deliveries of this status (default: failed).",
)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@common
def notify_status(service: Service, only: str | None, limit: int, fmt: str) -> None:
    """Counts of pending, sent and failed deliveries by channel, and the newest failed ones."""
    from refmatch.app.notify.outbox import counts, deliveries

    totals, listed = counts(service), deliveries(service, only or "failed", limit)
    if fmt == "json":
        click.echo(json.dumps({"counts": totals, "deliveries": listed}, indent=2, ensure_ascii=False))
        return
    for status, by_channel in totals.items():
        detail = ", ".join(f"{c} {n}" for c, n in sorted(by_channel.items())) or "none"
        click.echo(f"{status:8} {sum(by_channel.values()):6}  ({detail})")
    if listed:
        click.echo(f"\nnewest {only or 'failed'}:")
    for d in listed:
        error = f"  {d['last_error']}" if d["last_error"] else ""
        click.echo(f"  #{d['id']} {d['event']} {d['channel']} to {d['recipient']}, {d['attempts']} attempt(s){error}")
    if totals["failed"] and not only:
        click.echo("\nretry them with 'refmatch notify retry --all' (or by id)")


@notify.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every failed delivery.")
@common
def notify_retry(service: Service, ids: tuple[int, ...], every: bool) -> None:
    """Send failed deliveries again (IDS, or --all), with a fresh count of attempts."""
    from refmatch.app.notify.outbox import retry

    if bool(ids) == every:
        raise click.UsageError("give delivery ids, or --all")
    n = retry(service, None if every else list(ids))
    click.echo(f"{n} deliver{'y' if n == 1 else 'ies'} queued again")


@notify.command("contact")
@click.argument("username")
@click.option("--email", help="The user's e-mail address ('' clears it).")
@click.option("--slack-id", help="The user's Slack member id, like U0123ABCD ('' clears it).")
@common
def notify_contact(service: Service, username: str, email: str | None, slack_id: str | None) -> None:
    """Where USERNAME is reached: an e-mail address and a Slack member id."""
    from refmatch.app.notify.prefs import set_contact

    shown = set_contact(service, username, email=email, slack_user_id=slack_id)
    click.echo(f"{shown['username']}: e-mail {shown['email'] or '-'}, Slack {shown['slack_user_id'] or '-'}")


@notify.command("mute")
@click.argument("username")
@click.argument("what", metavar=EVENT_CHANNEL, nargs=-1, required=True)
@click.option("--unmute", is_flag=True, help="Hear these again.")
@common
def notify_mute(service: Service, username: str, what: tuple[str, ...], unmute: bool) -> None:
    """Stop (or with --unmute, start again) telling USERNAME of an event on a channel.

    EVENT:CHANNEL, for example request.created:email or request.approved:slack."""
    from refmatch.app.notify.prefs import preferences, set_muted

    for item in what:
        event, _, channel = item.partition(":")
        set_muted(service, username, event.strip(), channel.strip(), not unmute)
    shown = preferences(service, username)
    for event, channels in shown["wanted"].items():
        click.echo(f"{event:18} {', '.join(channels) or 'muted'}")


@click.command("requests")
@click.option("--overdue", is_flag=True, help="Only requests still waiting past their due date, longest first.")
@click.option("--status", help="Only requests in this state.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 500))
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@common
def requests(service: Service, overdue: bool, status: str | None, limit: int, fmt: str) -> None:
    """Reference requests, newest first (--overdue: what is late)."""
    from refmatch.app import users
    from refmatch.app.requests import list_requests

    viewer = users.User(id=0, username="cli", role="admin")  # the operator at the console sees everything
    views, total = list_requests(service, viewer, status=status, overdue=overdue, limit=limit)
    if fmt == "json":
        click.echo(json.dumps({"total": total, "items": [v.as_dict() for v in views]}, indent=2, ensure_ascii=False))
        return
    if not views:
        click.echo("no overdue requests" if overdue else "no requests")
        return
    for v in views:
        late = " OVERDUE" if v.overdue else ""
        seeker = f" for {v.seeker['external_id']}" if v.seeker else ""
        click.echo(
            f"#{v.id:<5} {v.status:10} due {v.due_at or '-'}{late}  {v.advocate['external_id']}{seeker} "
            f"({v.purpose}, by {v.requested_by or '-'})"
        )
    if total > len(views):
        click.echo(f"... {total - len(views)} more (--limit)")
