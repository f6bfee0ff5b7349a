"""Notifications as rows of a durable outbox, written in the transaction of the change that causes them.

A workflow change (a request made, approved, declined, scheduled, completed; a request
past its due date) calls ``enqueue`` with its own connection, inside its own
transaction: the messages exist exactly when the change does. ``refmatch.app.notify.deliver``
sends them later, outside any request, with retries.

Who hears of what:

- ``request.created``: reference managers (and admins), and the advocate's account owner;
- ``request.approved`` / ``declined`` / ``scheduled`` / ``completed``: the requester;
- ``request.overdue``: reference managers;
- every event, to the webhook and to the Slack channel of the incoming webhook, when set.

A person is reached by e-mail (their address; SMTP configured) and by Slack direct message
(their Slack member id; a bot token configured), unless they muted that event on that
channel. Nobody is told of their own action. An account owner who is not a user (the
``owner`` column holds an e-mail address) is e-mailed, with no preferences to honour.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from refmatch.app.service import Service
from refmatch.config import Settings
from refmatch.domain import clock
from refmatch.domain.errors import InvalidInput, NotFound
from refmatch.domain.limits import is_row_id
from refmatch.importing import is_email
from refmatch.store import transaction

CHANNELS = ("email", "slack", "webhook")
PERSONAL_CHANNELS = ("email", "slack")  # the ones a user may mute
EVENTS = (
    "request.created",
    "request.approved",
    "request.declined",
    "request.scheduled",
    "request.completed",
    "request.cancelled",
    "request.overdue",
)
TO_REQUESTER = {"request.approved", "request.declined", "request.scheduled", "request.completed"}
TO_MANAGERS = {"request.created", "request.overdue"}
LEASE = timedelta(minutes=2)  # a claimed row not marked by then is claimed again (its worker died)
MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True)
class Person:
    user_id: int | None
    username: str | None
    email: str | None
    slack_user_id: str | None


def _stamp(moment: datetime) -> str:
    return moment.isoformat()


def _request_facts(conn: sqlite3.Connection, request_id: int) -> dict[str, Any]:
    row = conn.execute(
        "SELECT r.id, r.status, r.purpose, r.reference_type, r.requested_by, r.requested_by_user_id, r.note, "
        "r.due_at, r.scheduled_for, a.external_id, a.name, a.owner, s.external_id, s.name, r.rating, "
        "r.deal_outcome, r.influenced_arr "
        "FROM reference_requests r JOIN accounts a ON a.id = r.advocate_account_id "
        "LEFT JOIN accounts s ON s.id = r.seeker_account_id WHERE r.id = ?",
        (request_id,),
    ).fetchone()
    if row is None:
        raise NotFound(f"unknown reference request: {request_id}")
    keys = ("id", "status", "purpose", "reference_type", "requested_by", "requested_by_user_id", "note", "due_at",
            "scheduled_for", "advocate_external_id", "advocate_name", "advocate_owner", "seeker_external_id",
            "seeker_name", "rating", "deal_outcome", "influenced_arr")  # fmt: skip
    return dict(zip(keys, row))


def _people(conn: sqlite3.Connection, where: str, args: tuple[Any, ...]) -> list[Person]:
    rows = conn.execute(
        f"SELECT id, username, email, slack_user_id FROM users WHERE disabled_at IS NULL AND ({where}) ORDER BY id",
        args,
    ).fetchall()
    return [Person(*r) for r in rows]


def _recipients(conn: sqlite3.Connection, event: str, facts: dict[str, Any], actor: str | None) -> list[Person]:
    people: list[Person] = []
    if event in TO_MANAGERS:
        people += _people(conn, "role IN ('reference_manager', 'admin')", ())
    if event == "request.created" and facts["advocate_owner"]:
        owner = facts["advocate_owner"].strip()
        as_user = _people(conn, "email = ? COLLATE NOCASE OR username = ? COLLATE NOCASE", (owner, owner))
        if as_user:
            people += as_user
        elif is_email(owner):
            people.append(Person(None, None, owner, None))
    if event in TO_REQUESTER and facts["requested_by_user_id"] is not None:
        people += _people(conn, "id = ?", (facts["requested_by_user_id"],))
    seen: set[tuple[int | None, str | None]] = set()
    unique = []
    for p in people:
        key = (p.user_id, p.email if p.user_id is None else None)
        if key in seen or (actor is not None and p.username is not None and p.username.lower() == actor.lower()):
            continue
        seen.add(key)
        unique.append(p)
    return unique


def _muted(conn: sqlite3.Connection, user_id: int | None, event: str, channel: str) -> bool:
    if user_id is None:
        return False
    row = conn.execute(
        "SELECT 1 FROM notify_muted WHERE user_id = ? AND event = ? AND channel = ?", (user_id, event, channel)
    ).fetchone()
    return row is not None


def message(event: str, facts: dict[str, Any], actor: str | None, settings: Settings) -> tuple[str, str]:
    """The subject and plain-text body of an event's notification."""
    who = f"{facts['advocate_name']} ({facts['advocate_external_id']})"
    seeker = f" for {facts['seeker_name']} ({facts['seeker_external_id']})" if facts["seeker_external_id"] else ""
    kind = facts["reference_type"] or "reference"
    n = facts["id"]
    subjects = {
        "request.created": f"Reference request #{n}: {facts['requested_by'] or 'someone'} asks {who} for a {kind}",
        "request.approved": f"Reference request #{n} approved: {who}",
        "request.declined": f"Reference request #{n} declined: {who}",
        "request.scheduled": f"Reference request #{n} scheduled: {who}",
        "request.completed": f"Reference request #{n} completed: {who}",
        "request.cancelled": f"Reference request #{n} cancelled: {who}",
        "request.overdue": f"Reference request #{n} is overdue: {who}, {facts['status']}, due {facts['due_at']}",
    }
    lines = [subjects[event] + seeker + "."]
    if actor:
        lines.append(f"By: {actor}")
    lines.append(f"Purpose: {facts['purpose']}; status: {facts['status']}; due: {facts['due_at'] or '-'}")
    if facts["scheduled_for"]:
        lines.append(f"Scheduled for: {facts['scheduled_for']}")
    if facts["note"]:
        lines.append(f"Note: {facts['note']}")
    if event == "request.completed":
        outcome = [f"{k.replace('_', ' ')}: {facts[k]}" for k in ("rating", "deal_outcome", "influenced_arr")
                   if facts[k] is not None]  # fmt: skip
        if outcome:
            lines.append("Outcome: " + "; ".join(outcome))
    lines.append(f"Open it: {settings.public_url.rstrip('/')}/requests/{n}")
    return subjects[event] + seeker, "\n".join(lines)


def enqueue(
    service: Service, conn: sqlite3.Connection, event: str, request_id: int, actor: str | None, moment: datetime
) -> int:
    """Write the messages ``event`` on request ``request_id`` causes, on ``conn`` (the caller's open
    transaction: they commit or roll back with the change). How many rows were written."""
    if event not in EVENTS:
        raise ValueError(f"unknown notification event {event!r}")
    settings = service.settings
    facts = _request_facts(conn, request_id)
    subject, body = message(event, facts, actor, settings)
    stamp = _stamp(moment)
    shown = {k: v for k, v in facts.items() if k != "advocate_owner"}
    link = f"{settings.public_url.rstrip('/')}/requests/{request_id}"
    payload = json.dumps(
        {"type": event, "timestamp": stamp, "data": {"request": shown, "actor": actor, "url": link}}, sort_keys=True
    )
    rows: list[tuple[str, str]] = []
    for person in _recipients(conn, event, facts, actor):
        if settings.smtp_host and person.email and not _muted(conn, person.user_id, event, "email"):
            rows.append(("email", person.email))
        if settings.slack_bot_token and person.slack_user_id and not _muted(conn, person.user_id, event, "slack"):
            rows.append(("slack", person.slack_user_id))
    if settings.webhook_url:
        rows.append(("webhook", settings.webhook_url))
    if settings.slack_webhook_url:
        rows.append(("slack", settings.slack_webhook_url))
    conn.executemany(
        "INSERT INTO outbox (event, request_id, channel, recipient, subject, body, payload, next_attempt_at, "
        "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [(event, request_id, channel, to, subject, body, payload, stamp, stamp) for channel, to in rows],
    )
    return len(rows)


def slack_url_allowed(settings: Settings, url: str) -> bool:
    """A Slack response URL we may post to: Slack's own, or the configured Slack API's host (a local one in tests)."""
    from urllib.parse import urlsplit

    api = urlsplit(settings.slack_api_url)
    there = urlsplit(url)
    return url.startswith("https://hooks.slack.com/") or (there.scheme, there.netloc) == (api.scheme, api.netloc)


def enqueue_reply(service: Service, response_url: str, text: str, moment: datetime) -> bool:
    """A reply to a Slack interaction, through its response_url, as one outbox row; False if the URL is not Slack's."""
    if not slack_url_allowed(service.settings, response_url):
        return False
    stamp = _stamp(moment)
    with transaction(service.db, bump=False) as conn:
        conn.execute(
            "INSERT INTO outbox (event, channel, recipient, subject, body, payload, next_attempt_at, created_at) "
            "VALUES ('slack.reply', 'slack', ?, ?, ?, '{}', ?, ?)",
            (response_url, text[:150], text, stamp, stamp),
        )
    return True


# -- the delivery side's bookkeeping --------------------------------------------------------
@dataclass(frozen=True)
class Delivery:
    id: int
    event: str
    channel: str
    recipient: str
    subject: str
    body: str
    payload: str
    attempts: int
    created_at: str


def claim_due(service: Service, now: datetime, limit: int = 50) -> list[Delivery]:
    """Pending rows whose time has come and that nobody holds, leased to the caller for ``LEASE``."""
    stamp, until = _stamp(now), _stamp(now + LEASE)
    with transaction(service.db, bump=False) as conn:
        rows = conn.execute(
            "SELECT id, event, channel, recipient, subject, body, payload, attempts, created_at FROM outbox "
            "WHERE status = 'pending' AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?) "
            "ORDER BY next_attempt_at, id LIMIT ?",
            (stamp, stamp, limit),
        ).fetchall()
        conn.executemany("UPDATE outbox SET claimed_until = ? WHERE id = ?", [(until, r[0]) for r in rows])
    return [Delivery(*r) for r in rows]


def backoff(settings: Settings, attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed attempt: the retry delay, doubled each time, at most an hour."""
    return min(MAX_BACKOFF, timedelta(seconds=settings.notify_retry_seconds * 2 ** max(0, attempts - 1)))


def mark_sent(service: Service, delivery_id: int, now: datetime) -> None:
    with transaction(service.db, bump=False) as conn:
        conn.execute(
            "UPDATE outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, claimed_until = NULL, "
            "last_error = NULL WHERE id = ?",
            (_stamp(now), delivery_id),
        )


def mark_failed_attempt(service: Service, delivery_id: int, error: str, now: datetime) -> str:
    """Record a failed attempt: the next one after the back-off, or 'failed' after the last. The new status."""
    settings = service.settings
    with transaction(service.db, bump=False) as conn:
        row = conn.execute("SELECT attempts FROM outbox WHERE id = ?", (delivery_id,)).fetchone()
        if row is None:
            return "gone"
        attempts = row[0] + 1
        status = "failed" if attempts >= settings.notify_max_attempts else "pending"
        conn.execute(
            "UPDATE outbox SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ?, claimed_until = NULL "
            "WHERE id = ?",
            (status, attempts, error[:2000], _stamp(now + backoff(settings, attempts)), delivery_id),
        )
    return status


def retry(service: Service, ids: list[int] | None = None, *, now: datetime | None = None) -> int:
    """Failed deliveries (all of them, or these ids) tried again at once, with a fresh count. How many."""
    stamp = _stamp(now or clock.now())
    if ids is not None:
        bad = [i for i in ids if not is_row_id(i)]
        if bad:
            raise InvalidInput(f"id: not a delivery id: {bad[0]!r}")
    with transaction(service.db, bump=False) as conn:
        where, args = "status = 'failed'", tuple[int, ...]()
        if ids is not None:
            found = {r[0] for r in conn.execute(
                f"SELECT id FROM outbox WHERE id IN ({','.join('?' * len(ids))})", ids)}  # fmt: skip
            missing = [i for i in ids if i not in found]
            if missing:
                raise NotFound(f"unknown delivery: {missing[0]}")
            where, args = f"id IN ({','.join('?' * len(ids))}) AND status = 'failed'", tuple(ids)
        cur = conn.execute(
            f"UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = ?, claimed_until = NULL "
            f"WHERE {where}",
            (stamp, *args),
        )
        return cur.rowcount


def counts(service: Service) -> dict[str, dict[str, int]]:
    """{status: {channel: n}} over the whole outbox."""
    out: dict[str, dict[str, int]] = {s: {} for s in ("pending", "sent", "failed")}
    for status, channel, n in service.conn.execute(
        "SELECT status, channel, COUNT(*) FROM outbox GROUP BY status, channel"
    ):
        out[status][channel] = n
    return out


def deliveries(service: Service, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """The newest deliveries (of one status), newest first, as plain dicts."""
    if status is not None and status not in ("pending", "sent", "failed"):
        raise InvalidInput(f"status: must be pending, sent or failed, got {status!r}")
    where, args = ("WHERE status = ?", (status,)) if status else ("", ())
    rows = service.conn.execute(
        "SELECT id, event, request_id, channel, recipient, subject, status, attempts, next_attempt_at, last_error, "
        f"created_at, sent_at FROM outbox {where} ORDER BY id DESC LIMIT ?",
        (*args, limit),
    ).fetchall()
    keys = ("id", "event", "request_id", "channel", "recipient", "subject", "status", "attempts",
            "next_attempt_at", "last_error", "created_at", "sent_at")  # fmt: skip
    return [dict(zip(keys, r)) for r in rows]
