"""The server-rendered UI through the Flask test client: pages, forms, errors beside fields."""

import re

import pytest

from refmatch.web import ui
from tests import web_support
from tests.web_support import ROLE_USERS, csrf_of, login, post_form

# the shared fixtures: pytest finds them as attributes of this module
app = web_support.app
cheap_hashes = web_support.cheap_hashes
client = web_support.client

PAGES = [
    "/",
    "/accounts",
    "/accounts/P1",
    "/accounts/A1",
    "/match",
    "/requests",
    "/advocates",
    "/notifications",
    "/runs",
    "/forecast",
    "/outcomes",
]


def text(response) -> str:
    return response.get_data(as_text=True)


def request_reference(client, advocate="A1", seeker="P1", **extra):
    data = {"advocate_external_id": advocate, "purpose": "reference", "reference_type": "call", "note": "big deal"}
    return post_form(client, f"/accounts/{seeker}/requests", {**data, **extra})


def capacity_of(html: str, advocate: str) -> tuple[int, int]:
    row = re.search(rf'<tr data-advocate="{advocate}">(.*?)</tr>', html, re.S).group(1)
    used, capacity = re.search(r'data-used="(\d+)" data-capacity="(\d+)"', row).groups()
    return int(used), int(capacity)


@pytest.mark.parametrize("role", list(ROLE_USERS))
@pytest.mark.parametrize("url", PAGES)
def test_every_page_for_every_role(client, role, url):
    login(client, role)
    response = client.get(url)
    assert response.status_code == 200
    html = text(response)
    assert '<meta name="viewport"' in html and 'lang="en"' in html
    assert 'href="#main"' in html  # skip link
    assert f"({ROLE_USERS[role].replace('_', ' ')})" in html


def test_every_form_carries_the_csrf_token(client):
    login(client, "manager")
    rid = re.search(r"/requests/(\d+)", request_reference(client).headers["Location"]).group(1)
    token = csrf_of(client)
    for url in [*PAGES, f"/requests/{rid}"]:
        html = text(client.get(url))
        for form in re.findall(r'<form method="post".*?</form>', html, re.S):
            assert f'name="csrf_token" value="{token}"' in form, (url, form[:120])


def test_every_input_has_a_label(client):
    login(client, "manager")
    request_reference(client)
    for url in [*PAGES, "/requests/1"]:
        html = text(client.get(url))
        ids = set(re.findall(r'<label for="([^"]+)"', html))
        for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
            if 'type="hidden"' in tag:
                continue
            found = re.search(r'id="([^"]+)"', tag)
            assert found and found.group(1) in ids, (url, tag)


def add_lonely_prospect(world):
    """A prospect on a product no advocate uses: no advocate is eligible for it."""
    from tests.conftest import account, write_csv

    lonely = account("P2", stage="prospect", name="Lonely Prospect", products=["Quantum Ledger"])
    world.import_file("accounts", write_csv(world.settings.db_path.parent / "lonely.csv", [lonely]))


def test_forecast_page_charts_what_runs_dry_and_downloads_its_table(client, world):
    from tests.conftest import write_csv

    add_lonely_prospect(world)  # on Quantum Ledger, which no advocate uses
    need = {"account_external_id": "P2", "need": "quantum books", "status": "open"}
    world.import_file("needs", write_csv(world.settings.db_path.parent / "lonely-needs.csv", [need]))
    login(client, "sales")
    html = text(client.get("/forecast?by=product&quarters=3"))
    assert '<option value="product" selected>' in html and '<option value="3" selected>' in html
    figure = re.search(r'<figure data-segment="Quantum Ledger">(.*?)</figure>', html, re.S).group(1)
    assert '<svg class="chart"' in figure and 'role="img"' in figure and 'data-points="6"' in figure
    assert "demand, " in figure and "capacity, " in figure  # each bar says what it is, in words
    assert re.search(r'<th scope="row">Quantum Ledger</th><td>\d{4}-Q\d</td>', html)
    assert "<h2>Who to recruit</h2>" in html and "list=recruits&amp;format=csv" in html
    recruits = client.get("/forecast?by=product&quarters=3&list=recruits&format=csv")
    assert text(recruits).startswith("external_id,name,stage,health,nps,status,covers,segments")
    csv = client.get("/forecast?by=product&quarters=3&format=csv")
    assert csv.mimetype == "text/csv" and "Quantum Ledger,1," in csv.get_data(as_text=True)
    odd = client.get("/forecast?by=nonsense&quarters=many")  # unknown choices fall back to the defaults
    assert odd.status_code == 200 and '<option value="industry,product,region" selected>' in text(odd)


def test_outcomes_page_charts_deals_and_downloads_each_table(client, world):
    login(client, "manager")
    assert "No completed reference has a deal outcome yet" in text(client.get("/outcomes"))
    ids = dict(world.conn.execute("SELECT external_id, id FROM accounts"))
    with world.conn:
        world.conn.execute(
            "INSERT INTO reference_requests (seeker_account_id, advocate_account_id, purpose, status, created_at, "
            "updated_at, completed_at, deal_outcome, influenced_arr, rating) VALUES (?, ?, 'reference', 'completed', "
            "'2026-04-01T09:00:00+00:00', '2026-04-01T09:00:00+00:00', '2026-04-20T09:00:00+00:00', 'won', 42000, 5)",
            (ids["P1"], ids["A1"]),
        )
    html = text(client.get("/outcomes"))
    assert "1 won, 0 lost, 0 open: win rate 100%" in html and "42,000" in html
    assert html.count('<svg class="chart"') == 2 and "influenced ARR, 2026-Q2: 42k" in html
    assert re.search(r'<tr data-advocate="A1"><th scope="row"><a href="/accounts/A1">Company A1</a></th>', html)
    advocates = client.get("/outcomes?table=advocates&format=csv")
    assert advocates.mimetype == "text/csv" and "A1,Company A1,1,1,0,1,1.0,1.0,1,5.0,42000" in text(advocates)
    assert text(client.get("/outcomes?table=nonsense&format=csv")).startswith("quarter,won,lost")


def test_dashboard(client, world):
    login(client, "manager")
    request_reference(client)
    add_lonely_prospect(world)
    html = text(client.get("/"))
    assert re.search(r'class="count-requested">.*?<span class="num">1</span>', html, re.S)
    assert "Advocates near capacity" in html and "Company A5" in html  # capacity 0
    # P1 and A7 (prospects on Flow WMS) have eligible advocates; P2 has none
    assert "Reference: 1 of 3 without an eligible advocate" in html
    assert '<a href="/accounts/P2">Lonely Prospect</a>' in html
    assert '<a href="/accounts?uncovered=reference">All 1' in html
    assert "Mentor: 0 of 1 without an eligible advocate" in html  # C1 (onboarding) has mentors
    assert "Retention: 0 of 0 without an eligible advocate" in html  # nobody is at risk
    assert html.count('<svg class="chart"') == 3  # requests by age and per quarter, advocates by load
    ages = re.search(r'<h2 id="age-h">.*?</section>', html, re.S).group(0)
    assert re.search(r'<th scope="row">under a week</th><td class="num">1</td>', ages)  # the request just made


def test_accounts_search_filters_and_pagination(client, monkeypatch, world):
    login(client, "sales")
    html = text(client.get("/accounts"))
    assert "13 in all" in html and '<label for="f-industry">Industry</label>' in html
    assert '<option value="Retail">Retail</option>' in html
    retail = text(client.get("/accounts?industry=Retail"))
    assert "Company A3" in retail and "Company A1" not in retail and "1 in all" in retail
    assert "Company P1" in text(client.get("/accounts?q=p1"))
    assert "No account matches these filters." in text(client.get("/accounts?region=LATAM"))
    assert "0 in all" in text(client.get("/accounts?uncovered=reference"))
    add_lonely_prospect(world)
    uncovered = text(client.get("/accounts?uncovered=reference"))
    assert "Lonely Prospect" in uncovered and "1 in all" in uncovered
    assert "Showing reference seekers without an eligible advocate." in uncovered
    monkeypatch.setattr(ui, "PER_PAGE", 5)
    first = text(client.get("/accounts?stage=value"))
    assert "page 1 of 2" in first and 'rel="next" href="/accounts?page=2&amp;stage=value"' in first
    second = text(client.get("/accounts?stage=value&page=2"))
    assert "page 2 of 2" in second and 'rel="prev"' in second and 'rel="next"' not in second


def test_account_page_shows_profile_needs_and_explained_matches(client):
    login(client, "sales")
    html = text(client.get("/accounts/P1"))
    assert "Company P1" in html and "P1 distribution centres retailers logistics" in html
    assert "consolidate regional warehouses onto one wms" in html and 'class="badge status-open"' in html
    assert 'class="badge status-in_progress"' in html
    matches = re.findall(r'<li class="match" data-advocate="([^"]+)"', html)
    assert matches == ["A1", "A2", "A3"]
    assert 'role="meter" aria-label="Match score for Company A1"' in html
    assert "met 2 of your 2 open needs" in html and "same industry: Logistics" in html
    assert '<label for="req-1-type">Reference type</label>' in html
    assert '<label for="req-1-note">Note for the reference manager</label>' in html
    assert "Override reason" not in html  # sales cannot override
    mentor = text(client.get("/accounts/C1?purpose=mentor"))
    assert '<option value="mentor" selected>' in mentor


def test_advocate_account_page_shows_its_load(client):
    login(client, "manager")
    html = text(client.get("/accounts/A1"))
    assert "As an advocate" in html and 'aria-valuetext="0 of 3 used this quarter"' in html
    assert "Pat Murphy" in html  # managers see the contact
    login(client, "sales")
    assert "Pat Murphy" not in text(client.get("/accounts/A1"))


def test_request_a_reference_from_the_account_page(client):
    login(client, "sales")
    response = request_reference(client)
    assert response.status_code == 302
    detail = client.get(response.headers["Location"])
    html = text(detail)
    assert "Reference request #1 sent to Company A1" in html
    # the confirmation takes the focus, so a screen reader reads it out after the submit
    assert re.search(r'<p class="flash [^"]*" role="status" tabindex="-1" autofocus>Reference request #1', html)
    assert "big deal" in html and 'class="badge status-requested"' in html
    assert "Cancel" in html and "Approve" not in html  # the requester may only cancel


def test_refused_request_shows_the_error_beside_its_form(client):
    login(client, "sales")
    refused = request_reference(client, advocate="A1", reference_type="logo", note="logos please")
    assert refused.status_code == 409
    html = text(refused)
    form = re.search(r'<li class="match" data-advocate="A1">.*?</li>\s*(?=<li class="match"|</ol>)', html, re.S).group(
        0
    )
    assert "does not offer logo" in form and "logos please" in form
    assert '<option value="logo" selected>' in form
    # the one form that failed comes back open, its summary of problems focused; the others stay closed
    assert '<details class="request" open>' in form
    assert re.search(
        r'<p class="form-error" role="alert" tabindex="-1" autofocus>Not sent: [^<]*does not offer logo', form
    )
    assert html.count('<details class="request" open>') == 1 and html.count("autofocus") == 1
    bad = request_reference(client, reference_type="fax")
    assert bad.status_code == 400
    assert 'id="req-1-type-error"' in text(bad) and "must be one of call" in text(bad)


def test_adhoc_match_form(client):
    login(client, "cs")
    page = text(client.get("/match"))
    assert '<label for="text">Prospect description' in page and '<label for="needs">' in page
    result = post_form(
        client,
        "/match",
        {"text": "distribution centres for retailers", "needs": "single sign on with azure ad\n\n", "k": "2",
         "products": "Flow WMS", "name": "Harbour"},
    )  # fmt: skip
    assert result.status_code == 200
    html = text(result)
    assert "Matches for Harbour" in html and len(re.findall(r'<li class="match"', html)) == 2
    assert 'action="/match/request"' in html
    # industry, region and products are chosen from the values the accounts hold
    industries = re.search(r'<select id="industry" name="industry">(.*?)</select>', page, re.S).group(1)
    assert re.findall(r'<option value="([^"]*)"', industries)[0] == "" and '<option value="Logistics">' in industries
    boxes = re.findall(r'<input type="checkbox" id="product-\d+" name="products" value="([^"]+)"', page)
    assert "Flow WMS" in boxes and boxes == sorted(boxes)
    ticked = post_form(client, "/match", {"text": "warehouses", "products": ["Flow WMS", boxes[-1]], "k": "1"})
    assert ticked.status_code == 200
    checked = re.findall(r'name="products" value="([^"]+)" checked', text(ticked))
    assert checked == sorted({"Flow WMS", boxes[-1]})


def test_adhoc_match_errors_are_beside_the_fields(client):
    login(client, "cs")
    empty = post_form(client, "/match", {"text": "", "employees": "lots", "k": "500"})
    assert empty.status_code == 400
    html = text(empty)
    for field in ("text", "employees", "k"):
        assert f'aria-describedby="{field}-error"' in html and f'<p class="field-error" id="{field}-error"' in html
    stage = post_form(client, "/match", {"text": "x", "stage": "lead"})
    assert stage.status_code == 400 and '<p class="field-error" id="stage-error"' in text(stage)


def test_adhoc_request(client):
    login(client, "sales")
    response = post_form(
        client, "/match/request", {"advocate_external_id": "A2", "purpose": "reference", "note": "adhoc"}
    )
    assert response.status_code == 302
    assert "ad hoc" in text(client.get(response.headers["Location"]))
    refused = post_form(client, "/match/request", {"advocate_external_id": "A4", "purpose": "reference"})
    assert refused.status_code == 409 and "does not consent" in text(refused)


def test_queue_approve_and_the_capacity_bar_moves(client):
    login(client, "sales")
    request_reference(client)
    login(client, "manager")
    assert capacity_of(text(client.get("/advocates?q=A1")), "A1") == (0, 3)
    queue = text(client.get("/requests?status=requested"))
    assert 'aria-label="Approve request #1"' in queue and 'aria-label="Decline request #1"' in queue
    approved = post_form(client, "/requests/1/transition", {"to_status": "approved", "next": "/requests"})
    assert approved.status_code == 302 and approved.headers["Location"] == "/requests"
    assert "Request #1 for Company A1 is now approved." in text(client.get("/requests"))
    assert capacity_of(text(client.get("/advocates?q=A1")), "A1") == (1, 3)
    detail = text(client.get("/requests/1"))
    assert 'id="scheduled"' in detail and '<label for="scheduled-when">Date of the call or visit</label>' in detail


def test_schedule_complete_and_errors_beside_fields(client):
    login(client, "sales")
    request_reference(client)
    login(client, "manager")
    post_form(client, "/requests/1/transition", {"to_status": "approved"})
    bad_date = post_form(client, "/requests/1/transition", {"to_status": "scheduled", "scheduled_for": "soon"})
    assert bad_date.status_code == 400
    assert '<p class="field-error" id="scheduled-when-error"' in text(bad_date)
    assert (
        post_form(
            client, "/requests/1/transition", {"to_status": "scheduled", "scheduled_for": "2030-02-01"}
        ).status_code
        == 302
    )
    bad_arr = post_form(client, "/requests/1/transition", {"to_status": "completed", "influenced_arr": "-5"})
    assert bad_arr.status_code == 400 and 'id="completed-arr-error"' in text(bad_arr)
    done = post_form(
        client, "/requests/1/transition",
        {"to_status": "completed", "rating": "4", "deal_outcome": "won", "influenced_arr": "50000"},
    )  # fmt: skip
    assert done.status_code == 302
    html = text(client.get("/requests/1"))
    assert "rated 4/5, deal won, influenced ARR 50,000" in html and "Next step" not in html


def test_illegal_and_forbidden_transitions_are_shown(client):
    login(client, "sales")
    request_reference(client)
    forbidden = post_form(client, "/requests/1/transition", {"to_status": "approved"})
    assert forbidden.status_code == 403 and "only a reference manager may move a request to approved" in text(forbidden)
    login(client, "manager")
    illegal = post_form(client, "/requests/1/transition", {"to_status": "completed"})
    assert illegal.status_code == 409 and "cannot move request 1 from requested to completed" in text(illegal)
    assert post_form(client, "/requests/99/transition", {"to_status": "approved"}).status_code == 404


def test_queue_filters_and_pagination(client, monkeypatch):
    login(client, "sales")
    for seeker in ("P1", "A7", "C1"):
        request_reference(client, seeker=seeker)
    login(client, "cs")
    request_reference(client, advocate="A2")
    monkeypatch.setattr(ui, "PER_PAGE", 2)
    html = text(client.get("/requests"))
    assert "4 in all; page 1 of 2" in html and 'rel="next"' in html
    mine = text(client.get("/requests?mine=1"))
    assert "1 in all" in mine and "Company A2" in mine
    assert "No request in state declined." in text(client.get("/requests?status=declined"))


def test_advocates_page_filters_and_contacts(client):
    login(client, "sales")
    html = text(client.get("/advocates"))
    assert "11 in all" in html and "Contact</th>" not in html
    assert capacity_of(html, "A5") == (0, 0) and 'class="bar full"' in html
    assert "Company A4" in text(client.get("/advocates?consent=no"))
    assert "1 in all" in text(client.get("/advocates?reference_type=logo"))
    assert "1 in all" in text(client.get("/advocates?near=1"))
    login(client, "manager")
    assert "Contact</th>" in text(client.get("/advocates")) and "Pat Murphy" in text(client.get("/advocates"))


def test_unknown_account_is_a_404_page(client):
    login(client, "sales")
    response = client.get("/accounts/NOPE")
    assert response.status_code == 404 and "unknown account: &#39;NOPE&#39;" in text(response)


# -- notifications and due dates ----------------------------------------------------------------
def test_everyone_sets_where_and_what_they_hear(client, app):
    from refmatch.app.notify import prefs

    login(client, "sales")
    form = {"email": "sales@example.com", "slack_user_id": "U0SALES1", "want:request.approved:email": "1"}
    response = post_form(client, "/notifications/mine", form)
    assert response.status_code == 302
    shown = prefs.preferences(app.extensions["refmatch"].service, "sales")
    assert shown["email"] == "sales@example.com" and shown["slack_user_id"] == "U0SALES1"
    assert shown["wanted"]["request.approved"] == ["email"] and shown["wanted"]["request.created"] == []
    html = text(client.get("/notifications"))
    assert "saved" in html and 'value="sales@example.com"' in html
    assert "Deliveries" not in html  # a manager's view

    response = post_form(client, "/notifications/mine", {"email": "not an address"})
    assert response.status_code == 400
    assert "not an e-mail address" in text(response)


def test_managers_see_failed_deliveries_and_retry_them(client, app):
    svc = app.extensions["refmatch"].service
    now = "2026-01-01T00:00:00+00:00"
    svc.conn.execute(
        "INSERT INTO outbox (event, channel, recipient, subject, body, payload, status, attempts, next_attempt_at, "
        "last_error, created_at) VALUES ('request.created', 'email', 'x@example.com', 's', 'b', '{}', 'failed', 8, "
        "?, 'SMTP 127.0.0.1:25: connection refused', ?)",
        (now, now),
    )
    login(client, "sales")
    assert post_form(client, "/notifications/retry", {}).status_code == 403
    login(client, "manager")
    html = text(client.get("/notifications"))
    assert "connection refused" in html and "Retry delivery 1" in html
    response = post_form(client, "/notifications/retry", {"id": "1"})
    assert response.status_code == 302
    assert "1 delivery queued again" in text(client.get("/notifications"))
    assert svc.conn.execute("SELECT status, attempts FROM outbox").fetchone() == ("pending", 0)
    assert post_form(client, "/notifications/retry", {"id": "x"}).status_code == 400


def test_overdue_requests_show_on_the_queue_and_the_dashboard(client, app):
    login(client, "manager")
    request_reference(client)
    svc = app.extensions["refmatch"].service
    svc.conn.execute("UPDATE reference_requests SET due_at = '2020-01-01T00:00:00+00:00'")
    html = text(client.get("/requests?overdue=1"))
    assert "badge overdue" in html and 'data-request="1"' in html
    assert "All 1 overdue" in text(client.get("/"))
    svc.conn.execute("UPDATE reference_requests SET due_at = '2999-01-01T00:00:00+00:00'")
    assert "No request is overdue." in text(client.get("/requests?overdue=1"))


# -- downloads -------------------------------------------------------------------------------------
def csv_rows(response) -> list[dict[str, str]]:
    import csv
    import io

    assert response.status_code == 200, response.status_code
    assert response.mimetype == "text/csv"
    assert "attachment; filename=" in response.headers["Content-Disposition"]
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_every_list_downloads_with_its_filters(client):
    login(client, "manager")
    request_reference(client)
    accounts = csv_rows(client.get("/accounts?format=csv"))
    assert {"A1", "P1"} <= {r["external_id"] for r in accounts}
    only_p1 = csv_rows(client.get("/accounts?format=csv&q=P1"))
    assert [r["external_id"] for r in only_p1] == ["P1"]
    advocates = csv_rows(client.get("/advocates?format=csv"))
    assert "A1" in {r["external_id"] for r in advocates} and "contact_email" in advocates[0]
    requests = csv_rows(client.get("/requests?format=csv"))
    assert [(r["advocate_external_id"], r["status"], r["seeker_external_id"]) for r in requests] == [
        ("A1", "requested", "P1")
    ]
    assert csv_rows(client.get("/requests?format=csv&status=approved")) == []
    matches = csv_rows(client.get("/accounts/P1?format=csv&purpose=reference"))
    assert matches and matches[0]["rank"] == "1" and matches[0]["advocate_external_id"]
    at_risk = client.get("/at-risk?format=csv")
    assert at_risk.status_code == 200 and at_risk.get_data(as_text=True).startswith("external_id,name,stage,score")
    html = text(client.get("/requests?status=requested&page=1"))
    assert 'href="/requests?status=requested&amp;format=csv" download' in html


def test_downloads_as_xlsx_and_a_bad_format_is_named(client):
    import io

    import openpyxl

    login(client, "sales")
    response = client.get("/accounts?format=xlsx")
    assert response.status_code == 200 and response.mimetype.endswith("spreadsheetml.sheet")
    sheet = openpyxl.load_workbook(io.BytesIO(response.data)).active
    header = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert header[:3] == ["external_id", "name", "industry"] and sheet.max_row > 2
    response = client.get("/accounts?format=pdf")
    assert response.status_code == 400 and "format: must be one of csv, xlsx" in text(response)


def test_a_download_takes_every_page_and_says_when_it_was_cut(monkeypatch):
    from refmatch.app import tables

    data = [{"external_id": f"X{i}", "name": f"n{i}"} for i in range(7)]
    items, cut = tables.every_page(lambda limit, offset: (data[offset : offset + limit], len(data)), 3)
    assert [i["external_id"] for i in items] == [f"X{i}" for i in range(7)] and not cut
    monkeypatch.setattr(tables, "MAX_ROWS", 5)
    items, cut = tables.every_page(lambda limit, offset: (data[offset : offset + limit], len(data)), 3)
    assert len(items) == 5 and cut
    body = tables.encode(tables.table("accounts", items, cut=cut), "csv").decode()
    assert body.splitlines()[-1].startswith("(cut at 5 rows")


def test_head_answers_like_get_on_pages_with_forms(client):
    assert client.head("/login").status_code == 200
    login(client, "manager")
    for url in ("/match", "/import", "/"):
        assert client.head(url).status_code == 200, url


def test_asking_twice_for_the_same_advocate_is_refused_on_the_page(client):
    login(client, "sales")
    assert request_reference(client).status_code == 302
    again = request_reference(client)
    assert again.status_code == 409
    assert "duplicate: request #" in text(again) and "is still requested" in text(again)


def test_account_page_keeps_engine_internals_from_reps_and_ended_blackouts_away(client, world):
    from tests.conftest import advocate, write_csv

    login(client, "sales")
    html = text(client.get("/accounts/P1"))
    assert "eligible advocates" in html and "data version" not in html and "model " not in html
    login(client, "manager")
    assert "data version" in text(client.get("/accounts/P1"))  # the people who run it still see what ran
    assert "Blackout until</dt><dd>2999-01-01" in text(client.get("/accounts/A6"))
    world.import_file(
        "advocates",
        write_csv(world.settings.db_path.parent / "ended.csv", [advocate("A6", blackout_until="2020-01-01")]),
    )
    assert "Blackout until" not in text(client.get("/accounts/A6"))
    assert "2020-01-01" not in text(client.get("/advocates?q=A6"))


def test_a_prospects_purpose_menu_offers_only_references(client):
    login(client, "sales")
    prospect = text(client.get("/accounts/P1?purpose=retention"))  # not for a prospect: its references instead
    menu = re.search(r'<select id="purpose" name="purpose">(.*?)</select>', prospect, re.S).group(1)
    assert re.findall(r'<option value="([^"]+)"', menu) == ["reference"] and " selected" in menu
    customer = re.search(r'<select id="purpose" name="purpose">(.*?)</select>', text(client.get("/accounts/C1")), re.S)
    assert re.findall(r'<option value="([^"]+)"', customer.group(1)) == ["reference", "mentor", "retention"]
