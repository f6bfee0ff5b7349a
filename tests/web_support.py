"""Fixtures and helpers for the web tests: the app over the ``world``, users of every role,
and a test client that validates every API response against the served OpenAPI document."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from refmatch.app import users
from refmatch.web import create_app
from refmatch.web.api import document

PASSWORD = "correct horse battery"
ROLE_USERS = {"sales": "sales", "cs": "cs", "manager": "reference_manager", "admin": "admin"}
DOC_URI = "urn:refmatch:openapi"


def _escape(part: str) -> str:
    return part.replace("~", "~0").replace("/", "~1")


class OpenAPIChecker:
    """Finds the operation of a request in the document and validates the response body against it."""

    def __init__(self, doc: dict[str, Any]):
        self.doc = doc
        self.registry = Registry().with_resource(
            DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012)
        )
        self.templates = [(re.compile("^" + re.sub(r"\{[^/]+\}", "[^/]+", path) + "$"), path) for path in doc["paths"]]
        self.checked = 0

    def template(self, path: str) -> str | None:
        for pattern, template in self.templates:
            if pattern.match(path):
                return template
        return None

    def validate(self, method: str, url: str, status: int, content_type: str, body: Any) -> None:
        path = urlsplit(url).path
        template = self.template(path)
        assert template is not None, f"{path} is not in the OpenAPI document"
        item = self.doc["paths"][template]
        method = method.lower()
        assert method in item, f"{method.upper()} {template} is not in the OpenAPI document (got {status})"
        responses = item[method]["responses"]
        key = str(status) if str(status) in responses else "default"
        assert key in responses, f"{method.upper()} {template}: status {status} is not documented"
        response = responses[key]
        pointer = f"/paths/{_escape(template)}/{method}/responses/{key}"
        if "$ref" in response:
            pointer = response["$ref"].removeprefix("#")
            response = self.doc["components"]["responses"][pointer.rsplit("/", 1)[1]]
        media = content_type.split(";")[0].strip()
        if media != "application/json":  # a file (an export): its media type must be one the document lists
            assert media in response.get("content", {}), f"{method.upper()} {path}: {content_type} is not documented"
            self.checked += 1
            return
        schema = {"$ref": f"{DOC_URI}#{pointer}/content/{_escape('application/json')}/schema"}
        Draft202012Validator(schema, registry=self.registry).validate(body)
        self.checked += 1


CHECKER = OpenAPIChecker(document())


class ValidatingClient(FlaskClient):
    """A test client that checks every /api/, /healthz and /readyz response against the document."""

    def open(self, *args: Any, **kwargs: Any):  # noqa: ANN202 - the test response
        response = super().open(*args, **kwargs)
        request = response.request
        path = request.path
        if path == "/api/v1/openapi.json":  # the document itself: an object, or the error envelope
            body = response.get_json()
            assert response.status_code != 200 or body.get("openapi", "").startswith("3.1")
        elif path.startswith("/api/") or path in ("/healthz", "/readyz"):
            template = CHECKER.template(path)
            if template is None or request.method.lower() not in CHECKER.doc["paths"][template]:
                # not an operation of the document: a 404 or 405, still in the one envelope
                assert response.status_code in (404, 405), (request.method, path, response.status_code)
                Draft202012Validator(
                    {"$ref": f"{DOC_URI}#/components/schemas/Error"}, registry=CHECKER.registry
                ).validate(response.get_json())
            else:
                json_body = response.get_json() if response.is_json else None
                CHECKER.validate(request.method, path, response.status_code, response.content_type, json_body)
        return response


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch):
    """scrypt costs ~0.2 s a hash; these tests check behaviour, not cost."""
    monkeypatch.setattr(users, "PASSWORD_METHOD", "pbkdf2:sha256:1000")


def make_app(service, **config: Any) -> Flask:
    app = create_app(
        {
            "TESTING": True,
            "SECRET_KEY": "test-secret",
            "REFMATCH_SETTINGS": service.settings,
            "REFMATCH_ENCODER": service.encoder,
            "REFMATCH_WARM": True,
            **config,
        }
    )
    app.test_client_class = ValidatingClient
    return app


@pytest.fixture
def app(world):
    for username, role in ROLE_USERS.items():
        users.add_user(world, username, PASSWORD, role, display_name=f"Test {role}")
    app = make_app(world)
    yield app
    app.extensions["refmatch"].service.close()


@pytest.fixture
def client(app) -> ValidatingClient:
    return app.test_client()


def csrf_of(client: FlaskClient) -> str:
    with client.session_transaction() as session:
        return session.get("csrf", "")


def page_csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF field"
    return found.group(1)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> None:
    """Sign in through the form (signing out whoever was signed in)."""
    with client.session_transaction() as session:
        session.clear()
    token = page_csrf(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)


def post_form(client: FlaskClient, url: str, data: dict[str, Any] | None = None, **kwargs: Any):
    """POST a form the way the browser does: with the session's CSRF token."""
    return client.post(url, data={"csrf_token": csrf_of(client), **(data or {})}, **kwargs)


def bearer(app: Flask, username: str) -> dict[str, str]:
    token, _ = users.create_token(app.extensions["refmatch"].service, username, "tests")
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(app) -> dict[str, dict[str, str]]:
    """Authorization headers for one user of each role, by username."""
    return {username: bearer(app, username) for username in ROLE_USERS}


class Clock:
    """The sign-in and session clock (``users.utcnow``), moved by hand."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def fake_clock(monkeypatch, start: datetime) -> Clock:
    fake = Clock(start)
    monkeypatch.setattr(users, "utcnow", fake)
    return fake
