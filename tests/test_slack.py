"""The /reference slash command and its buttons: requests signed exactly as Slack documents them
(a forged or replayed one is refused with 401), answers with matches, a request made as the mapped user,
and the reply delivered through the outbox to a local receiver."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.parse

import pytest
from flask.testing import FlaskClient

from refmatch.app import users
from refmatch.app.notify import outbox, prefs
from refmatch.app.notify.deliver import deliver_due
from tests import web_support
from tests.test_notify import receiver

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
cheap_hashes = web_support.cheap_hashes


def signed(body: str, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    """Headers as Slack sends them: v0=HMAC-SHA256(secret, 'v0:{timestamp}:{body}')."""
    timestamp = str(int(at if at is not None else time.time()))
    digest = hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }


@pytest.fixture
def base():
    with receiver() as (url, got):
        yield url, got


@pytest.fixture
def app(world, base):
    url, _got = base
    world.settings = world.settings.replace(slack_signing_secret=SECRET, slack_api_url=f"{url}/api/")
    users.add_user(world, "rep", "long enough", "sales")
    prefs.set_contact(world, "rep", slack_user_id="U0REP0001")
    app = web_support.make_app(world)
    app.test_client_class = FlaskClient
    yield app
    app.extensions["refmatch"].service.close()


def command(client, text: str, **sign):
    body = urllib.parse.urlencode({"command": "/reference", "text": text, "user_id": "U0REP0001", "team_id": "T1"})
    return client.post("/slack/commands", data=body, headers=signed(body, **sign))


def press(client, value: dict, user: str, response_url: str, **sign):
    payload = {"type": "block_actions", "user": {"id": user}, "response_url": response_url,
               "actions": [{"action_id": "refmatch_request", "value": json.dumps(value)}]}  # fmt: skip
    body = urllib.parse.urlencode({"payload": json.dumps(payload)})
    return client.post("/slack/actions", data=body, headers=signed(body, **sign))


def test_a_slash_command_answers_with_matches_and_buttons(app):
    client = app.test_client()
    answer = command(client, "P1").get_json()
    assert answer["response_type"] == "ephemeral" and "References for *Company P1* (P1)" in answer["text"]
    first = answer["blocks"][1]
    assert first["text"]["text"].startswith("*1. Company A1*")
    assert first["accessory"]["action_id"] == "refmatch_request"
    assert json.loads(first["accessory"]["value"]) == {"advocate": "A1", "seeker": "P1"}
    described = command(client, "consolidate regional warehouses onto one wms and single sign on").get_json()
    assert described["text"].startswith("References for _consolidate") and len(described["blocks"]) > 1
    assert "Usage: `/reference" in command(client, "   ").get_json()["text"]


def test_forged_replayed_and_unsigned_requests_are_refused(app):
    client = app.test_client()
    assert command(client, "P1", secret="not-the-secret").status_code == 401
    assert command(client, "P1", at=time.time() - 6 * 60).status_code == 401  # replayed after 5 minutes
    body = urllib.parse.urlencode({"text": "P1"})
    assert (
        client.post(
            "/slack/commands", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        ).status_code
        == 401
    )
    assert command(client, "P1", at=time.time() - 4 * 60).status_code == 200


def test_a_button_makes_the_request_as_the_mapped_user_and_replies_through_the_outbox(app, base, world):
    url, got = base
    client = app.test_client()
    response = press(client, {"advocate": "A1", "seeker": "P1"}, "U0REP0001", f"{url}/slack-hook")
    assert response.status_code == 200
    svc = app.extensions["refmatch"].service
    row = svc.conn.execute("SELECT requested_by, note FROM reference_requests").fetchone()
    assert row == ("rep", "asked from Slack")
    press(client, {"advocate": "A1", "seeker": "P1"}, "U0STRANGER", f"{url}/slack-hook")  # not linked
    press(client, {"advocate": "A1", "seeker": "A7"}, "U0REP0001", "https://evil.example.com/x")  # not Slack's
    assert svc.conn.execute("SELECT COUNT(*) FROM reference_requests").fetchone()[0] == 2
    done = deliver_due(svc)
    assert done.failed == 0 and not [e for e in done.errors if "slack-hook" in e]
    replies = [json.loads(b)["text"] for p, _, b in got if p == "/slack-hook"]
    assert any(r.startswith("Request #1 sent to Company A1") for r in replies)
    assert any("is not linked to a refmatch user" in r and "--slack-id U0STRANGER" in r for r in replies)
    assert not [d for d in outbox.deliveries(svc) if "evil" in d["recipient"]]
    assert press(client, {"advocate": "A1"}, "U0REP0001", f"{url}/slack-hook", secret="x").status_code == 401


def test_slack_is_off_without_a_signing_secret(world):
    app = web_support.make_app(world)
    app.test_client_class = FlaskClient
    body = "text=P1"
    assert app.test_client().post("/slack/commands", data=body, headers=signed(body)).status_code == 404
