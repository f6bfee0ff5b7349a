"""The app factory, health and readiness, the error envelope and the OpenAPI document."""

import json
import os
import re
import stat

import pytest
from openapi_spec_validator import validate

from refmatch.config import load_settings
from refmatch.web import create_app, secret_key_for
from refmatch.web.api import document
from refmatch.web.auth import PUBLIC
from tests import web_support
from tests.web_support import CHECKER, login, make_app

# the shared fixtures: pytest finds them as attributes of this module
app = web_support.app
cheap_hashes = web_support.cheap_hashes
client = web_support.client
tokens = web_support.tokens


def test_openapi_document_is_valid_3_1():
    doc = document()
    assert doc["openapi"].startswith("3.1")
    validate(doc)  # raises on any problem


def test_openapi_is_served_to_signed_in_callers_only(client, tokens):
    assert client.get("/api/v1/openapi.json").status_code == 401
    served = client.get("/api/v1/openapi.json", headers=tokens["sales"])
    assert served.status_code == 200
    assert served.get_json() == json.loads(json.dumps(document()))


OPENAPI = "/api/v1/openapi.json"  # the document itself, served by spectree


def test_every_api_route_is_documented(app):
    documented = {
        (path, method.upper())
        for path, item in document()["paths"].items()
        for method in item
        if method != "parameters"
    }
    for rule in app.url_map.iter_rules():
        if not (rule.rule.startswith("/api/") or rule.rule in ("/healthz", "/readyz")) or rule.rule == OPENAPI:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)  # Flask's <int:id> is the document's {id}
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (path, method) in documented, f"{method} {path} is not in the OpenAPI document"


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    body = ready.get_json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "indexes", "model"}
    assert all(c["ok"] for c in body["checks"].values())


class ColdEncoder:
    """Like the sentence-transformers encoder before its first use: named, but no model loaded."""

    name, dim, _model = "fake-bow", 256, None


def test_readiness_reports_the_index_lag_and_fails_on_a_cold_model(world):
    world.import_file("accounts", _accounts_csv(world))  # a new profile the indexes do not hold
    app = make_app(world, REFMATCH_WARM=False, REFMATCH_ENCODER=ColdEncoder())
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"]["ok"]
    assert body["checks"]["indexes"]["ok"]  # lagging, but served
    assert body["checks"]["indexes"]["pending_texts"] == 1
    assert body["checks"]["indexes"]["snapshot_age_s"] >= 0
    assert "1 texts changed since, not indexed yet" in body["checks"]["indexes"]["message"]
    assert body["checks"]["model"] == {"ok": False, "message": "fake-bow not loaded"}
    app.extensions["refmatch"].service.close()


def test_readiness_fails_without_any_index(service, tmp_path):
    from tests.conftest import account, write_csv

    service.import_file("accounts", write_csv(tmp_path / "a.csv", [account("X1")]))
    app = make_app(service, REFMATCH_WARM=False)
    body = app.test_client().get("/readyz").get_json()
    assert body["status"] == "not_ready" and not body["checks"]["indexes"]["ok"]
    assert "missing" in body["checks"]["indexes"]["message"]
    app.extensions["refmatch"].service.close()


def _accounts_csv(world):
    from tests.conftest import account, write_csv

    return write_csv(world.settings.db_path.parent / "more.csv", [account("NEW1")])


def test_only_health_readiness_login_and_its_stylesheet_are_public(app, client):
    """(and Slack's two POST endpoints, which check Slack's signature instead: tests/test_slack.py)"""
    public = set()
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.arguments - {"filename"}:
            continue
        url = "/static/style.css" if rule.endpoint == "static" else rule.rule
        with client.get(url) as response:
            if response.status_code == 200:
                public.add(rule.endpoint)
            else:
                assert response.status_code in (302, 401), (url, response.status_code)
    assert public == {"ops.healthz", "ops.readyz", "ui.login", "static"}
    assert set(PUBLIC) == public | {"slack.command", "slack.actions"}


def test_api_errors_use_one_envelope(client, tokens):
    missing = client.get("/api/v1/accounts/NOPE", headers=tokens["sales"])
    assert missing.status_code == 404
    assert missing.get_json() == {"error": {"code": "not_found", "message": "unknown account: 'NOPE'", "details": []}}
    wrong_method = client.delete("/api/v1/accounts", headers=tokens["admin"])
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"]["code"] == "method_not_allowed"
    no_route = client.get("/api/v1/nothing-here", headers=tokens["sales"])
    assert no_route.status_code == 404 and no_route.get_json()["error"]["code"] == "not_found"


def test_too_large_body_is_413_envelope(world):
    app = make_app(world, MAX_CONTENT_LENGTH=2048)
    from refmatch.app import users
    from tests.web_support import PASSWORD

    users.add_user(world, "sam", PASSWORD, "sales")
    token, _ = users.create_token(world, "sam", "t")
    response = app.test_client().post(
        "/api/v1/match", json={"text": "x" * 5000}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 413
    error = response.get_json()["error"]
    assert error["code"] == "too_large" and "2,048 bytes" in error["message"]
    app.extensions["refmatch"].service.close()


def test_internal_errors_are_500_without_traceback(app, client, tokens, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals: /etc/passwd")

    monkeypatch.setattr(app.extensions["refmatch"].service, "match_account", broken)
    monkeypatch.setattr(app.logger, "disabled", True)
    response = client.get("/api/v1/accounts/P1/matches", headers=tokens["sales"])
    assert response.status_code == 500
    body = response.get_data(as_text=True)
    assert json.loads(body) == {
        "error": {"code": "internal_error", "message": "internal error: the server logged the details", "details": []}
    }
    assert "Traceback" not in body and "secret internals" not in body
    login(client, "sales")
    page = client.get("/accounts/P1")
    assert page.status_code == 500 and "secret internals" not in page.get_data(as_text=True)


def test_session_cookie_is_httponly_and_samesite(client):
    login(client, "sales")
    cookie = client.get_cookie("refmatch_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"


def test_security_headers(client):
    response = client.get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_secret_key_is_random_persisted_and_private(tmp_path):
    settings = load_settings({"db": str(tmp_path / "data" / "r.db")}, env={})
    key = secret_key_for(settings)
    assert len(key) >= 48
    path = tmp_path / "data" / "r.db.secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert secret_key_for(settings) == key  # kept for the next start
    assert secret_key_for(settings.replace(secret_key="configured")) == "configured"
    assert load_settings(env={"REFMATCH_SECRET_KEY": "from-env"}).secret_key == "from-env"


def test_create_app_reads_settings_overrides(tmp_path):
    app = create_app({"REFMATCH_SETTINGS": {"db": str(tmp_path / "x.db"), "index_dir": str(tmp_path / "i")}})
    assert app.extensions["refmatch"].service.settings.db == str(tmp_path / "x.db")
    assert app.config["SECRET_KEY"] == (tmp_path / "x.db.secret").read_text().strip()
    app.extensions["refmatch"].service.close()


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_needs_no_session(client, path):
    assert client.get(path).status_code == 200
    assert "Cache-Control" not in client.get(path).headers


def test_every_api_response_in_these_tests_was_validated():
    assert CHECKER.checked > 0


def test_readiness_reports_a_database_that_cannot_be_written(world, monkeypatch):
    """A read-only file (or folder: SQLite writes its -wal beside it) makes every write fail: not ready."""
    import refmatch.web.state

    app = make_app(world)
    path = world.settings.db_path
    real = os.access
    # as root every file is writable, so the test plays the file system's answer
    monkeypatch.setattr(refmatch.web.state.os, "access", lambda p, mode: False if p == path else real(p, mode))
    body = app.test_client().get("/readyz").get_json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == {
        "ok": False,
        "message": f"read-only: {path} is not writable; every write would fail",
    }
    monkeypatch.undo()
    assert app.test_client().get("/readyz").get_json()["status"] == "ready"
    app.extensions["refmatch"].service.close()


def test_json_and_downloads_are_compressed_pages_are_not(app, tokens):
    import gzip

    from flask.testing import FlaskClient

    raw = FlaskClient(app, use_cookies=True)
    zipped = {"Accept-Encoding": "gzip"}
    answer = raw.get("/api/v1/accounts?limit=100", headers={**tokens["sales"], **zipped})
    assert answer.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in answer.headers["Vary"]
    assert json.loads(gzip.decompress(answer.get_data()))["total"] >= 10
    csv = raw.get("/api/v1/exports/advocates", headers={**tokens["sales"], **zipped})
    assert len(raw.get("/api/v1/exports/advocates", headers=tokens["sales"]).get_data()) > 1024, "too small to compress"
    assert csv.headers["Content-Encoding"] == "gzip" and gzip.decompress(csv.get_data()).startswith(b"external_id,")
    login(raw, "sales")
    page = raw.get("/accounts", headers=zipped)  # holds the CSRF token: never compressed (BREACH)
    assert page.status_code == 200 and "Content-Encoding" not in page.headers
