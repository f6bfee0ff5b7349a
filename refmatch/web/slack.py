"""Slack's requests: the ``/reference`` slash command and its buttons (``refmatch.app.slack``).

No session and no CSRF token here: each request must carry Slack's signature for the
app's signing secret (``slack_signing_secret``), checked before its form is read.
Configure the Slack app with ``{public_url}/slack/commands`` as the slash command's
request URL and ``{public_url}/slack/actions`` as the interactivity request URL.
"""

from __future__ import annotations

import json

from flask import Blueprint, current_app, jsonify, request
from werkzeug.wrappers import Response

from refmatch.app import slack
from refmatch.domain.errors import InvalidInput
from refmatch.web.state import WebState

bp = Blueprint("slack", __name__, url_prefix="/slack")
MAX_BODY = 64 * 1024  # Slack's payloads are a few kB


def _state() -> WebState:
    return current_app.extensions["refmatch"]


def _verified() -> None:
    if (request.content_length or 0) > MAX_BODY:
        raise InvalidInput(f"body: over {MAX_BODY:,} bytes")
    body = request.get_data(cache=True)
    slack.verify(_state().service.settings.slack_signing_secret, body, dict(request.headers))


@bp.post("/commands")
def command() -> Response:
    _verified()
    return jsonify(slack.command(_state().service, request.form.get("text", "")))


@bp.post("/actions")
def actions() -> Response:
    _verified()
    try:
        payload = json.loads(request.form.get("payload", ""))
    except ValueError:
        raise InvalidInput("payload: not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidInput("payload: not a JSON object")
    with _state().writing() as svc:
        slack.action(svc, payload)
    return Response(status=200)
