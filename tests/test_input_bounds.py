"""Cheap malformed input never reaches SQLite or the JSON parser's limits: every one is a 4xx
with the error envelope, never a 500 (found by a schema-driven fuzzer against the OpenAPI document)."""

from __future__ import annotations

import pytest

from tests import web_support
from tests.web_support import csrf_of, login

app = web_support.app
cheap_hashes = web_support.cheap_hashes
client = web_support.client
tokens = web_support.tokens

BIG = 2**63  # one more than SQLite's largest integer
LISTS = ["/api/v1/accounts", "/api/v1/needs", "/api/v1/advocates", "/api/v1/advocates/load", "/api/v1/requests",
         "/api/v1/at-risk"]  # fmt: skip


def envelope(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    body = response.get_json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return body["error"]


@pytest.mark.parametrize("url", LISTS)
@pytest.mark.parametrize("name,value", [("offset", BIG), ("offset", 10**30), ("limit", BIG), ("offset", -1)])
def test_out_of_range_paging_is_400(client, tokens, url, name, value):
    error = envelope(client.get(f"{url}?{name}={value}", headers=tokens["admin"]), 400)
    assert name in error["message"]


@pytest.mark.parametrize("request_id", [BIG, 966634357995707432960, 0])
def test_out_of_range_ids_are_404(client, tokens, request_id):
    envelope(client.get(f"/api/v1/requests/{request_id}", headers=tokens["admin"]), 404)
    response = client.post(f"/api/v1/requests/{request_id}/transition", headers=tokens["admin"],
                           json={"to_status": "approved"})  # fmt: skip
    envelope(response, 404)


def test_out_of_range_integers_in_a_body_are_400(client, tokens):
    for value in (BIG, -BIG - 1, 10**100):
        error = envelope(client.patch("/api/v1/accounts/P1", headers=tokens["admin"], json={"employees": value}), 400)
        assert "employees" in error["message"]


def test_a_deeply_nested_body_is_400(client, tokens):
    body = "[" * 10_000 + "]" * 10_000
    response = client.post("/api/v1/match", headers={**tokens["sales"], "Content-Type": "application/json"}, data=body)
    error = envelope(response, 400)
    assert "nest" in error["message"]


@pytest.mark.parametrize("url,method,body", [
    ("/api/v1/match", "post", '{"profile": "\\ud800 logistics"}'),
    ("/api/v1/accounts", "post", '{"external_id": "X\\udfff", "name": "n", "stage": "prospect"}'),
    ("/api/v1/accounts/P1", "patch", '{"name": "\\ud83d"}'),
    ("/api/v1/requests", "post", '{"advocate_external_id": "A1", "note": "\\udc00"}'),
    ("/api/v1/requests/1/transition", "post", '{"to_status": "approved", "note": "\\ud800"}'),
])  # fmt: skip
def test_lone_surrogates_are_400(client, tokens, url, method, body):
    headers = {**tokens["admin"], "Content-Type": "application/json"}
    error = envelope(getattr(client, method)(url, headers=headers, data=body), 400)
    assert "Unicode" in error["message"] or "surrogate" in error["message"]


@pytest.mark.parametrize("page", [BIG, 400000000000000000, 10**30])
@pytest.mark.parametrize("url", ["/accounts", "/requests", "/advocates", "/at-risk", "/onboarding"])
def test_ui_pages_out_of_range_are_not_500(client, url, page):
    login(client, "admin")
    response = client.get(f"{url}?page={page}")
    assert response.status_code in (200, 400), response.status_code


@pytest.mark.parametrize("request_id", [BIG, 10**30])
def test_ui_request_ids_out_of_range_are_404(client, request_id):
    login(client, "admin")
    assert client.get(f"/requests/{request_id}").status_code == 404
    response = client.post(
        f"/requests/{request_id}/transition", data={"csrf_token": csrf_of(client), "to_status": "approved"}
    )
    assert response.status_code == 404


def test_nan_and_infinity_are_not_json_numbers(client, tokens):
    headers = {**tokens["admin"], "Content-Type": "application/json"}
    for body in ('{"employees": NaN}', '{"health": Infinity}', '{"arr": 1e999}'):
        error = envelope(client.patch("/api/v1/accounts/P1", headers=headers, data=body), 400)
        assert "number" in error["message"], error


@pytest.mark.parametrize("url,method,field,body", [
    ("/api/v1/accounts/P1", "patch", "name", {"name": "N" * 201}),
    ("/api/v1/accounts/P1", "patch", "profile", {"profile": "p" * 10_001}),
    ("/api/v1/accounts/P1", "patch", "products", {"products": ["x"] * 101}),
    ("/api/v1/accounts", "post", "external_id", {"external_id": "X" * 101, "name": "n", "stage": "prospect"}),
    ("/api/v1/requests", "post", "note", {"advocate_external_id": "A1", "note": "n" * 900_000}),
    ("/api/v1/requests/1/transition", "post", "note", {"to_status": "approved", "note": "n" * 2_001}),
    ("/api/v1/match", "post", "text", {"text": "t" * 10_001}),
    ("/api/v1/match", "post", "needs", {"text": "t", "needs": ["n"] * 101}),
])  # fmt: skip
def test_field_lengths_are_bounded(client, tokens, url, method, field, body):
    error = envelope(getattr(client, method)(url, headers=tokens["admin"], json=body), 400)
    assert error["details"][0]["field"] == field, error


def test_the_core_holds_the_same_limits(app):
    """The workflow refuses what the API schema refuses, for callers that are not the API."""
    from refmatch.app import requests as workflow
    from refmatch.app import users
    from refmatch.domain.errors import InvalidInput, NotFound

    service = app.extensions["refmatch"].service
    admin = users.get_user_by_name(service, "admin")
    with pytest.raises(InvalidInput, match="note: too long: 2,001 characters"):
        workflow.create_request(service, admin, advocate_external_id="A1", note="n" * 2001)
    with pytest.raises(InvalidInput, match="not valid Unicode"):
        workflow.create_request(service, admin, advocate_external_id="A1", note="\ud800")
    with pytest.raises(NotFound):
        workflow.transition(service, admin, BIG, "approved")
    with pytest.raises(InvalidInput, match="offset: must be from 0 to 1,000,000,000"):
        workflow.list_requests(service, admin, offset=BIG)


def test_the_document_states_the_limits():
    from refmatch.web.api import document

    schemas = document()["components"]["schemas"]
    assert schemas["AdhocMatch"]["properties"]["text"]["maxLength"] == 10_000
    assert schemas["RequestCreate"]["properties"]["note"]["anyOf"][0]["maxLength"] == 2_000
    assert schemas["AccountPatch"]["properties"]["name"]["maxLength"] == 200
    assert schemas["AccountPatch"]["properties"]["employees"]["maximum"] == 100_000_000
    offsets = [p for p in document()["paths"]["/api/v1/accounts"]["get"]["parameters"] if p["name"] == "offset"]
    assert offsets[0]["schema"]["maximum"] == 1_000_000_000


def test_jsonl_rows_too_deep_too_long_or_not_unicode_are_named_errors(tmp_path):
    """The CLI import: one Error line naming row and column for each, no traceback, nothing written."""
    from click.testing import CliRunner

    from refmatch.cli import cli
    from refmatch.embed.fake import FakeEncoder

    rows = [
        '{"external_id": "OK1", "name": "Fine", "stage": "prospect"}',
        '{"external_id": "D1", "name": "Deep", "stage": "prospect", "products": ' + "[" * 10_000 + "]" * 10_000 + "}",
        '{"external_id": "S1", "name": "Bad \\ud800 name", "stage": "prospect"}',
        '{"external_id": "L1", "name": "' + "N" * 1_000_000 + '", "stage": "prospect"}',
        '{"external_id": "D2", "name": "n", "stage": "prospect", "extra": ' + "[" * 40 + "]" * 40 + "}",
    ]
    path = tmp_path / "accounts.jsonl"
    path.write_text("\n".join(rows) + "\n")
    base = ["--db", str(tmp_path / "r.db"), "--index-dir", str(tmp_path / "idx")]
    out = CliRunner().invoke(cli, ["import", "accounts", str(path), *base], obj={"encoder": FakeEncoder()})
    assert out.exit_code == 2 and "Traceback" not in out.output, out.output
    assert out.output.startswith("Error: ")
    assert "4 of 5 rows are invalid; nothing was imported" in out.output
    assert "row 2: not valid JSON here: nested deeper than 32 levels" in out.output
    assert "row 3, column 'name': not valid Unicode: a lone surrogate (\\ud800) at character 5" in out.output
    assert "row 4, column 'name': too long: 1,000,000 characters (max 200)" in out.output
    assert "row 5, column 'extra': nested deeper than 32 levels" in out.output


@pytest.mark.parametrize("method", ["TRACE", "PUT", "DELETE", "PATCH", "POST"])
def test_a_method_a_route_does_not_take_is_405_signed_in_or_not(app, tokens, method):
    from flask.testing import FlaskClient  # not the validating client: these are not in the document on purpose

    anonymous = FlaskClient(app)
    for url, headers in (("/healthz", {}), ("/readyz", {}), ("/api/v1/accounts/P1/matches", tokens["sales"])):
        response = anonymous.open(url, method=method, headers=headers)
        assert response.status_code == 405, (url, method, response.status_code)
        assert response.get_json()["error"]["code"] == "method_not_allowed"
        assert "GET" in response.headers["Allow"]


def test_empty_query_values_are_what_the_document_says(client, tokens):
    """An empty integer or enum is refused (the document types it), an empty search is no search."""
    headers = tokens["admin"]
    for url, field in (("/api/v1/accounts?offset=", "offset"), ("/api/v1/needs?status=", "status"),
                       ("/api/v1/accounts/P1/matches?k=", "k"), ("/api/v1/advocates?consent=", "consent")):  # fmt: skip
        assert envelope(client.get(url, headers=headers), 400)["details"][0]["field"] == field
    everything = client.get("/api/v1/accounts", headers=headers).get_json()["total"]
    assert client.get("/api/v1/accounts?q=&industry=", headers=headers).get_json()["total"] == everything
