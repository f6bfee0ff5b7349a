"""Slack in: the ``/reference`` slash command and its "Request" buttons.

``/reference <account id, name, or a description of the prospect>`` answers (only to the
person who asked) with the top matches and their reasons, each with a button that
creates the reference request as the refmatch user whose Slack member id is the
clicker's (``refmatch notify contact USER --slack-id U...``).

Every request from Slack is verified with the app's signing secret exactly as Slack
documents it (``v0=`` HMAC-SHA256 of ``v0:{timestamp}:{body}``, and a timestamp at most
five minutes away: slack_sdk's ``SignatureVerifier``); anything else is refused.
A button's answer goes back to Slack through its ``response_url``, by the outbox
(never from inside the request), like every other notification.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from refmatch.app import queries
from refmatch.app.notify.outbox import enqueue_reply
from refmatch.app.requests import create_request
from refmatch.app.service import Service
from refmatch.app.users import User, get_user
from refmatch.domain import clock
from refmatch.domain.errors import NotFound, RefmatchError, Unauthorized

ACTION = "refmatch_request"
SHOWN = 3  # matches in an answer
USAGE = (
    "Usage: `/reference <account id, name, or a description of the prospect>`, for example "
    "`/reference IE-ARAMEX` or `/reference logistics company moving its warehouses onto one WMS`."
)


def verify(signing_secret: str, body: bytes, headers: dict[str, str], now: Callable[[], float] | None = None) -> None:
    """Unauthorized unless ``body`` carries Slack's signature for ``signing_secret``, made within 5 minutes."""
    from slack_sdk.signature import Clock, SignatureVerifier

    if not signing_secret:
        raise NotFound("Slack is not connected: set slack_signing_secret")

    class At(Clock):
        def now(self) -> float:
            return now() if now else super().now()

    lowered = {k.lower(): v for k, v in headers.items()}
    if not SignatureVerifier(signing_secret, clock=At()).is_valid_request(body, lowered):
        raise Unauthorized("not a request signed by Slack (bad signature, or a timestamp over 5 minutes old)")


def _seeker(service: Service, text: str) -> tuple[str | None, str]:
    """The stored account the text names (its id, or a name that finds exactly one), else None: a description."""
    exact = service.conn.execute(
        "SELECT external_id, name FROM accounts WHERE external_id = ? COLLATE NOCASE OR name = ? COLLATE NOCASE "
        "LIMIT 2",
        (text, text),
    ).fetchall()
    if len(exact) == 1:
        return exact[0][0], exact[0][1]
    found, total = queries.list_accounts(service, q=text, limit=2)
    if total == 1 and len(text.split()) <= 4:  # a name, not a description
        return found[0]["external_id"], found[0]["name"]
    return None, text


def command(service: Service, text: str) -> dict[str, Any]:
    """The answer to ``/reference TEXT``: a Slack message (blocks), seen only by who asked."""
    text = " ".join(text.split())
    if not text:
        return {"response_type": "ephemeral", "text": USAGE}
    if len(text) > 1000:
        return {"response_type": "ephemeral", "text": "That is over 1,000 characters: describe the prospect shorter."}
    external_id, label = _seeker(service, text)
    try:
        if external_id is not None:
            result = service.match_account(external_id, purpose="reference", k=SHOWN)
            title = f"References for *{label}* ({external_id})"
        else:
            result = service.match_text(text, k=SHOWN)
            title = f"References for _{label[:200]}_"
    except RefmatchError as exc:
        return {"response_type": "ephemeral", "text": f"No matches: {exc.message}"}
    if not result.matches:
        nobody = f"{title}: no advocate may be proposed (consent, capacity, stage)."
        return {"response_type": "ephemeral", "text": nobody}
    heading = f"{title}\n_{result.note}_" if result.note else title
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": heading}}]
    for m in result.matches:
        reasons = "\n".join(f"• {r}" for r in m.reasons[:3])
        value = json.dumps({"advocate": m.external_id, "seeker": external_id})
        blocks.append(
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": f"*{m.rank}. {m.name}* ({m.strength} match, score {m.score:.2f})\n{reasons}"[:3000],
                },
                "accessory": {
                    "type": "button",
                    "action_id": ACTION,
                    "text": {"type": "plain_text", "text": "Request"},
                    "value": value,
                },
            }
        )
    return {"response_type": "ephemeral", "text": title, "blocks": blocks}


def user_for_slack(service: Service, slack_user_id: str) -> User | None:
    row = service.conn.execute(
        "SELECT id FROM users WHERE slack_user_id = ? AND disabled_at IS NULL", (slack_user_id,)
    ).fetchone()
    return get_user(service, row[0]) if row else None


def action(service: Service, payload: dict[str, Any]) -> str:
    """A "Request" button pressed: the request made as the clicker's refmatch user; the reply, in words,
    which also goes back to Slack through the payload's response_url."""
    slack_user = (payload.get("user") or {}).get("id") or ""
    actions = [a for a in payload.get("actions") or [] if a.get("action_id") == ACTION]
    if payload.get("type") != "block_actions" or not actions:
        return "nothing to do"
    try:
        value = json.loads(actions[0].get("value") or "{}")
        advocate, seeker = str(value["advocate"]), value.get("seeker")
    except (ValueError, KeyError, TypeError):
        return "that button carries no request"
    user = user_for_slack(service, slack_user)
    if user is None:
        reply = (
            f"Your Slack account ({slack_user}) is not linked to a refmatch user: ask an admin to run "
            f"`refmatch notify contact USERNAME --slack-id {slack_user}`."
        )
    else:
        try:
            view = create_request(
                service, user, advocate_external_id=advocate, seeker_external_id=seeker, note="asked from Slack"
            )
            reply = f"Request #{view.id} sent to {view.advocate['name']}: a reference manager will review it."
        except RefmatchError as exc:
            reply = f"Not requested: {exc.message}"
    url = str(payload.get("response_url") or "")
    if url:
        enqueue_reply(service, url, reply, clock.now())
    return reply
