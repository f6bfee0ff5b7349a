"""Sessions that really end: sign-out, a new password, disabling and removing end every session of
the user at once (an old cookie replayed stops working); sessions also end when idle and at a fixed
lifetime; sign-in throttling holds under simultaneous guesses."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from refmatch.app import requests as workflow
from refmatch.app import users
from refmatch.app.service import Service
from refmatch.cli import cli
from refmatch.config import load_settings
from refmatch.domain.errors import Forbidden, NotFound
from refmatch.embed.fake import FakeEncoder
from tests import web_support
from tests.web_support import PASSWORD, Clock, bearer, fake_clock, login, page_csrf, post_form

app = web_support.app
cheap_hashes = web_support.cheap_hashes
client = web_support.client

COOKIE = "refmatch_session"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return fake_clock(monkeypatch, T0)


def cookie_of(client) -> str:
    found = client.get_cookie(COOKIE)
    assert found is not None, "no session cookie"
    return found.value


def replay(app, cookie: str):
    """A second browser that holds a copy of the cookie (a stolen one, or a second tab)."""
    other = app.test_client()
    other.set_cookie(COOKIE, cookie)
    return other


def signed_in(browser) -> bool:
    """The API and a UI page agree whether the browser is signed in."""
    me = browser.get("/api/v1/me")
    page = browser.get("/accounts")
    assert (me.status_code == 200) == (page.status_code == 200), (me.status_code, page.status_code)
    if page.status_code != 200:
        assert me.status_code == 401 and page.status_code == 302 and "/login" in page.headers["Location"]
    return me.status_code == 200


def service_of(app) -> Service:
    return app.extensions["refmatch"].service


def test_sign_out_ends_a_copied_cookie_and_every_other_session(app, client):
    login(client, "sales")
    copied = cookie_of(client)
    laptop = app.test_client()
    login(laptop, "sales")
    colleague = app.test_client()
    login(colleague, "cs")
    assert signed_in(replay(app, copied)) and signed_in(laptop)

    response = post_form(client, "/logout")
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    assert not signed_in(client)
    assert not signed_in(replay(app, copied))  # the copy taken before sign-out
    assert not signed_in(laptop)  # sign-out ends every session of the user
    assert signed_in(colleague)  # and no one else's
    login(client, "sales")  # signing in again works
    assert signed_in(client)


def test_a_new_password_ends_the_sessions_signed_in_with_the_old_one(app, client):
    login(client, "sales")
    copied = cookie_of(client)
    users.set_password(service_of(app), "sales", "a brand new password")
    assert not signed_in(client) and not signed_in(replay(app, copied))
    login(client, "sales", "a brand new password")
    assert signed_in(client)


def test_disable_ends_sessions_refuses_sign_in_and_tokens_until_enabled(app, client):
    service = service_of(app)
    headers = bearer(app, "sales")
    login(client, "sales")
    copied = cookie_of(client)
    assert users.set_disabled(service, "sales", True) is True
    assert users.set_disabled(service, "sales", True) is False  # already
    assert not signed_in(replay(app, copied))
    assert client.get("/api/v1/me", headers=headers).status_code == 401  # its API token too

    # the right password says why; a wrong one says nothing more than usual
    page = client.get("/login").get_data(as_text=True)
    refused = client.post("/login", data={"username": "sales", "password": PASSWORD, "csrf_token": page_csrf(page)})
    assert refused.status_code == 403
    assert "user sales is disabled: an admin can enable it again" in refused.get_data(as_text=True)
    page = client.get("/login").get_data(as_text=True)
    wrong = client.post(
        "/login", data={"username": "sales", "password": "not it at all", "csrf_token": page_csrf(page)}
    )
    assert wrong.status_code == 400 and "disabled" not in wrong.get_data(as_text=True)
    with pytest.raises(Forbidden):
        users.authenticate(service, "sales", PASSWORD)

    assert users.set_disabled(service, "sales", False) is True
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    assert not signed_in(replay(app, copied))  # enabling does not bring old sessions back
    login(client, "sales")
    assert signed_in(client)


def test_remove_ends_sessions_and_tokens_and_keeps_the_users_requests(app, client):
    service = service_of(app)
    sales = users.get_user_by_name(service, "sales")
    made = workflow.create_request(service, sales, advocate_external_id="A1", seeker_external_id="P1")
    headers = bearer(app, "sales")
    login(client, "sales")
    copied = cookie_of(client)

    removed = users.remove_user(service, "sales")
    assert removed.username == "sales"
    assert users.get_user_by_name(service, "sales") is None
    assert not signed_in(replay(app, copied))
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    tokens_left = service.conn.execute("SELECT COUNT(*) FROM api_tokens WHERE user_id = ?", (sales.id,)).fetchone()
    assert tokens_left == (0,)
    manager = users.get_user_by_name(service, "manager")
    kept = workflow.get_request(service, manager, made.id)
    assert kept.requested_by == "sales" and kept.requested_by_user_id is None
    assert [e.actor for e in workflow.events(service, made.id)] == ["sales"]
    with pytest.raises(NotFound):
        users.remove_user(service, "sales")

    # a new user of the same name does not inherit the old sessions
    users.add_user(service, "sales", PASSWORD, "sales")
    assert not signed_in(replay(app, copied))


def test_an_idle_session_ends_and_use_keeps_it_alive(app, client, clock):
    settings = service_of(app).settings
    assert (settings.session_idle_minutes, settings.session_max_hours) == (120, 12)
    login(client, "sales")
    for _ in range(3):  # used every 100 minutes: 300 minutes in all, never 120 idle
        clock.advance(minutes=100)
        assert signed_in(client)
    copied = cookie_of(client)
    clock.advance(minutes=119)
    assert signed_in(replay(app, copied))
    clock.advance(minutes=121)
    assert not signed_in(client) and not signed_in(replay(app, copied))
    login_page = client.get("/accounts", follow_redirects=True).get_data(as_text=True)
    assert "Your session has ended: sign in again." not in login_page  # said once, on the request that found it
    ended = replay(app, copied).get("/accounts", follow_redirects=True).get_data(as_text=True)
    assert "Your session has ended: sign in again." in ended


def test_a_session_ends_at_its_lifetime_however_busy(app, client, clock):
    login(client, "cs")
    for _ in range(11 * 2):  # every 30 minutes for 11 hours
        clock.advance(minutes=30)
        assert signed_in(client)
    clock.advance(minutes=59)
    assert signed_in(client)  # 11 h 59 min
    clock.advance(minutes=1)
    assert not signed_in(client)  # 12 hours after sign-in
    login(client, "cs")
    assert signed_in(client)


def test_the_lifetimes_are_settings(world, clock):
    for username, role in web_support.ROLE_USERS.items():
        users.add_user(world, username, PASSWORD, role)
    app = web_support.make_app(world, REFMATCH_SETTINGS=world.settings.replace(session_idle_minutes=5))
    browser = app.test_client()
    login(browser, "sales")
    clock.advance(minutes=4)
    assert signed_in(browser)
    clock.advance(minutes=5, seconds=1)
    assert not signed_in(browser)
    assert app.permanent_session_lifetime == timedelta(hours=12)  # the signed cookie expires with the session
    app.extensions["refmatch"].service.close()
    with pytest.raises(Exception, match="REFMATCH_SESSION_MAX_HOURS: must be at least 1"):
        load_settings(env={"REFMATCH_SESSION_MAX_HOURS": "0"})


def test_a_cookie_without_an_epoch_has_ended(app, client):
    """A session signed before epochs existed (or forged without one) is not a session."""
    sales = users.get_user_by_name(service_of(app), "sales")
    with client.session_transaction() as session:
        session["user_id"] = sales.id
    assert not signed_in(client)


def test_simultaneous_wrong_passwords_get_no_more_guesses_than_the_limit(app, tmp_path):
    """24 guesses at once, from 24 connections (as from several workers): at most 5 are checked."""
    settings = service_of(app).settings
    services = [Service(settings) for _ in range(24)]
    start = threading.Barrier(len(services))
    checked = []

    def guess(service: Service, n: int) -> None:
        start.wait()
        wait, attempt = users.begin_login(service, "sales", f"198.51.100.{n}")
        if not wait:
            checked.append(users.authenticate(service, "sales", f"wrong guess {n}"))

    threads = [threading.Thread(target=guess, args=(s, n)) for n, s in enumerate(services)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in services:
        s.close()
    assert len(checked) == settings.login_max_failures and not any(checked)
    assert users.login_wait(service_of(app), "sales", None) > 0


def test_a_right_password_takes_back_its_own_count_only(app, clock):
    service = service_of(app)
    for _ in range(3):
        users.record_login_failure(service, "someone", "192.0.2.1")
    wait, attempt = users.begin_login(service, "sales", "192.0.2.1")
    assert wait == 0 and attempt is not None
    users.login_succeeded(service, "sales", "192.0.2.1", attempt)
    rows = service.conn.execute("SELECT key FROM login_failures ORDER BY key").fetchall()
    assert rows == [("addr:192.0.2.1",)] * 3 + [("user:someone",)] * 3


# -- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def run(tmp_path):
    encoder = FakeEncoder()
    base = ["--db", str(tmp_path / "s.db"), "--index-dir", str(tmp_path / "idx")]

    def invoke(*args, **kwargs):
        return CliRunner().invoke(cli, [*args, *base], obj={"encoder": encoder}, **kwargs)

    assert invoke("init").exit_code == 0
    invoke.settings = load_settings({"db": str(tmp_path / "s.db")}, env={})
    return invoke


def test_cli_disable_enable_sign_out_remove(run):
    assert run("user", "add", "alice", "--role", "sales", "--password-stdin", input="long enough\n").exit_code == 0
    service = Service(run.settings)
    epoch = users.session_epoch(service, users.get_user_by_name(service, "alice").id)

    out = run("user", "sign-out", "alice")
    assert (out.exit_code, out.output) == (0, "every session of alice has ended\n")
    assert users.session_epoch(service, users.get_user_by_name(service, "alice").id) == epoch + 1

    out = run("user", "disable", "alice")
    assert (out.exit_code, out.output) == (0, "alice disabled: its sessions have ended\n")
    assert run("user", "disable", "alice").output == "alice was already disabled\n"
    assert run("user", "list").output == "   1  alice                    sales  (disabled)\n"
    assert run("user", "enable", "alice").output == "alice enabled\n"
    assert run("user", "enable", "alice").output == "alice was not disabled\n"

    refused = run("user", "remove", "alice", input="n\n")
    assert refused.exit_code == 1 and "Aborted" in refused.output
    assert users.get_user_by_name(service, "alice") is not None
    out = run("user", "remove", "alice", "--yes")
    assert (out.exit_code, out.output) == (0, "user alice removed\n")
    assert users.get_user_by_name(service, "alice") is None
    for command in ("sign-out", "disable", "enable", "remove"):
        unknown = run("user", command, "bob")
        assert unknown.exit_code == 1 and "Error: unknown user: 'bob'" in unknown.output, (command, unknown.output)
    service.close()
