"""Sign-in throttling (per username and per client address) and Secure session cookies."""

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from refmatch.app import users
from refmatch.app.service import Service
from refmatch.cli import cli
from refmatch.config import load_settings
from refmatch.domain.errors import ConfigError
from refmatch.embed.fake import FakeEncoder
from refmatch.store import data_version
from refmatch.web import create_app
from tests import web_support
from tests.web_support import PASSWORD, Clock, fake_clock, make_app, page_csrf

# the shared fixtures: pytest finds them as attributes of this module
app = web_support.app
cheap_hashes = web_support.cheap_hashes
client = web_support.client

OFFICE = "10.0.0.1"
BLOCKED = "Too many failed sign-ins for this username or from this address: try again in"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return fake_clock(monkeypatch, T0)


@pytest.fixture
def core(tmp_path):
    """A Service on an empty database of its own (the app fixture has its own)."""
    svc = Service(load_settings({"db": str(tmp_path / "throttle.db")}, env={}))
    yield svc
    svc.close()


def attempt(client, username: str, password: str, address: str = OFFICE):
    """One signed-out sign-in through the form, from ``address``."""
    with client.session_transaction() as session:
        session.clear()
    token = page_csrf(client.get("/login").get_data(as_text=True))
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token},
        environ_base={"REMOTE_ADDR": address},
    )


def fail(client, username: str, times: int, address: str = OFFICE) -> None:
    for _ in range(times):
        response = attempt(client, username, "wrong password", address)
        assert response.status_code == 400
        assert "Wrong username or password." in response.get_data(as_text=True)


def failures(app) -> int:
    db = app.extensions["refmatch"].service.db
    return db.conn.execute("SELECT COUNT(*) FROM login_failures").fetchone()[0]


# -- the web form ------------------------------------------------------------------------


def test_five_failures_refuse_even_the_right_password_until_the_window_passes(app, client, clock, monkeypatch):
    fail(client, "sales", 5)
    refused = attempt(client, "sales", PASSWORD)
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "900"
    html = refused.get_data(as_text=True)
    assert f"{BLOCKED} 15 minutes." in html and 'class="form-error"' in html
    assert "Wrong username or password." not in html
    assert client.get("/").status_code == 302  # not signed in

    # blocked: the password is not checked and nothing more is counted
    def no_check(*_args, **_kwargs):
        raise AssertionError("the password was checked while blocked")

    monkeypatch.setattr(users, "authenticate", no_check)
    counted = failures(app)
    assert attempt(client, "sales", "another guess").status_code == 429
    assert failures(app) == counted
    monkeypatch.undo()
    monkeypatch.setattr(users, "utcnow", clock)

    clock.advance(minutes=14, seconds=30)
    late = attempt(client, "sales", PASSWORD)
    assert late.status_code == 429 and late.headers["Retry-After"] == "30"
    assert f"{BLOCKED} 1 minute." in late.get_data(as_text=True)

    clock.advance(seconds=30)  # the oldest failure is now as old as the window
    assert attempt(client, "sales", PASSWORD).status_code == 302
    assert "Test sales" in client.get("/").get_data(as_text=True)


def test_a_success_clears_the_usernames_earlier_failures(client, clock):
    fail(client, "cs", 4)
    assert attempt(client, "cs", PASSWORD).status_code == 302
    fail(client, "cs", 4)  # would be 8 without the clear: the fifth is still a plain wrong password
    assert attempt(client, "cs", PASSWORD).status_code == 302
    fail(client, "cs", 5)
    assert attempt(client, "cs", PASSWORD).status_code == 429


def test_the_address_limit_trips_across_usernames(client, clock):
    for n in range(5):  # 5 usernames x 4 failures: no username is blocked, the address (4 x 5 = 20) is
        fail(client, f"guess{n}", 4, address="192.0.2.7")
    refused = attempt(client, "sales", PASSWORD, address="192.0.2.7")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "900"
    assert BLOCKED in refused.get_data(as_text=True)
    assert attempt(client, "sales", PASSWORD, address="192.0.2.8").status_code == 302  # another address
    assert attempt(client, "guess0", "wrong password", address="192.0.2.8").status_code == 400  # 4 < 5


def test_unknown_usernames_are_throttled_the_same_way(client, clock):
    fail(client, "nobody", 5)
    refused = attempt(client, "NoBody", "whatever it is")  # usernames count casefolded
    known = attempt(client, "sales", PASSWORD, address="192.0.2.9")
    assert known.status_code == 302
    fail(client, "sales", 5, address="192.0.2.9")
    refused_known = attempt(client, "sales", PASSWORD, address="192.0.2.9")
    assert refused.status_code == refused_known.status_code == 429
    assert refused.headers["Retry-After"] == refused_known.headers["Retry-After"] == "900"
    assert f"{BLOCKED} 15 minutes." in refused.get_data(as_text=True)


def test_throttling_does_not_change_the_data_version(app, client, clock):
    db = app.extensions["refmatch"].service.db
    before = data_version(db)
    fail(client, "sales", 5)
    assert attempt(client, "sales", PASSWORD).status_code == 429
    clock.advance(minutes=16)
    fail(client, "sales", 1)  # prunes the expired rows
    assert attempt(client, "sales", PASSWORD).status_code == 302  # clears
    assert failures(app) == 1  # the address's latest failure stays
    assert data_version(db) == before


# -- the core ------------------------------------------------------------------------------


def test_policy_in_the_core(core):
    assert (core.settings.login_max_failures, core.settings.login_window_minutes) == (5, 15)  # 20 per address
    for minute in range(5):
        users.record_login_failure(core, "Alice", "198.51.100.1", now=T0 + timedelta(minutes=minute))
    assert users.login_wait(core, "alice", None, now=T0 + timedelta(minutes=4)) == 11 * 60
    assert users.login_wait(core, "ALICE ", "203.0.113.5", now=T0 + timedelta(minutes=14, seconds=59)) == 1
    # the oldest falls out of the window: four are left, one fewer than blocks
    assert users.login_wait(core, "alice", None, now=T0 + timedelta(minutes=15)) == 0
    assert users.login_wait(core, "bob", "198.51.100.1", now=T0 + timedelta(minutes=4)) == 0  # 5 < 20

    # a stricter policy from the settings: 2 failures in 1 minute
    strict = Service(core.settings.replace(login_max_failures=2, login_window_minutes=1))
    users.record_login_failure(strict, "carol", None, now=T0 + timedelta(minutes=20))
    assert users.login_wait(strict, "carol", None, now=T0 + timedelta(minutes=20)) == 0
    users.record_login_failure(strict, "carol", None, now=T0 + timedelta(minutes=20, seconds=10))
    assert users.login_wait(strict, "carol", None, now=T0 + timedelta(minutes=20, seconds=10)) == 50
    # writing pruned every row older than the window, Alice's and the address's included
    keys = {k for (k,) in core.conn.execute("SELECT key FROM login_failures")}
    assert keys == {"user:carol"}
    strict.close()


def test_bookkeeping_writes_do_not_bump_the_data_version(core):
    before = data_version(core.db)
    users.record_login_failure(core, "alice", "198.51.100.1")
    assert users.clear_login_failures(core, "ALICE") == 1
    assert users.clear_login_failures(core, "alice") == 0
    assert data_version(core.db) == before


def test_throttle_settings_are_validated():
    with pytest.raises(ConfigError, match="REFMATCH_LOGIN_MAX_FAILURES: must be at least 1"):
        load_settings(env={"REFMATCH_LOGIN_MAX_FAILURES": "0"})
    with pytest.raises(ConfigError, match="REFMATCH_LOGIN_WINDOW_MINUTES"):
        load_settings(env={"REFMATCH_LOGIN_WINDOW_MINUTES": "soon"})
    loaded = load_settings(env={"REFMATCH_LOGIN_MAX_FAILURES": "3", "REFMATCH_LOGIN_WINDOW_MINUTES": "30"})
    assert (loaded.login_max_failures, loaded.login_window_minutes) == (3, 30)


# -- the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def run(tmp_path):
    encoder = FakeEncoder()
    base = ["--db", str(tmp_path / "throttle.db"), "--index-dir", str(tmp_path / "idx")]

    def invoke(*args):
        return CliRunner().invoke(cli, [*args, *base], obj={"encoder": encoder})

    assert invoke("init").exit_code == 0  # only init, import and demo create a database
    return invoke


def test_user_unlock_clears_a_lock(core, run):
    users.add_user(core, "alice", "long enough", "sales")
    for _ in range(5):
        users.record_login_failure(core, "alice", "198.51.100.1")
    assert users.login_wait(core, "alice", "203.0.113.5") > 0

    out = run("user", "unlock", "ALICE")
    assert out.exit_code == 0, out.output
    assert out.output.strip() == "ALICE unlocked: cleared 5 failed sign-ins"
    assert users.login_wait(core, "alice", "203.0.113.5") == 0

    again = run("user", "unlock", "alice")
    assert again.exit_code == 0 and again.output.strip() == "alice has no failed sign-ins: nothing to unlock"
    unknown = run("user", "unlock", "bob")
    assert unknown.exit_code == 1 and "Error: unknown user: 'bob'" in unknown.output
    blank = run("user", "unlock", " ")
    assert blank.exit_code == 2 and "Error: username: must not be empty" in blank.output

    users.record_login_failure(core, "ghost", None)  # unknown usernames are counted, so unlockable
    assert run("user", "unlock", "ghost").output.strip() == "ghost unlocked: cleared 1 failed sign-in"


# -- Secure cookies --------------------------------------------------------------------------


def session_cookie(app) -> str:
    response = app.test_client().get("/login")  # the form's CSRF token starts the session
    cookies = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("refmatch_session=")]
    assert len(cookies) == 1, response.headers
    return cookies[0]


@pytest.mark.parametrize(
    ("secure", "config", "expected"),
    [(False, {}, False), (True, {}, True), (True, {"SESSION_COOKIE_SECURE": False}, False)],
    ids=["default", "setting", "explicit-config-wins"],
)
def test_secure_cookies_setting(world, secure, config, expected):
    app = make_app(world, REFMATCH_SETTINGS=world.settings.replace(secure_cookies=secure), **config)
    try:
        cookie = session_cookie(app)
    finally:
        app.extensions["refmatch"].service.close()
    assert ("; Secure" in cookie) is expected
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_secure_cookies_from_the_environment():
    assert load_settings(env={}).secure_cookies is False
    assert load_settings(env={"REFMATCH_SECURE_COOKIES": "yes"}).secure_cookies is True
    with pytest.raises(ConfigError, match="REFMATCH_SECURE_COOKIES: not a boolean"):
        load_settings(env={"REFMATCH_SECURE_COOKIES": "maybe"})


def test_serve_secure_cookies_flag(run, monkeypatch):
    import refmatch.web.server

    served = []
    monkeypatch.setattr(refmatch.web.server, "serve", lambda settings, *_args, **_kwargs: served.append(settings))
    assert run("serve").exit_code == 0
    out = run("serve", "--secure-cookies")
    assert out.exit_code == 0, out.output
    assert [s.secure_cookies for s in served] == [False, True]
    assert "behind HTTPS" in " ".join(run("serve", "--help").output.split())

    app = create_app({"REFMATCH_SETTINGS": served[1], "REFMATCH_ENCODER": FakeEncoder()})
    try:
        assert "; Secure" in session_cookie(app)
    finally:
        app.extensions["refmatch"].service.close()
