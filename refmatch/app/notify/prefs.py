"""Where each user is reached (an e-mail address, a Slack member id) and what they muted.

Bookkeeping: none of it is read by matching, so changes do not bump data_version.
"""

from __future__ import annotations

import re
from typing import Any

from refmatch.app.notify.outbox import EVENTS, PERSONAL_CHANNELS
from refmatch.app.requests.states import raise_if
from refmatch.app.service import Service
from refmatch.app.users import User, get_user_by_name
from refmatch.domain.errors import NotFound
from refmatch.importing import is_email
from refmatch.store import transaction

_SLACK_MEMBER = re.compile(r"^[UW][A-Z0-9]{2,20}$")


def _require(service: Service, username: str) -> User:
    user = get_user_by_name(service, username)
    if user is None:
        raise NotFound(f"unknown user: {username!r}")
    return user


def set_contact(
    service: Service, username: str, *, email: str | None = None, slack_user_id: str | None = None
) -> dict[str, Any]:
    """Set (a value) or clear ("") a user's e-mail address and Slack member id; None leaves one as it is."""
    user = _require(service, username)
    problems = []
    if email and not is_email(email.strip()):
        problems.append({"field": "email", "message": f"not an e-mail address: {email!r}"})
    if slack_user_id and not _SLACK_MEMBER.match(slack_user_id.strip()):
        problems.append(
            {"field": "slack_user_id", "message": f"not a Slack member id (like U0123ABCD): {slack_user_id!r}"}
        )
    if problems:
        raise_if(problems)
    with transaction(service.db, bump=False) as conn:
        if email is not None:
            conn.execute("UPDATE users SET email = ? WHERE id = ?", (email.strip() or None, user.id))
        if slack_user_id is not None:
            conn.execute("UPDATE users SET slack_user_id = ? WHERE id = ?", (slack_user_id.strip() or None, user.id))
    return preferences(service, username)


def _check(event: str, channel: str) -> None:
    problems = []
    if event not in EVENTS:
        problems.append({"field": "event", "message": f"must be one of {', '.join(EVENTS)}, got {event!r}"})
    if channel not in PERSONAL_CHANNELS:
        problems.append(
            {"field": "channel", "message": f"must be one of {', '.join(PERSONAL_CHANNELS)}, got {channel!r}"}
        )
    if problems:
        raise_if(problems)


def set_muted(service: Service, username: str, event: str, channel: str, muted: bool) -> dict[str, Any]:
    """Mute (or unmute) one event on one channel for a user; the user's preferences after."""
    _check(event, channel)
    user = _require(service, username)
    with transaction(service.db, bump=False) as conn:
        if muted:
            conn.execute(
                "INSERT OR IGNORE INTO notify_muted (user_id, event, channel) VALUES (?, ?, ?)",
                (user.id, event, channel),
            )
        else:
            conn.execute(
                "DELETE FROM notify_muted WHERE user_id = ? AND event = ? AND channel = ?", (user.id, event, channel)
            )
    return preferences(service, username)


def set_wanted(service: Service, username: str, wanted: dict[str, list[str]]) -> dict[str, Any]:
    """Replace what a user hears: for each event, the channels wanted (an event left out: none)."""
    for event, channels in wanted.items():
        for channel in channels:
            _check(event, channel)
    user = _require(service, username)
    muted = [(user.id, e, c) for e in EVENTS for c in PERSONAL_CHANNELS if c not in wanted.get(e, [])]
    with transaction(service.db, bump=False) as conn:
        conn.execute("DELETE FROM notify_muted WHERE user_id = ?", (user.id,))
        conn.executemany("INSERT INTO notify_muted (user_id, event, channel) VALUES (?, ?, ?)", muted)
    return preferences(service, username)


def preferences(service: Service, username: str) -> dict[str, Any]:
    """{email, slack_user_id, wanted: {event: [channels]}}: what the user hears, and where."""
    user = _require(service, username)
    email, slack = service.conn.execute("SELECT email, slack_user_id FROM users WHERE id = ?", (user.id,)).fetchone()
    muted = set(service.conn.execute("SELECT event, channel FROM notify_muted WHERE user_id = ?", (user.id,)))
    wanted = {e: [c for c in PERSONAL_CHANNELS if (e, c) not in muted] for e in EVENTS}
    return {"username": user.username, "email": email, "slack_user_id": slack, "wanted": wanted}
