"""Notifications: the outbox written with each workflow change, its delivery with retries, due dates,
and the real protocol peers (an SMTP server, a webhook receiver that checks signatures, a Slack API)
started on 127.0.0.1 by the tests."""

from __future__ import annotations

import json
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from refmatch.app import requests as workflow
from refmatch.app import users
from refmatch.app.notify import channels, outbox, prefs
from refmatch.app.notify.deliver import deliver_due, notice_overdue
from refmatch.cli import cli
from refmatch.config import load_settings
from refmatch.domain import clock
from refmatch.domain.errors import ConfigError, Conflict, InvalidInput, NotFound
from tests.e2e_demo import free_port

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    monkeypatch.setattr(users, "PASSWORD_METHOD", "pbkdf2:sha256:1000")


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch):
    """The workflow's "now" (due dates, overdue) at T0 unless a test moves it."""
    monkeypatch.setattr(clock, "now", lambda: T0)


@pytest.fixture
def settings(tmp_path):
    return load_settings(
        {
            "db": str(tmp_path / "refmatch.db"),
            "index_dir": str(tmp_path / "indexes"),
            "smtp_host": "127.0.0.1",
            "smtp_security": "none",
            "webhook_url": "http://127.0.0.1:9/hooks",
            "webhook_secret": SECRET,
            "slack_bot_token": "xoxb-test",
            "slack_webhook_url": "http://127.0.0.1:9/slack-hook",
            "public_url": "https://refmatch.example.com",
        },
        env={},
    )


@pytest.fixture
def people(world):
    made = {
        "alice": users.add_user(world, "alice", "long enough", "sales"),
        "mia": users.add_user(world, "mia", "long enough", "reference_manager"),
        "ada": users.add_user(world, "ada", "long enough", "admin"),
        "carol": users.add_user(world, "carol", "long enough", "cs"),
    }
    prefs.set_contact(world, "alice", email="alice@example.com", slack_user_id="U0ALICE1")
    prefs.set_contact(world, "mia", email="mia@example.com")
    prefs.set_contact(world, "carol", email="carol@example.com")  # neither a manager nor the requester
    return made


def rows(world, **where):
    clause = " AND ".join(f"{k} = ?" for k in where) or "1"
    found = world.conn.execute(
        f"SELECT event, channel, recipient, status, attempts FROM outbox WHERE {clause} ORDER BY id",
        tuple(where.values()),
    )
    return [tuple(r) for r in found]


def ask(world, people, at=T0, **kwargs):
    return workflow.create_request(
        world, people["alice"], advocate_external_id="A1", seeker_external_id="P1", now=at, **kwargs
    )


# -- what is written, and to whom ----------------------------------------------------------
def test_a_new_request_tells_managers_the_owner_the_webhook_and_slack_in_its_own_transaction(world, people):
    world.conn.execute("UPDATE accounts SET owner = 'owner.of.a1@example.com' WHERE external_id = 'A1'")
    view = ask(world, people)
    assert sorted(rows(world)) == sorted(
        [
            ("request.created", "email", "mia@example.com", "pending", 0),
            ("request.created", "email", "owner.of.a1@example.com", "pending", 0),
            ("request.created", "webhook", "http://127.0.0.1:9/hooks", "pending", 0),
            ("request.created", "slack", "http://127.0.0.1:9/slack-hook", "pending", 0),
        ]
    )  # ada (admin) has no address; alice asked, so she is not told; carol is neither
    subject, body = world.conn.execute("SELECT subject, body FROM outbox WHERE channel = 'email' LIMIT 1").fetchone()
    assert subject.startswith(f"Reference request #{view.id}: alice asks Company A1 (A1) for a call")
    assert f"https://refmatch.example.com/requests/{view.id}" in body
    payload = json.loads(world.conn.execute("SELECT payload FROM outbox WHERE channel = 'webhook'").fetchone()[0])
    assert payload["type"] == "request.created" and payload["data"]["request"]["id"] == view.id
    assert "advocate_owner" not in payload["data"]["request"]


def test_a_refused_request_writes_no_notification(world, people):
    world.conn.execute("UPDATE advocates SET consent = 0")
    with pytest.raises(Conflict):
        ask(world, people)
    assert rows(world) == []


def test_moves_tell_the_requester_but_never_the_one_who_made_the_move(world, people):
    view = ask(world, people)
    world.conn.execute("DELETE FROM outbox")
    workflow.transition(world, people["mia"], view.id, "approved", now=T0)
    assert ("request.approved", "email", "alice@example.com", "pending", 0) in rows(world)
    assert ("request.approved", "slack", "U0ALICE1", "pending", 0) in rows(world)
    assert not [r for r in rows(world) if r[2] == "mia@example.com"]
    world.conn.execute("DELETE FROM outbox")
    workflow.transition(world, people["alice"], view.id, "cancelled", now=T0)  # her own move
    assert [r[1] for r in rows(world)] == ["webhook", "slack"]  # the team's channels hear of it all


def test_a_muted_event_is_not_sent_on_that_channel(world, people):
    prefs.set_muted(world, "alice", "request.approved", "email", True)
    view = ask(world, people)
    workflow.transition(world, people["mia"], view.id, "approved", now=T0)
    to_alice = [r[1] for r in rows(world, event="request.approved") if r[2] in ("alice@example.com", "U0ALICE1")]
    assert to_alice == ["slack"]
    shown = prefs.preferences(world, "alice")
    assert shown["wanted"]["request.approved"] == ["slack"] and shown["wanted"]["request.created"] == ["email", "slack"]
    prefs.set_muted(world, "alice", "request.approved", "email", False)
    assert prefs.preferences(world, "alice")["wanted"]["request.approved"] == ["email", "slack"]


def test_unconfigured_channels_get_no_rows(world, people, settings):
    world.settings = settings.replace(smtp_host="", webhook_url="", slack_webhook_url="", slack_bot_token="")
    ask(world, people)
    assert rows(world) == []


def test_bad_contacts_and_preferences_name_the_field(world, people):
    with pytest.raises(InvalidInput, match="email: not an e-mail address"):
        prefs.set_contact(world, "alice", email="not-an-address")
    with pytest.raises(InvalidInput, match="slack_user_id: not a Slack member id"):
        prefs.set_contact(world, "alice", slack_user_id="alice")
    with pytest.raises(InvalidInput, match="event: must be one of"):
        prefs.set_muted(world, "alice", "request.exploded", "email", True)
    with pytest.raises(InvalidInput, match="channel: must be one of email, slack"):
        prefs.set_muted(world, "alice", "request.created", "webhook", True)
    with pytest.raises(NotFound):
        prefs.set_contact(world, "nobody", email="x@example.com")
    assert prefs.set_contact(world, "alice", email="")["email"] is None


def test_a_webhook_needs_a_valid_secret():
    with pytest.raises(ConfigError, match="REFMATCH_WEBHOOK_SECRET"):
        load_settings({"webhook_url": "https://hooks.example.com/x"}, env={})
    with pytest.raises(ConfigError, match="REFMATCH_WEBHOOK_SECRET"):
        load_settings({"webhook_url": "https://hooks.example.com/x", "webhook_secret": "whsec_!!"}, env={})
    with pytest.raises(ConfigError, match="REFMATCH_SMTP_SECURITY"):
        load_settings({"smtp_security": "tls-please"}, env={})
    with pytest.raises(ConfigError, match="REFMATCH_SLACK_API_URL"):
        load_settings({"slack_api_url": "slack.com/api"}, env={})


# -- delivery: retries, back-off, failures, leases ---------------------------------------------
class Moment:
    def __init__(self, start):
        self.now = start

    def __call__(self):
        return self.now


def test_deliveries_retry_with_back_off_then_fail_and_can_be_retried(world, people, settings):
    world.settings = settings.replace(notify_max_attempts=3, notify_retry_seconds=30)
    world.conn.execute("UPDATE accounts SET owner = 'owner.of.a1@example.com' WHERE external_id = 'A1'")
    ask(world, people)
    at = Moment(T0)
    sent: list[int] = []

    def flaky(_settings, delivery):
        if delivery.channel == "email":
            raise channels.DeliveryFailed("connection refused")
        sent.append(delivery.id)

    first = deliver_due(world, now=at, send=flaky)
    assert (first.sent, first.retrying, first.failed) == (2, 2, 0)
    assert deliver_due(world, now=at, send=flaky).idle  # nothing due before the back-off ends
    at.now = T0 + timedelta(seconds=30)
    assert deliver_due(world, now=at, send=flaky).retrying == 2  # second attempt; the next waits 60 s
    at.now += timedelta(seconds=59)
    assert deliver_due(world, now=at, send=flaky).idle
    at.now += timedelta(seconds=1)
    assert deliver_due(world, now=at, send=flaky).failed == 2
    failed = outbox.deliveries(world, "failed")
    assert len(failed) == 2 and all(d["attempts"] == 3 and d["last_error"] == "connection refused" for d in failed)
    assert outbox.counts(world)["failed"] == {"email": 2}
    assert len(sent) == 2  # the others were sent once each

    assert outbox.retry(world, [failed[0]["id"]], now=at.now) == 1
    assert deliver_due(world, now=at, send=lambda *_args: None).sent == 1
    assert outbox.retry(world, now=at.now) == 1  # --all: the one still failed
    assert outbox.counts(world)["failed"] == {}
    with pytest.raises(NotFound):
        outbox.retry(world, [987654])


def test_back_off_doubles_up_to_an_hour(settings):
    waits = [outbox.backoff(settings, n).total_seconds() for n in (1, 2, 3, 8, 20)]
    assert waits == [30, 60, 120, 3600, 3600]


def test_a_worker_that_dies_mid_send_leaves_the_row_to_be_sent_again_after_its_lease(world, people):
    ask(world, people)
    claimed = outbox.claim_due(world, T0)  # then the worker is killed: nothing marked
    assert len(claimed) == 3
    assert outbox.claim_due(world, T0 + timedelta(seconds=30)) == []  # still leased
    again = outbox.claim_due(world, T0 + outbox.LEASE)
    assert sorted(d.id for d in again) == sorted(d.id for d in claimed)


# -- due dates -----------------------------------------------------------------------------------
def test_overdue_requests_are_listed_and_managers_told_once(world, people, monkeypatch):
    view = ask(world, people)
    assert view.due_at == (T0 + timedelta(hours=72)).isoformat() and not view.overdue
    late = T0 + timedelta(hours=73)
    monkeypatch.setattr(clock, "now", lambda: late)
    assert workflow.get_request(world, people["alice"], view.id).overdue
    listed, total = workflow.list_requests(world, people["mia"], overdue=True)
    assert total == 1 and listed[0].id == view.id
    world.conn.execute("DELETE FROM outbox")
    assert notice_overdue(world, late) == 1
    assert ("request.overdue", "email", "mia@example.com", "pending", 0) in rows(world)
    assert notice_overdue(world, late + timedelta(hours=1)) == 0  # once
    workflow.transition(world, people["mia"], view.id, "approved", now=late)
    workflow.transition(world, people["mia"], view.id, "scheduled", now=late)
    assert workflow.list_requests(world, people["mia"], overdue=True)[1] == 0  # scheduled: no longer waiting


# -- the command line ----------------------------------------------------------------------------
def run(settings, *args):
    env = {"REFMATCH_DB": settings.db, "REFMATCH_INDEX_DIR": settings.index_dir}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_cli_status_retry_contact_mute_and_overdue(world, people, settings, monkeypatch):
    view = ask(world, people)
    for d in outbox.claim_due(world, T0):
        outbox.mark_failed_attempt(world, d.id, "boom", T0)
    world.conn.execute("UPDATE outbox SET status = 'failed'")
    out = run(settings, "notify", "status")
    assert out.exit_code == 0 and "failed        3" in out.output and "boom" in out.output and "--all" in out.output
    out = run(settings, "notify", "status", "--format", "json")
    assert json.loads(out.output)["counts"]["failed"] == {"email": 1, "slack": 1, "webhook": 1}
    out = run(settings, "notify", "retry")
    assert out.exit_code == 2 and "give delivery ids, or --all" in out.output
    out = run(settings, "notify", "retry", "--all")
    assert out.exit_code == 0 and "3 deliveries queued again" in out.output

    out = run(settings, "notify", "contact", "carol", "--email", "nope")
    assert out.exit_code == 2 and "email: not an e-mail address" in out.output
    out = run(settings, "notify", "contact", "carol", "--slack-id", "U0CAROL1")
    assert out.exit_code == 0 and "carol: e-mail carol@example.com, Slack U0CAROL1" in out.output
    out = run(settings, "notify", "mute", "carol", "request.created:email")
    assert out.exit_code == 0 and "request.created    slack" in out.output
    out = run(settings, "notify", "mute", "carol", "request.created:fax")
    assert out.exit_code == 2 and "channel: must be one of email, slack" in out.output

    monkeypatch.setattr(clock, "now", lambda: T0 + timedelta(days=4))
    out = run(settings, "requests", "--overdue")
    assert out.exit_code == 0 and f"#{view.id}" in out.output and "OVERDUE" in out.output
    monkeypatch.setattr(clock, "now", lambda: T0)
    assert "no overdue requests" in run(settings, "requests", "--overdue").output


# -- the real protocol peers ---------------------------------------------------------------------
class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that checks Standard Webhooks signatures, and a Slack Web API and incoming webhook."""

    got: list[tuple[str, dict, bytes]]
    fail_first: list[bool]

    def do_POST(self):  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["content-length"]))
        self.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        if self.path == "/hooks":
            from standardwebhooks.webhooks import Webhook

            if self.fail_first and self.fail_first.pop():
                return self._answer(503, b"busy")
            try:
                Webhook(SECRET).verify(body, {k.lower(): v for k, v in self.headers.items()})
            except Exception:
                return self._answer(401, b"bad signature")
            return self._answer(204, b"")
        if self.path == "/api/chat.postMessage":
            if self.headers.get("authorization") != "Bearer xoxb-test":
                return self._answer(200, json.dumps({"ok": False, "error": "invalid_auth"}).encode())
            return self._answer(200, json.dumps({"ok": True, "ts": "1.2"}).encode())
        if self.path == "/slack-hook":
            return self._answer(200, b"ok")
        return self._answer(404, b"no")

    def _answer(self, code, body):
        self.send_response(code)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


@contextmanager
def receiver(fail_first=0):
    handler = type("R", (Receiver,), {"got": [], "fail_first": [True] * fail_first})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.got
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    class Keep(Sink):
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
            return "250 OK"

    handler = Keep()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, handler.messages
    finally:
        controller.stop()


def test_real_peers_smtp_signed_webhook_with_a_retry_and_slack(world, people, settings):
    with smtp_server() as (smtp_port, mails), receiver(fail_first=1) as (base, got):
        world.settings = settings.replace(
            smtp_port=smtp_port,
            webhook_url=f"{base}/hooks",
            slack_webhook_url=f"{base}/slack-hook",
            slack_api_url=f"{base}/api/",
        )
        view = ask(world, people)
        workflow.transition(world, people["mia"], view.id, "approved", now=T0)
        at = Moment(T0 + timedelta(seconds=1))
        first = deliver_due(world, now=at)
        assert first.retrying == 1, first.errors  # the receiver was busy once
        assert "answered 503" in first.errors[0]
        at.now += timedelta(seconds=30)
        assert deliver_due(world, now=at).sent == 1
        assert outbox.counts(world)["pending"] == {} and outbox.counts(world)["failed"] == {}

        assert sorted(to[0] for to, _ in mails) == ["alice@example.com", "mia@example.com"]
        created = next(m for to, m in mails if to == ["mia@example.com"])
        assert "Subject: Reference request #" in created and "alice asks Company A1 (A1)" in created
        hooks = [(h, b) for p, h, b in got if p == "/hooks"]
        assert len(hooks) == 3  # created (busy, then accepted) and approved
        ids = [h["webhook-id"] for h, _ in hooks]
        assert len(set(ids)) == 2 and ids.count(ids[0]) == 2  # a retry keeps its id: receivers drop repeats by it
        assert sorted({json.loads(b)["type"] for _, b in hooks}) == ["request.approved", "request.created"]
        dms = [json.loads(b) for p, _, b in got if p == "/api/chat.postMessage"]
        assert [d["channel"] for d in dms] == ["U0ALICE1"] and "approved" in dms[0]["text"]
        assert sum(p == "/slack-hook" for p, _, _ in got) == 2


def test_a_forged_signature_would_be_refused_by_the_receiver(world, people, settings):
    with receiver() as (base, got):
        world.settings = settings.replace(webhook_url=f"{base}/hooks", webhook_secret="whsec_" + "A" * 32)
        world.settings = world.settings.replace(smtp_host="", slack_webhook_url="", slack_bot_token="")
        ask(world, people)
        done = deliver_due(world, now=lambda: T0)
        assert done.retrying == 1 and "answered 401" in done.errors[0]


def test_slack_errors_and_unreachable_smtp_are_clear(world, people, settings):
    with receiver() as (base, _got):
        world.settings = settings.replace(slack_api_url=f"{base}/api/", slack_bot_token="xoxb-wrong", smtp_port=1)
        world.settings = world.settings.replace(webhook_url="", slack_webhook_url="")
        view = ask(world, people)
        workflow.transition(world, people["mia"], view.id, "approved", now=T0)
        done = deliver_due(world, now=lambda: T0)
        text = "\n".join(done.errors)
        assert "Slack refused the message to U0ALICE1: invalid_auth" in text
        assert "SMTP 127.0.0.1:1:" in text


# -- the supervised notifier beside a real server --------------------------------------------------
def test_a_served_request_is_mailed_by_the_notifier_process_even_after_it_is_killed(world, people, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import urllib.request
    from pathlib import Path

    from tests.e2e_demo import wait_for

    token, _ = users.create_token(world, "alice", "t")
    world.close()
    port = free_port()
    with smtp_server() as (smtp_port, mails):
        env = {**os.environ, "REFMATCH_SMTP_HOST": "127.0.0.1", "REFMATCH_SMTP_PORT": str(smtp_port),
               "REFMATCH_SMTP_SECURITY": "none"}  # fmt: skip
        log = tmp_path / "serve.log"
        with log.open("w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.serve_fake", world.settings.db, world.settings.index_dir, str(port), "1"],
                cwd=Path(__file__).resolve().parents[1], stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        try:
            wait_for(lambda: " ready (" in log.read_text() or proc.poll() is not None, what="the worker")

            def ask(seeker: str) -> int:
                body = json.dumps({"advocate_external_id": "A1", "seeker_external_id": seeker}).encode()
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/v1/requests", data=body, method="POST",
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                )  # fmt: skip
                with urllib.request.urlopen(request, timeout=10) as response:
                    return json.loads(response.read())["id"]

            first = ask("P1")
            wait_for(lambda: any(f"#{first}:" in m for _, m in mails), 30, "the first e-mail")

            def notifiers() -> list[int]:
                """The server's own notifier (a child of the server process; other servers may run too)."""
                found = []
                for task in Path(f"/proc/{proc.pid}/task").iterdir():
                    try:
                        children = (task / "children").read_text().split()
                    except OSError:
                        continue
                    for pid in children:
                        try:
                            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                        except OSError:
                            continue
                        if b"notify" in argv and b"watch" in argv:
                            found.append(int(pid))
                return found

            [notifier] = notifiers()
            os.kill(notifier, signal.SIGKILL)
            second = ask("A7")  # written to the outbox while no notifier runs: nothing is lost
            wait_for(lambda: [p for p in notifiers() if p != notifier], 30, "a new notifier")
            wait_for(lambda: any(f"#{second}:" in m for _, m in mails), 30, "the second e-mail")
            assert {to[0] for to, _ in mails} == {"mia@example.com"}
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_notifier_whose_server_is_gone_stops_by_itself(world, people):
    import os
    import subprocess
    import sys

    from tests.e2e_demo import wait_for

    world.close()
    env = {**os.environ, "REFMATCH_DB": world.settings.db, "REFMATCH_INDEX_DIR": world.settings.index_dir}
    shell = subprocess.run(  # the parent starts it, lives 3 s, and is gone (as a server killed with SIGKILL)
        ["sh", "-c", f"{sys.executable} -m refmatch notify watch --interval 0.2 >/dev/null 2>&1 & echo $!; sleep 3"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    pid = int(shell.stdout.split()[0])
    from pathlib import Path

    def gone() -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
        except OSError:
            return True

    wait_for(gone, 20, "the orphaned notifier to stop")
