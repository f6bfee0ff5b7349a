"""The at-risk and onboarding views: the JSON API (validated against the document by the client)
and the UI pages, with their one-click peer-call and mentoring requests."""

import re
from datetime import date, timedelta

import pytest

from refmatch.app import users
from refmatch.web.api import document
from refmatch.web.ui import sparkline
from tests import web_support
from tests.conftest import write_csv
from tests.web_support import PASSWORD, ROLE_USERS, bearer, login, make_app, post_form

cheap_hashes = web_support.cheap_hashes
client = web_support.client

ROLES = list(ROLE_USERS)


def flag_at_risk(world, external_id="A9"):
    """Recent signals the risk rules call at risk: health fell to 30, an escalation, a detractor."""
    recent = (date.today() - timedelta(days=5)).isoformat()
    earlier = (date.today() - timedelta(days=60)).isoformat()
    signals = [
        {"account_external_id": external_id, "observed_on": earlier, "kind": "health", "value": 80},
        {"account_external_id": external_id, "observed_on": recent, "kind": "health", "value": 30},
        {"account_external_id": external_id, "observed_on": recent, "kind": "escalation", "value": 1},
        {"account_external_id": external_id, "observed_on": recent, "kind": "nps", "value": 2},
    ]
    world.import_file("signals", write_csv(world.settings.db_path.parent / f"risk-{external_id}.csv", signals))


@pytest.fixture
def app(world):
    """The app over the world with A9 at risk (flagged before the app loads anything)."""
    flag_at_risk(world)
    for username, role in ROLE_USERS.items():
        users.add_user(world, username, PASSWORD, role, display_name=f"Test {role}")
    app = make_app(world)
    yield app
    app.extensions["refmatch"].service.close()


@pytest.fixture
def tokens(app):
    return {username: bearer(app, username) for username in ROLE_USERS}


def text(response) -> str:
    return response.get_data(as_text=True)


# -- the API -----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", ["/api/v1/at-risk", "/api/v1/accounts/A9/risk"])
def test_every_role_may_read_risk(client, tokens, role, url):
    assert client.get(url, headers=tokens[role]).status_code == 200


@pytest.mark.parametrize("url", ["/api/v1/at-risk", "/api/v1/accounts/A9/risk"])
def test_risk_needs_a_signed_in_caller(client, url):
    response = client.get(url)
    assert response.status_code == 401 and response.get_json()["error"]["code"] == "unauthorized"


def test_at_risk_list_with_retention_peers(client, tokens):
    body = client.get("/api/v1/at-risk", headers=tokens["cs"]).get_json()
    assert body["total"] == 1 and body["limit"] == 20 and body["offset"] == 0
    (a9,) = body["items"]
    assert a9["external_id"] == "A9" and a9["level"] == "medium" and a9["at_risk"] is True
    assert a9["troubles"] == ["poor health", "escalations", "unhappy users"]
    assert a9["reasons"][0]["rule"] == "health_low" and "below 50" in a9["reasons"][0]["text"]
    assert "renewal_date" in a9 and a9["at_risk_since"] is not None
    assert 1 <= len(a9["matches"]) <= 3
    peers = [m["advocate"]["external_id"] for m in a9["matches"]]
    assert "A9" not in peers and "A4" not in peers  # never itself, never an advocate without consent
    assert "shared_troubles" in a9["matches"][0]["components"]
    assert a9["matches"][0]["reasons"][0].startswith("no record of overcoming your troubles")


def test_at_risk_level_and_pagination(client, tokens):
    h = tokens["sales"]
    low = client.get("/api/v1/at-risk?level=low&limit=5", headers=h).get_json()
    assert low["total"] == 13 and len(low["items"]) == 5 and low["items"][0]["external_id"] == "A9"
    rest = client.get("/api/v1/at-risk?level=low&limit=5&offset=10", headers=h).get_json()
    assert rest["total"] == 13 and len(rest["items"]) == 3 and rest["offset"] == 10
    seen = {i["external_id"] for i in low["items"]} | {i["external_id"] for i in rest["items"]}
    assert len(seen) == 8
    high = client.get("/api/v1/at-risk?level=high", headers=h).get_json()
    assert high == {"items": [], "total": 0, "limit": 20, "offset": 0}


@pytest.mark.parametrize(
    ("query", "field"),
    [("level=severe", "level"), ("limit=0", "limit"), ("limit=101", "limit"), ("offset=-1", "offset")],
)
def test_bad_at_risk_parameters_are_400_naming_the_field(client, tokens, query, field):
    response = client.get(f"/api/v1/at-risk?{query}", headers=tokens["sales"])
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input" and error["details"][0]["field"] == field


def test_account_risk(client, tokens):
    body = client.get("/api/v1/accounts/A9/risk", headers=tokens["sales"]).get_json()
    assert body["level"] == "medium" and body["score"] == 45.0 and body["as_of"] == date.today().isoformat()
    fired = {r["rule"] for r in body["rules"] if r["fired"]}
    assert fired == {"health_low", "escalation", "nps_detractor"}
    assert [e["outcome"] for e in body["episodes"]] == ["open"]
    assert [v for _, v in body["signals"]["health"]] == [80.0, 30.0]
    calm = client.get("/api/v1/accounts/A1/risk", headers=tokens["sales"]).get_json()
    assert calm["level"] == "low" and calm["at_risk"] is False and calm["reasons"] == [] and calm["episodes"] == []


def test_account_risk_as_of_an_earlier_day(client, tokens):
    before = (date.today() - timedelta(days=30)).isoformat()
    body = client.get(f"/api/v1/accounts/A9/risk?as_of={before}", headers=tokens["sales"]).get_json()
    assert body["as_of"] == before and body["at_risk"] is False


def test_account_risk_errors(client, tokens):
    missing = client.get("/api/v1/accounts/NOPE/risk", headers=tokens["sales"])
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "not_found"
    bad = client.get("/api/v1/accounts/A9/risk?as_of=yesterday", headers=tokens["sales"])
    assert bad.status_code == 400
    error = bad.get_json()["error"]
    assert error["code"] == "invalid_input" and error["details"][0]["field"] == "as_of"


def test_the_risk_routes_are_in_the_document():
    doc = document()
    assert doc["paths"]["/api/v1/at-risk"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AtRiskAccountPage"
    }
    assert "get" in doc["paths"]["/api/v1/accounts/{external_id}/risk"]
    assert {"AtRiskAccount", "AccountRisk", "RiskReason", "RiskEpisode"} <= set(doc["components"]["schemas"])


# -- the UI ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("url", ["/at-risk", "/onboarding"])
def test_risk_pages_for_every_role(client, role, url):
    login(client, role)
    response = client.get(url)
    assert response.status_code == 200
    html = text(response)
    assert f'href="{url}" aria-current="page"' in html  # in the navigation


def test_risk_pages_need_sign_in(client):
    for url in ("/at-risk", "/onboarding"):
        response = client.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def card(html: str, external_id: str) -> str:
    head = f'<li class="card risk-card" data-account="{external_id}">'
    found = re.search(
        re.escape(head) + r'(.*?)</li>\s*(?=<li class="card risk-card"|</ol>\s*<nav class="pager")', html, re.S
    )
    assert found, f"no card for {external_id}"
    return found.group(1)


def test_at_risk_page_shows_reasons_trend_and_peers(client):
    login(client, "cs")
    html = text(client.get("/at-risk?view=peers"))
    a9 = card(html, "A9")
    assert 'class="badge level-medium"' in a9 and "45" in a9
    assert "health 30 on" in a9 and "poor health" in a9 and "unhappy users" in a9
    svg = re.search(r'<svg class="sparkline".*?</svg>', a9, re.S).group(0)
    assert "<polyline" in svg and 'aria-label="Health of Company A9: 80 on' in svg
    forms = re.findall(r'<form method="post" action="/accounts/A9/requests".*?</form>', a9, re.S)
    assert 1 <= len(forms) <= 3
    for form in forms:
        assert 'name="csrf_token"' in form and 'name="purpose" value="retention"' in form
        assert 'name="reference_type" value="peer_call"' in form and "Request peer call" in form
    assert '<option value="medium" selected>' in html
    # each peer-call button names the peer and the account: a screen reader tells them apart
    names = [
        re.sub(r"<[^>]+>", "", b) for b in re.findall(r'<button type="submit">(Request peer call.*?)</button>', html)
    ]
    assert names and len(set(names)) == len(names) and all(" with " in n and " for " in n for n in names)
    assert "Request peer call with" in names[0] and 'class="quick-request" aria-label' not in html
    # every input has a label
    ids = set(re.findall(r'<label for="([^"]+)"', html))
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        if 'type="hidden"' not in tag:
            assert re.search(r'id="([^"]+)"', tag).group(1) in ids, tag


def test_at_risk_page_filters_and_paginates(client, monkeypatch):
    from refmatch.web import ui

    login(client, "sales")
    monkeypatch.setattr(ui, "RISK_PER_PAGE", 5)
    first = text(client.get("/at-risk?level=low&view=peers"))
    assert first.count('class="card risk-card"') == 5 and "13 in all; page 1 of 3" in first
    assert re.search(r'href="/at-risk\?(?=[^"]*page=2)(?=[^"]*level=low)(?=[^"]*view=peers)[^"]*"', first)
    last = text(client.get("/at-risk?level=low&page=3&view=peers"))
    assert last.count('class="card risk-card"') == 3
    assert "No account is at high risk" in text(client.get("/at-risk?level=high&view=peers"))
    assert 'data-account="A9"' in text(client.get("/at-risk?level=bogus&view=peers"))  # unknown: the default level


def test_at_risk_table_sorts_filters_and_pages(client):
    login(client, "sales")
    html = text(client.get("/at-risk?level=low"))
    rows = re.findall(r'<tr data-account="([^"]+)">', html)
    assert len(rows) == 13 and "13 in all" in html and '<option value="25" selected>' in html
    assert 'aria-sort="descending"' in html and html.index('aria-sort="descending"') < html.index(">Risk")
    by_name = re.findall(r'<tr data-account="([^"]+)">', text(client.get("/at-risk?level=low&sort=name")))
    names = dict(re.findall(r'<tr data-account="([^"]+)">\s*<th scope="row"><a [^>]*>([^<]+)</a>', html))
    assert [names[e].casefold() for e in by_name] == sorted(names[e].casefold() for e in by_name)
    backwards = re.findall(r'<tr data-account="([^"]+)">', text(client.get("/at-risk?level=low&sort=name&order=desc")))
    assert backwards == by_name[::-1]
    found = text(client.get("/at-risk?level=low&q=a9"))
    assert re.findall(r'<tr data-account="([^"]+)">', found) == ["A9"]
    odd = client.get("/at-risk?level=low&sort=size&per=7&order=sideways")  # unknown choices: the defaults
    assert odd.status_code == 200 and '<option value="25" selected>' in text(odd)
    assert '<svg class="chart"' in html  # accounts by level, with the numbers in a table


def test_one_click_peer_call(client, app):
    login(client, "cs")
    html = text(client.get("/at-risk?view=peers"))
    form = re.search(r'<form method="post" action="/accounts/A9/requests".*?</form>', card(html, "A9"), re.S).group(0)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    response = client.post("/accounts/A9/requests", data=fields)
    assert response.status_code == 302
    detail = text(client.get(response.headers["Location"]))
    assert "sent to" in detail
    rid = int(re.search(r"/requests/(\d+)", response.headers["Location"]).group(1))
    api = client.get(f"/api/v1/requests/{rid}", headers=bearer(app, "manager")).get_json()
    assert api["purpose"] == "retention" and api["reference_type"] == "peer_call"
    assert api["seeker"]["external_id"] == "A9" and api["advocate"]["external_id"] == fields["advocate_external_id"]


def test_one_click_without_the_csrf_token_is_refused(client, app):
    login(client, "cs")
    response = client.post(
        "/accounts/A9/requests",
        data={"advocate_external_id": "A1", "purpose": "retention", "reference_type": "peer_call"},
    )
    assert response.status_code == 403 and "CSRF" in text(response)
    listed = client.get("/api/v1/requests", headers=bearer(app, "manager")).get_json()
    assert listed["total"] == 0


def test_a_refused_peer_call_is_shown_beside_the_peer(client):
    login(client, "sales")
    refused = post_form(
        client,
        "/accounts/A9/requests",
        {"advocate_external_id": "A4", "purpose": "retention", "reference_type": "peer_call"},
    )
    assert refused.status_code == 409
    assert re.search(r'<p class="form-error" role="alert">Request to A4 refused: [^<]*consent', text(refused))


def test_onboarding_page_lists_new_deployments_with_mentors(client):
    login(client, "cs")
    html = text(client.get("/onboarding"))
    c1 = card(html, "C1")
    assert "Company C1" in c1 and "Suggested mentors" in c1
    forms = re.findall(r'<form method="post" action="/accounts/C1/requests".*?</form>', c1, re.S)
    assert 1 <= len(forms) <= 3
    assert all('value="mentor"' in f and 'value="mentoring"' in f and "Request mentoring" in f for f in forms)
    assert re.search(r'<li class="peer" data-advocate="A\d+">', c1)
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', forms[0]))
    assert post_form(client, "/accounts/C1/requests", fields).status_code == 302


def test_account_page_shows_its_risk_when_at_risk(client):
    login(client, "sales")
    html = text(client.get("/accounts/A9"))
    assert 'class="badge level-medium"' in html and "At risk: medium" in html and "health 30 on" in html
    calm = text(client.get("/accounts/A1"))
    assert "At risk:" not in calm and "level-medium" not in calm


def test_sparkline_is_an_svg_polyline():
    svg = str(sparkline([["2025-01-01", 80.0], ["2025-01-11", 60.0], ["2025-01-31", 30.0]], "Health"))
    assert svg.startswith('<svg class="sparkline"') and svg.endswith("</svg>")
    xs = [float(p.split(",")[0]) for p in re.search(r'points="([^"]+)"', svg).group(1).split()]
    assert xs == sorted(xs) and xs[0] == 2.0 and xs[-1] == 118.0  # placed by date, across the width
    assert 'aria-label="Health: 80 on 2025-01-01 to 30 on 2025-01-31"' in svg
    assert "<polyline" in str(sparkline([["2025-01-01", 50.0]], "Flat"))
    assert "<svg" not in str(sparkline([], "None"))
    assert "&lt;b&gt;" in str(sparkline([["2025-01-01", 1.0]], "<b>"))


def test_account_page_charts_health_over_time_with_the_stretch_at_risk(client):
    login(client, "cs")
    html = text(client.get("/accounts/A9"))
    section = re.search(r'<section class="card" aria-labelledby="trend-h">.*?</section>', html, re.S).group(0)
    assert '<h2 id="trend-h">Health over time</h2>' in section
    svg = re.search(r'<svg class="chart".*?</svg>', section, re.S).group(0)
    assert 'data-points="2"' in svg and "<title id=" in svg and "with the stretches at risk shaded" in svg
    assert re.findall(r"<title>health, [\d-]+: (\d+)</title>", svg) == ["80", "30"]
    band = re.search(r'<rect class="band" x="([\d.]+)"[^>]*><title>at risk from ([\d-]+) to now', svg)
    assert band and float(band.group(1)) > 40  # entered after the first point, so it starts inside the plot
    # the same numbers as a table, and the stretch in words
    rows = re.findall(r"<tr><td>([\d-]+)</td><td>(\d+)</td></tr>", section)
    assert [v for _, v in rows] == ["80", "30"]
    assert "Stretches at risk" in section and "to now" in section and "open" in section
    # an account with no signals draws no chart
    assert 'aria-labelledby="trend-h"' not in text(client.get("/accounts/A1"))
