"""Signing in, sessions, CSRF and bearer tokens: nothing is reachable without a user."""

import pytest

from refmatch.app import users
from refmatch.web.api import document
from tests import web_support
from tests.web_support import PASSWORD, bearer, csrf_of, login, page_csrf, post_form

# the shared fixtures: pytest finds them as attributes of this module
app = web_support.app
cheap_hashes = web_support.cheap_hashes
client = web_support.client
tokens = web_support.tokens

UI_PAGES = ["/", "/accounts", "/accounts/P1", "/match", "/requests", "/requests/1", "/advocates"]
UI_POSTS = ["/logout", "/accounts/P1/requests", "/match", "/match/request", "/requests/1/transition"]


def api_operations():
    for path, item in document()["paths"].items():
        if not path.startswith("/api/"):
            continue
        for method in item:
            if method != "parameters":
                yield (
                    method.upper(),
                    path.replace("{request_id}", "1").replace("{run_id}", "1").replace("{external_id}", "P1"),
                )


@pytest.mark.parametrize("url", UI_PAGES)
def test_anonymous_pages_redirect_to_sign_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/login?next={url}"


@pytest.mark.parametrize("url", UI_POSTS)
def test_anonymous_posts_are_refused(client, url):
    assert client.post(url, data={"csrf_token": "x"}).status_code == 401


@pytest.mark.parametrize(("method", "url"), list(api_operations()), ids=lambda v: str(v))
def test_anonymous_api_calls_are_401(client, method, url):
    response = client.open(url, method=method, json={})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_sign_in_and_out(client):
    page = client.get("/login")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert '<label for="username">Username</label>' in html and '<label for="password">Password</label>' in html
    token = page_csrf(html)
    response = client.post(
        "/login", data={"username": "sales", "password": PASSWORD, "csrf_token": token, "next": "/accounts?q=P"}
    )
    assert response.status_code == 302 and response.headers["Location"] == "/accounts?q=P"
    assert "Test sales" in client.get("/").get_data(as_text=True)
    assert client.get("/login").status_code == 302  # already signed in
    assert post_form(client, "/logout").status_code == 302
    assert client.get("/").status_code == 302


def test_wrong_password_and_empty_fields_show_errors_beside_fields(client):
    token = page_csrf(client.get("/login").get_data(as_text=True))
    wrong = client.post("/login", data={"username": "sales", "password": "nope", "csrf_token": token})
    assert wrong.status_code == 400
    assert "Wrong username or password." in wrong.get_data(as_text=True)
    empty = client.post("/login", data={"username": "", "password": "", "csrf_token": token})
    html = empty.get_data(as_text=True)
    assert empty.status_code == 400
    assert 'aria-describedby="username-error"' in html and '<p class="field-error" id="username-error"' in html
    assert 'id="password-error"' in html and "Enter your password." in html


def test_next_cannot_leave_the_site(client):
    token = page_csrf(client.get("/login").get_data(as_text=True))
    for evil in ("https://evil.example/", "//evil.example/x", "javascript:alert(1)"):
        response = client.post(
            "/login", data={"username": "sales", "password": PASSWORD, "csrf_token": token, "next": evil}
        )
        assert response.headers["Location"] == "/"
        token = csrf_of(client)


def test_sign_in_form_needs_its_csrf_token(client):
    client.get("/login")
    response = client.post("/login", data={"username": "sales", "password": PASSWORD})
    assert response.status_code == 403
    assert "CSRF token missing or invalid" in response.get_data(as_text=True)


@pytest.mark.parametrize("url", UI_POSTS)
def test_every_form_refuses_a_missing_or_wrong_csrf_token(client, url):
    login(client, "manager")
    assert client.post(url, data={}).status_code == 403
    assert client.post(url, data={"csrf_token": "forged"}).status_code == 403
    assert client.get("/").status_code == 200  # still signed in: nothing happened


def test_session_api_calls_need_the_csrf_header_to_write(client):
    login(client, "sales")
    assert client.get("/api/v1/me").get_json()["username"] == "sales"  # reads need no header
    body = {"text": "regional distribution centres for retailers"}
    refused = client.post("/api/v1/match", json=body)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_failed"
    forged = client.post("/api/v1/match", json=body, headers={"X-CSRF-Token": "forged"})
    assert forged.status_code == 403
    allowed = client.post("/api/v1/match", json=body, headers={"X-CSRF-Token": csrf_of(client)})
    assert allowed.status_code == 200


def test_bearer_tokens(app, client):
    headers = bearer(app, "cs")
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200 and me.get_json()["role"] == "cs"
    # token requests carry no ambient credential: no CSRF header needed
    assert client.post("/api/v1/match", json={"text": "distribution"}, headers=headers).status_code == 200
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer rmt_not-a-token"})
    assert bad.status_code == 401 and bad.get_json()["error"]["message"] == "invalid or revoked API token"
    basic = client.get("/api/v1/me", headers={"Authorization": "Basic c2FsZXM6eA=="})
    assert basic.status_code == 401
    assert basic.get_json()["error"]["message"] == "Authorization header must be 'Bearer <token>'"


def test_revoked_token_is_refused(app, client):
    service = app.extensions["refmatch"].service
    token, token_id = users.create_token(service, "admin", "to revoke")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    users.revoke_token(service, token_id)
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_a_bearer_token_does_not_sign_in_the_ui(app, client):
    response = client.get("/accounts", headers=bearer(app, "admin"))
    assert response.status_code == 302  # the UI knows sessions only


def test_session_of_a_removed_user_is_dropped(app, client):
    login(client, "cs")
    db = app.extensions["refmatch"].service.db
    db.conn.execute("DELETE FROM users WHERE username = 'cs'")
    assert client.get("/").status_code == 302
    assert client.get("/api/v1/me").status_code == 401
