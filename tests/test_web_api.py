"""The JSON API through the Flask test client. Every response is validated against the
served OpenAPI document by the client itself (tests/web_support.py)."""

import threading
import time

import pytest

from refmatch.app.requests import STATES, TRANSITIONS
from tests import web_support
from tests.web_support import ROLE_USERS

# the shared fixtures: pytest finds them as attributes of this module
app = web_support.app
cheap_hashes = web_support.cheap_hashes
client = web_support.client
tokens = web_support.tokens

ROLES = list(ROLE_USERS)
MANAGERS = ("manager", "admin")


def create(client, headers, advocate="A1", seeker="P1", **extra):
    body = {"advocate_external_id": advocate, "seeker_external_id": seeker, "note": "a logistics deal", **extra}
    return client.post("/api/v1/requests", json=body, headers=headers)


# -- who may call what ------------------------------------------------------------------

READS = [
    "/api/v1/me",
    "/api/v1/accounts",
    "/api/v1/accounts/P1",
    "/api/v1/accounts/P1/matches",
    "/api/v1/needs",
    "/api/v1/advocates",
    "/api/v1/advocates/load",
    "/api/v1/requests",
    "/api/v1/openapi.json",
    "/api/v1/exports/accounts",
    "/api/v1/exports/advocates",
    "/api/v1/exports/requests",
    "/api/v1/exports/accounts/P1/matches?format=xlsx",
    "/api/v1/forecast",
    "/api/v1/exports/forecast?by=industry",
    "/api/v1/outcomes",
    "/api/v1/recruits?by=industry",
    "/api/v1/exports/recruits",
    "/api/v1/exports/outcomes?table=advocates",
]


def test_outcomes_api_and_a_bad_table(client, tokens):
    body = client.get("/api/v1/outcomes", headers=tokens["sales"]).get_json()
    assert body["deals"] == {"key": "all", "won": 0, "lost": 0, "open": 0, "influenced_arr": 0.0, "win_rate": None}
    bad = client.get("/api/v1/exports/outcomes?table=regions", headers=tokens["sales"])
    assert bad.status_code == 400 and "table" in bad.get_data(as_text=True)


def test_forecast_api_and_its_file(client, tokens):
    body = client.get("/api/v1/forecast?by=product&quarters=3&as_of=2027-01-10", headers=tokens["sales"]).get_json()
    assert body["by"] == ["product"] and body["quarters"] == ["2027-Q1", "2027-Q2", "2027-Q3"]
    flow = next(s for s in body["segments"] if s["name"] == "Flow WMS")
    assert flow["prospects"] == 1 and flow["advocates"] >= 1 and len(flow["quarters"]) == 3
    csv = client.get("/api/v1/exports/forecast?by=product&quarters=3&as_of=2027-01-10", headers=tokens["sales"])
    assert csv.mimetype == "text/csv" and csv.get_data(as_text=True).startswith("product,open_prospects,")
    for bad in ("by=size", "quarters=0", "as_of=soon"):
        answer = client.get(f"/api/v1/forecast?{bad}", headers=tokens["sales"])
        assert answer.status_code == 400 and bad.split("=")[0] in answer.get_data(as_text=True)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", READS)
def test_every_role_may_read(client, tokens, role, url):
    assert client.get(url, headers=tokens[role]).status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_account_writes_are_for_reference_managers_and_admins(client, tokens, role):
    created = client.post(
        "/api/v1/accounts", json={"external_id": f"N-{role}", "name": "New Co", "stage": "prospect"},
        headers=tokens[role],
    )  # fmt: skip
    updated = client.patch("/api/v1/accounts/P1", json={"health": 70}, headers=tokens[role])
    allowed = role in MANAGERS
    assert created.status_code == (201 if allowed else 403)
    assert updated.status_code == (200 if allowed else 403)
    if not allowed:
        assert created.get_json()["error"]["code"] == "forbidden"


@pytest.mark.parametrize("role", ROLES)
def test_every_role_may_match_and_ask_for_a_reference(client, tokens, role):
    assert client.post("/api/v1/match", json={"text": "distribution centres"}, headers=tokens[role]).status_code == 200
    assert create(client, tokens[role]).status_code == 201


@pytest.mark.parametrize("role", ROLES)
def test_only_managers_move_requests_along(client, tokens, role):
    request_id = create(client, tokens["sales"]).get_json()["id"]
    response = client.post(
        f"/api/v1/requests/{request_id}/transition", json={"to_status": "approved"}, headers=tokens[role]
    )
    assert response.status_code == (200 if role in MANAGERS else 403)


# -- accounts ------------------------------------------------------------------------------


def test_list_accounts_search_filters_and_pagination(client, tokens):
    h = tokens["sales"]
    everything = client.get("/api/v1/accounts", headers=h).get_json()
    assert everything["total"] == 13 and len(everything["items"]) == 13
    assert everything["limit"] == 50 and everything["offset"] == 0
    first = everything["items"][0]
    assert first["external_id"] == "A1" and first["products"] == ["Flow WMS"] and first["is_advocate"] is True
    page = client.get("/api/v1/accounts?limit=5&offset=10", headers=h).get_json()
    assert page["total"] == 13 and [a["external_id"] for a in page["items"]] == [
        a["external_id"] for a in everything["items"][10:15]
    ]
    retail = client.get("/api/v1/accounts?industry=Retail", headers=h).get_json()
    assert [a["external_id"] for a in retail["items"]] == ["A3"]
    na = client.get("/api/v1/accounts?region=NA&stage=adoption", headers=h).get_json()
    assert na["total"] == 1
    prospects = client.get("/api/v1/accounts?stage=prospect", headers=h).get_json()
    assert {a["external_id"] for a in prospects["items"]} == {"P1", "A7"}
    search = client.get("/api/v1/accounts?q=company%20p1", headers=h).get_json()
    assert [a["external_id"] for a in search["items"]] == ["P1"]
    assert search["items"][0]["open_needs"] == 2
    ledger = client.get("/api/v1/accounts?products=Ledger", headers=h).get_json()  # once ignored: all 13
    assert [a["external_id"] for a in ledger["items"]] == ["A10"]
    by_need = client.get("/api/v1/accounts?q=azure", headers=h).get_json()  # a need's text
    assert "P1" in {a["external_id"] for a in by_need["items"]}


@pytest.mark.parametrize(
    ("query", "field"), [("limit=0", "limit"), ("limit=201", "limit"), ("offset=-1", "offset"), ("limit=x", "limit")]
)
def test_bad_paging_is_400_naming_the_field(client, tokens, query, field):
    response = client.get(f"/api/v1/accounts?{query}", headers=tokens["sales"])
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input" and error["details"][0]["field"] == field


def test_get_account_shows_contacts_to_managers_only(client, tokens):
    sales = client.get("/api/v1/accounts/A1", headers=tokens["sales"]).get_json()
    manager = client.get("/api/v1/accounts/A1", headers=tokens["manager"]).get_json()
    assert sales["name"] == "Company A1" and sales["stage"] == "value" and sales["size_band"] == "250-999"
    assert {n["need"] for n in sales["needs"]} == {
        "consolidate regional warehouses onto one wms",
        "single sign on with azure ad",
    }
    assert sales["advocate"]["consent"] is True and sales["advocate"]["capacity"] == 3
    assert sales["advocate"]["contact"] is None
    assert manager["advocate"]["contact"] == {"name": "Pat Murphy", "title": None, "email": None}
    assert client.get("/api/v1/accounts/C1", headers=tokens["sales"]).get_json()["advocate"] is None


def test_create_account_validates_like_an_import_and_is_matchable_at_once(client, tokens):
    h = tokens["admin"]
    body = {
        "external_id": "P9",
        "name": "Harbour Freight",
        "stage": "prospect",
        "industry": "Logistics",
        "employees": 450,
        "region": "EMEA",
        "products": ["Flow WMS"],
        "profile": "runs regional distribution centres for retailers",
    }
    response = client.post("/api/v1/accounts", json=body, headers=h)
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/accounts/P9"
    account = response.get_json()
    assert account["external_id"] == "P9" and account["size_band"] == "250-999" and account["needs"] == []
    matches = client.get("/api/v1/accounts/P9/matches", headers=h)
    assert matches.status_code == 200 and matches.get_json()["seeker"] == {
        "external_id": "P9",
        "name": "Harbour Freight",
    }
    again = client.post("/api/v1/accounts", json=body, headers=h)
    assert again.status_code == 409
    assert again.get_json()["error"]["details"] == [{"field": "external_id", "message": "already exists"}]


def test_create_account_errors_name_every_field(client, tokens):
    body = {"external_id": "X", "employees": "many", "stage": "lead", "health": 300, "colour": "red"}
    response = client.post("/api/v1/accounts", json=body, headers=tokens["admin"])
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input"
    fields = {d["field"] for d in error["details"]}
    assert fields == {"colour", "name", "employees", "stage", "health"}
    messages = {d["field"]: d["message"] for d in error["details"]}
    assert messages["employees"] == "must be an integer >= 0, got 'many'"
    assert messages["name"] == "a value is required"


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "bad_json"),
        (b"[1, 2]", "application/json", 422, "unprocessable"),
        (b"name=x", "application/x-www-form-urlencoded", 400, "bad_json"),
    ],
)
def test_bodies_must_be_json_objects(client, tokens, data, content_type, status, code):
    response = client.post("/api/v1/accounts", data=data, content_type=content_type, headers=tokens["admin"])
    assert response.status_code == status and response.get_json()["error"]["code"] == code


def test_update_account_merges_and_revalidates(client, tokens):
    h = tokens["manager"]
    response = client.patch("/api/v1/accounts/P1", json={"health": 55.5, "owner": "ann@example.com"}, headers=h)
    assert response.status_code == 200
    account = response.get_json()
    assert account["health"] == 55.5 and account["owner"] == "ann@example.com" and account["name"] == "Company P1"
    cleared = client.patch("/api/v1/accounts/P1", json={"owner": None}, headers=h).get_json()
    assert cleared["owner"] is None
    stage = client.patch("/api/v1/accounts/P1", json={"stage": "onboarding"}, headers=h).get_json()
    assert [s["stage"] for s in stage["stage_history"]][-1] == "onboarding"
    bad = client.patch("/api/v1/accounts/P1", json={"health": -1}, headers=h)
    assert bad.status_code == 400 and bad.get_json()["error"]["details"][0]["field"] == "health"
    rename = client.patch("/api/v1/accounts/P1", json={"external_id": "P2"}, headers=h)
    assert rename.status_code == 400 and rename.get_json()["error"]["details"][0]["field"] == "external_id"
    assert client.patch("/api/v1/accounts/NOPE", json={}, headers=h).status_code == 404


# -- matching ----------------------------------------------------------------------------------


def test_matches_for_an_account_have_the_documented_shape(client, tokens):
    response = client.get("/api/v1/accounts/P1/matches?k=3", headers=tokens["sales"])
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"seeker", "purpose", "matches", "note", "model", "index"}
    assert body["seeker"] == {"external_id": "P1", "name": "Company P1"}
    assert {m["strength"] for m in body["matches"]} <= {"strong", "fair", "weak"}
    assert body["purpose"] == "reference" and body["model"] == "fake-bow"
    assert set(body["index"]) == {"built_at", "data_version"}
    assert [m["advocate"]["external_id"] for m in body["matches"]] == ["A1", "A2", "A3"]
    first = body["matches"][0]
    assert first["rank"] == 1 and 0 < first["score"] <= 1
    assert set(first["components"]) >= {"need_coverage", "profile_similarity", "industry", "fatigue"}
    assert first["reasons"][0].startswith("met 2 of your 2 open needs")


def test_matches_take_purpose_k_and_reference_type(client, tokens):
    h = tokens["cs"]
    mentor = client.get("/api/v1/accounts/C1/matches?purpose=mentor&k=1", headers=h).get_json()
    assert mentor["purpose"] == "mentor" and len(mentor["matches"]) == 1
    for purpose in ("mentor", "retention"):  # a prospect is told what to ask for
        refused = client.get(f"/api/v1/accounts/P1/matches?purpose={purpose}", headers=h)
        assert refused.status_code == 400 and refused.get_json()["error"]["details"][0]["field"] == "purpose"
        assert "ask for a reference" in refused.get_json()["error"]["message"]
    logos = client.get("/api/v1/accounts/P1/matches?reference_type=logo", headers=h).get_json()
    assert [m["advocate"]["external_id"] for m in logos["matches"]] == ["A11"]  # the only one offering logos


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("purpose=sales", "purpose"),
        ("k=0", "k"),
        ("k=101", "k"),
        ("k=two", "k"),
        ("reference_type=fax", "reference_type"),
    ],
)
def test_bad_match_parameters_are_400_naming_the_field(client, tokens, query, field):
    response = client.get(f"/api/v1/accounts/P1/matches?{query}", headers=tokens["sales"])
    assert response.status_code == 400
    assert response.get_json()["error"]["details"][0]["field"] == field


def test_matches_for_an_unknown_account_are_404(client, tokens):
    assert client.get("/api/v1/accounts/NOPE/matches", headers=tokens["sales"]).status_code == 404


def test_an_import_does_not_take_matching_down(app, client, tokens, world):
    from tests.conftest import account, write_csv

    world.import_file("accounts", write_csv(world.settings.db_path.parent / "x.csv", [account("NEW")]))
    response = client.get("/api/v1/accounts/P1/matches", headers=tokens["sales"])
    assert response.status_code == 200
    assert [m["advocate"]["external_id"] for m in response.get_json()["matches"]][0] == "A1"
    new = client.get("/api/v1/accounts/NEW/matches", headers=tokens["sales"])  # its own text embedded now
    assert new.status_code == 200


def test_adhoc_match(client, tokens):
    body = {
        "text": "P9 runs distribution centres for retailers",
        "needs": ["consolidate regional warehouses onto one wms", "single sign on with azure ad"],
        "industry": "Logistics",
        "employees": 600,
        "region": "EMEA",
        "products": ["Flow WMS"],
        "k": 2,
        "name": "Harbour Freight",
        "do_not_match": ["A8"],
    }
    response = client.post("/api/v1/match", json=body, headers=tokens["sales"])
    assert response.status_code == 200
    result = response.get_json()
    assert result["seeker"] == {"external_id": None, "name": "Harbour Freight"}
    assert [m["advocate"]["external_id"] for m in result["matches"]] == ["A1", "A2"]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"text"}),
        ({"text": "  "}, {"text"}),
        ({"text": "x", "needs": "one need"}, {"needs"}),
        ({"text": "x", "k": "5", "employees": True}, {"k", "employees"}),
        ({"text": "x", "k": 0}, {"k"}),
        ({"text": "x", "stage": "lead"}, {"stage"}),
        ({"text": "x", "purpose": "sales"}, {"purpose"}),
        ({"text": "x", "colour": "red"}, {"colour"}),
        ({"text": "x", "needs": ["fine", ""]}, {"needs[1]"}),
        ({"text": "x", "purpose": "mentor"}, {"purpose"}),
    ],
)
def test_adhoc_match_errors_name_the_fields(client, tokens, body, fields):
    response = client.post("/api/v1/match", json=body, headers=tokens["sales"])
    assert response.status_code == 400
    assert {d["field"] for d in response.get_json()["error"]["details"]} == fields


# -- needs and advocates --------------------------------------------------------------------------


def test_needs_by_account_and_status(client, tokens):
    h = tokens["sales"]
    p1 = client.get("/api/v1/needs?account=P1", headers=h).get_json()
    assert p1["total"] == 2 and {n["status"] for n in p1["items"]} == {"open", "in_progress"}
    met = client.get("/api/v1/needs?status=met&q=azure&limit=3", headers=h).get_json()
    assert met["total"] == 10 and len(met["items"]) == 3 and all(n["status"] == "met" for n in met["items"])
    bad = client.get("/api/v1/needs?status=done", headers=h)
    assert bad.status_code == 400 and bad.get_json()["error"]["details"][0]["field"] == "status"


def test_advocates_list_and_filters(client, tokens):
    h = tokens["sales"]
    everything = client.get("/api/v1/advocates", headers=h).get_json()
    assert everything["total"] == 11
    assert all(a["contact"] is None for a in everything["items"])
    a5 = next(a for a in everything["items"] if a["external_id"] == "A5")
    assert (a5["capacity"], a5["used_this_quarter"], a5["remaining"]) == (0, 0, 0)
    no_consent = client.get("/api/v1/advocates?consent=false", headers=h).get_json()
    assert [a["external_id"] for a in no_consent["items"]] == ["A4"]
    logos = client.get("/api/v1/advocates?reference_type=logo", headers=h).get_json()
    assert [a["external_id"] for a in logos["items"]] == ["A11"]
    near = client.get("/api/v1/advocates?near_capacity=true", headers=h).get_json()
    assert [a["external_id"] for a in near["items"]] == ["A5"]
    found = client.get("/api/v1/advocates?q=a10", headers=h).get_json()
    assert [a["external_id"] for a in found["items"]] == ["A10"]
    managers = client.get("/api/v1/advocates?q=a1&limit=1", headers=tokens["manager"]).get_json()
    assert managers["items"][0]["contact"]["name"] == "Pat Murphy"
    assert client.get("/api/v1/advocates?consent=maybe", headers=h).status_code == 400


def test_advocate_load_view_moves_with_approvals(client, tokens):
    def load(role):
        items = client.get("/api/v1/advocates/load?limit=100", headers=tokens[role]).get_json()["items"]
        return {a["external_id"]: a for a in items}

    before = load("sales")["A1"]
    assert (before["used_this_quarter"], before["remaining"], before["contact"]) == (0, 3, None)
    request_id = create(client, tokens["sales"]).get_json()["id"]
    client.post(f"/api/v1/requests/{request_id}/transition", json={"to_status": "approved"}, headers=tokens["manager"])
    after = load("manager")["A1"]
    assert (after["used_this_quarter"], after["remaining"]) == (1, 2)
    assert after["contact"] == {"name": "Pat Murphy", "title": None, "email": None}
    near = client.get("/api/v1/advocates/load?near_capacity=1", headers=tokens["sales"]).get_json()
    assert "A5" in {a["external_id"] for a in near["items"]}


# -- reference requests ------------------------------------------------------------------------------


def test_request_lifecycle(client, tokens):
    created = create(client, tokens["sales"], reference_type="call")
    assert created.status_code == 201
    view = created.get_json()
    assert created.headers["Location"] == f"/api/v1/requests/{view['id']}"
    assert view["status"] == "requested" and view["requested_by"] == "sales"
    assert view["seeker"] == {"external_id": "P1", "name": "Company P1"}
    assert view["allowed_actions"] == ["cancelled"] and view["contact"] is None
    assert [e["to_status"] for e in view["events"]] == ["requested"]
    rid = view["id"]
    url = f"/api/v1/requests/{rid}/transition"
    m = tokens["manager"]
    assert client.post(url, json={"to_status": "approved", "note": "ok"}, headers=m).get_json()["status"] == "approved"
    scheduled = client.post(url, json={"to_status": "scheduled", "scheduled_for": "2030-01-15"}, headers=m).get_json()
    assert scheduled["scheduled_for"] == "2030-01-15"
    done = client.post(
        url,
        json={"to_status": "completed", "rating": 5, "deal_outcome": "won", "influenced_arr": 120000},
        headers=m,
    ).get_json()
    assert (done["status"], done["rating"], done["deal_outcome"], done["influenced_arr"]) == (
        "completed", 5, "won", 120000.0,
    )  # fmt: skip
    got = client.get(f"/api/v1/requests/{rid}", headers=tokens["sales"]).get_json()
    assert [(e["from_status"], e["to_status"]) for e in got["events"]] == [
        (None, "requested"), ("requested", "approved"), ("approved", "scheduled"), ("scheduled", "completed"),
    ]  # fmt: skip
    assert got["contact"] == {"name": "Pat Murphy", "title": None, "email": None}  # the requester, once approved
    mine = client.get("/api/v1/requests?mine=true", headers=tokens["sales"]).get_json()
    assert [r["id"] for r in mine["items"]] == [rid]
    assert client.get("/api/v1/requests?mine=true", headers=tokens["cs"]).get_json()["total"] == 0
    assert client.get("/api/v1/requests?status=completed", headers=m).get_json()["total"] == 1
    assert client.get("/api/v1/requests?advocate=A2", headers=m).get_json()["total"] == 0
    assert client.get("/api/v1/requests?status=lost", headers=m).status_code == 400
    assert client.get("/api/v1/requests/999", headers=m).status_code == 404
    assert client.post("/api/v1/requests/999/transition", json={"to_status": "approved"}, headers=m).status_code == 404


PATHS = {
    "requested": [],
    "approved": ["approved"],
    "declined": ["declined"],
    "scheduled": ["approved", "scheduled"],
    "completed": ["approved", "scheduled", "completed"],
    "cancelled": ["cancelled"],
}


@pytest.mark.parametrize("target", STATES)
@pytest.mark.parametrize("start", STATES)
def test_every_transition_legal_and_illegal(client, tokens, start, target):
    m = tokens["manager"]
    rid = create(client, tokens["sales"]).get_json()["id"]
    url = f"/api/v1/requests/{rid}/transition"
    for step in PATHS[start]:
        assert client.post(url, json={"to_status": step}, headers=m).status_code == 200
    response = client.post(url, json={"to_status": target}, headers=m)
    if target in TRANSITIONS[start]:
        assert response.status_code == 200 and response.get_json()["status"] == target
    else:
        assert response.status_code == 409
        error = response.get_json()["error"]
        assert error["code"] == "conflict" and f"from {start} to {target}" in error["message"]


def test_the_requester_may_cancel_their_own_request_only(client, tokens):
    rid = create(client, tokens["sales"]).get_json()["id"]
    url = f"/api/v1/requests/{rid}/transition"
    assert client.post(url, json={"to_status": "cancelled"}, headers=tokens["cs"]).status_code == 403
    assert client.post(url, json={"to_status": "cancelled"}, headers=tokens["sales"]).status_code == 200


def test_transition_body_errors_name_the_fields(client, tokens):
    rid = create(client, tokens["sales"]).get_json()["id"]
    url = f"/api/v1/requests/{rid}/transition"
    m = tokens["manager"]
    missing = client.post(url, json={}, headers=m)
    assert missing.status_code == 400 and missing.get_json()["error"]["details"][0]["field"] == "to_status"
    unknown = client.post(url, json={"to_status": "won"}, headers=m)
    assert unknown.status_code == 400 and unknown.get_json()["error"]["details"][0]["field"] == "to_status"
    typed = client.post(url, json={"to_status": "approved", "rating": "five"}, headers=m)
    assert typed.status_code == 400 and typed.get_json()["error"]["details"][0]["field"] == "rating"
    misplaced = client.post(url, json={"to_status": "approved", "rating": 4}, headers=m)
    assert misplaced.status_code == 400 and misplaced.get_json()["error"]["details"][0]["field"] == "rating"


def test_consent_and_capacity_refusals(client, tokens):
    s = tokens["sales"]
    no_consent = create(client, s, advocate="A4")
    assert no_consent.status_code == 409
    error = no_consent.get_json()["error"]
    assert error["code"] == "conflict" and "does not consent" in error["message"]
    assert error["details"][0]["field"] == "advocate_external_id"
    full = create(client, s, advocate="A5")
    assert full.status_code == 409 and "at capacity: 0 of 0" in full.get_json()["error"]["message"]
    not_offered = create(client, s, advocate="A11", reference_type="call")
    assert not_offered.status_code == 409
    # a sales rep cannot override; a reference manager can, with a reason that is recorded
    assert create(client, s, advocate="A5", override_reason="strategic deal").status_code == 409
    override = create(client, tokens["manager"], advocate="A5", override_reason="strategic deal")
    assert override.status_code == 201 and override.get_json()["override_reason"] == "strategic deal"


def test_capacity_fills_up_with_approvals(client, tokens):
    m, s = tokens["manager"], tokens["sales"]
    for seeker in ("P1", "A7", "C1"):  # A1 offers 3 a quarter
        rid = create(client, s, seeker=seeker).get_json()["id"]
        ok = client.post(f"/api/v1/requests/{rid}/transition", json={"to_status": "approved"}, headers=m)
        assert ok.status_code == 200
    assert create(client, s, seeker="A9").status_code == 409
    matches = client.get("/api/v1/accounts/P1/matches", headers=s).get_json()
    assert "A1" not in [x["advocate"]["external_id"] for x in matches["matches"]]


def test_request_errors(client, tokens):
    s = tokens["sales"]
    assert create(client, s, advocate="NOPE").status_code == 404
    bad_type = create(client, s, reference_type="fax")
    assert bad_type.status_code == 400 and bad_type.get_json()["error"]["details"][0]["field"] == "reference_type"
    missing = client.post("/api/v1/requests", json={"note": "x"}, headers=s)
    assert missing.status_code == 400 and missing.get_json()["error"]["details"][0]["field"] == "advocate_external_id"


def test_writes_are_serialized(app, client, tokens):
    lock = app.extensions["refmatch"].write_lock
    results = []
    with lock:
        worker = threading.Thread(target=lambda: results.append(create(client, tokens["sales"]).status_code))
        worker.start()
        time.sleep(0.3)
        assert worker.is_alive() and not results  # waiting for the lock
    worker.join(5)
    assert results == [201]


# -- exports ---------------------------------------------------------------------------------


def _csv(response) -> list[dict[str, str]]:
    import csv
    import io

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.mimetype == "text/csv" and response.headers["Content-Disposition"].startswith("attachment;")
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_exports_give_the_lists_as_files_with_the_same_filters(client, tokens):
    created = create(client, tokens["sales"]).get_json()
    m = tokens["manager"]
    listed = client.get("/api/v1/accounts?limit=200", headers=m).get_json()["items"]
    exported = _csv(client.get("/api/v1/exports/accounts", headers=m))
    assert [r["external_id"] for r in exported] == [a["external_id"] for a in listed]
    assert [r["external_id"] for r in _csv(client.get("/api/v1/exports/accounts?q=P1", headers=m))] == ["P1"]
    requests = _csv(client.get("/api/v1/exports/requests?status=requested", headers=m))
    assert [(r["id"], r["advocate_external_id"], r["seeker_external_id"]) for r in requests] == [
        (str(created["id"]), "A1", "P1")
    ]
    assert _csv(client.get("/api/v1/exports/requests?status=approved", headers=m)) == []
    advocates = _csv(client.get("/api/v1/exports/advocates?consent=true", headers=m))
    assert "A1" in {r["external_id"] for r in advocates} and "A4" not in {r["external_id"] for r in advocates}
    assert any(r["contact_name"] == "Pat Murphy" for r in advocates)
    sales_view = _csv(client.get("/api/v1/exports/advocates?consent=true", headers=tokens["sales"]))
    assert {r["contact_name"] for r in sales_view} == {""}  # contacts only for those who may see them
    api_matches = client.get("/api/v1/accounts/P1/matches?k=3", headers=m).get_json()["matches"]
    matches = _csv(client.get("/api/v1/exports/accounts/P1/matches?k=3", headers=m))
    assert [r["advocate_external_id"] for r in matches] == [x["advocate"]["external_id"] for x in api_matches]
    assert (
        'filename="refmatch-P1-reference-matches-'
        in client.get("/api/v1/exports/accounts/P1/matches", headers=m).headers["Content-Disposition"]
    )


def test_an_export_as_xlsx_and_its_errors(client, tokens):
    import io

    import openpyxl

    m = tokens["manager"]
    response = client.get("/api/v1/exports/accounts?format=xlsx", headers=m)
    assert response.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    assert [c.value for c in next(sheet.iter_rows(max_row=1))][:2] == ["external_id", "name"]
    bad = client.get("/api/v1/exports/accounts?format=pdf", headers=m)
    assert bad.status_code == 400 and bad.get_json()["error"]["details"][0]["field"] == "format"
    paged = client.get("/api/v1/exports/requests?limit=5", headers=m)
    assert paged.status_code == 400 and paged.get_json()["error"]["details"][0] == {
        "field": "limit", "message": "unknown field"
    }  # fmt: skip
    assert client.get("/api/v1/exports/accounts/NOPE/matches", headers=m).status_code == 404
    assert client.get("/api/v1/exports/accounts").status_code == 401


def test_the_document_lists_each_export_file_type():
    from refmatch.web.api import document

    paths = document()["paths"]
    exports = [p for p in paths if p.startswith("/api/v1/exports/")]
    assert len(exports) == 9
    for path in exports:
        assert set(paths[path]["get"]["responses"]["200"]["content"]) == {
            "text/csv", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        }  # fmt: skip


def test_a_batch_run_downloads_from_the_api_and_the_ui(app, client, tokens):
    import csv
    import io

    from refmatch.batch import BatchParams, run_batch
    from tests.web_support import login

    svc = app.extensions["refmatch"].service
    with app.extensions["refmatch"].writing() as writer:
        run = run_batch(writer, BatchParams.create("reference", k=2))
    rows = _csv(client.get(f"/api/v1/exports/runs/{run.id}", headers=tokens["sales"]))
    stored = svc.conn.execute("SELECT COUNT(*) FROM matches WHERE run_id = ?", (run.id,)).fetchone()[0]
    assert len(rows) == stored > 0 and {r["purpose"] for r in rows} == {"reference"}
    assert all(r["run_id"] == str(run.id) and r["reasons"] for r in rows)
    assert client.get("/api/v1/exports/runs/999", headers=tokens["sales"]).status_code == 404
    assert client.get(f"/api/v1/exports/runs/{2**70}", headers=tokens["sales"]).status_code == 404  # beyond SQLite
    login(client, "sales")
    page = client.get("/runs").get_data(as_text=True)
    assert f'data-run="{run.id}"' in page and f"/runs?run={run.id}&amp;format=csv" in page
    ui_rows = list(csv.DictReader(io.StringIO(client.get(f"/runs?run={run.id}&format=csv").get_data(as_text=True))))
    assert ui_rows == rows
    assert client.get("/runs?run=x&format=csv").status_code == 400


def test_a_second_open_request_for_the_same_seeker_and_advocate_is_refused(client, tokens):
    first = create(client, tokens["sales"]).get_json()
    again = create(client, tokens["cs"])  # another rep, the same seeker, advocate and purpose
    assert again.status_code == 409
    error = again.get_json()["error"]
    assert error["message"] == f"duplicate: request #{first['id']} to A1 for this seeker and purpose is still requested"
    assert error["details"][0]["field"] == "advocate_external_id"
    m = tokens["manager"]
    client.post(f"/api/v1/requests/{first['id']}/transition", json={"to_status": "declined"}, headers=m)
    assert create(client, tokens["sales"]).status_code == 201  # the first one is finished: asking again is fine
