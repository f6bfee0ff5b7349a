"""End to end in a real browser: ``refmatch serve`` over the real demo, driven with
Debian's Chromium through Playwright (never a downloaded browser).

Sales opens a prospect, sees matches with reasons and requests a reference; the
reference manager approves it from the queue and sees the advocate's capacity bar
move. Screenshots land in tests/artifacts/ (git-ignored).
"""

from __future__ import annotations

import csv
import json
import re
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import pytest

from tests.e2e_demo import E2E_PASSWORD, service_at

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parent / "artifacts"
KNOWN = json.loads((resources.files("refmatch") / "demo_data" / "known_matches.json").read_text())
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


def sign_in(page, base: str, username: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(E2E_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(base + "/")


def sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/login$"))


def capacity(page, base: str, advocate: str) -> tuple[int, int]:
    page.goto(f"{base}/advocates?q={advocate}")
    bar = page.locator(f'tr[data-advocate="{advocate}"] [role="meter"]')
    return int(bar.get_attribute("data-used")), int(bar.get_attribute("data-capacity"))


def test_request_and_approve_a_reference_in_the_browser(browser, demo_server):
    from playwright.sync_api import expect

    base = demo_server
    case = next(c for c in KNOWN if c.get("purpose", "reference") == "reference")
    seeker, advocate = case["seeker"], case["advocate"]
    with urllib.request.urlopen(base + "/readyz") as response:
        assert json.loads(response.read())["status"] == "ready"
    ARTIFACTS.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()

    # sales: find the prospect, see its matches with reasons, ask for a reference
    sign_in(page, base, "sales")
    page.get_by_role("link", name="Accounts").click()
    page.get_by_role("searchbox", name="Search").fill(seeker)
    page.get_by_role("button", name="Filter").click()
    page.locator(f'a[href="/accounts/{seeker}"]').click()
    page.wait_for_url(f"{base}/accounts/{seeker}")
    match = page.locator(f'li.match[data-advocate="{advocate}"]')
    expect(match).to_be_visible()
    reasons = match.locator("ul.reasons li")
    assert reasons.count() >= 2
    assert reasons.first.inner_text().startswith("met ")
    expect(match.locator('[role="meter"]')).to_be_visible()
    advocate_name = match.locator("h3 a").inner_text()
    page.screenshot(path=str(ARTIFACTS / "account_page.png"), full_page=True)

    # one "Request" action per match opens its form; the form is hidden until then
    expect(match.get_by_label("Reference type")).to_be_hidden()
    assert page.locator("li.match form.request-form:visible").count() == 0
    match.locator("details.request > summary").click()
    match.get_by_label("Reference type").select_option("call")
    match.get_by_label("Note for the reference manager").fill("Evaluating Flow WMS; a call with their ops lead.")
    match.get_by_role("button", name=f"Send request to {advocate_name}").click()
    flash = page.locator("p.flash")
    expect(flash).to_contain_text(f"sent to {advocate_name}")
    expect(flash).to_be_focused()  # what the submit did is where the focus lands, so it is read out
    request_id = re.search(r"#(\d+)", flash.inner_text()).group(1)
    sign_out(page)

    # the reference manager: approve it from the queue; the advocate's capacity bar moves
    sign_in(page, base, "manager")
    used_before, slots = capacity(page, base, advocate)
    page.goto(base + "/requests?status=requested")
    row = page.locator(f'tr[data-request="{request_id}"]')
    expect(row).to_contain_text(advocate_name)
    page.screenshot(path=str(ARTIFACTS / "request_queue.png"), full_page=True)
    row.get_by_role("button", name=f"Approve request #{request_id}").click()
    expect(page.locator("p.flash")).to_contain_text(f"Request #{request_id} for {advocate_name} is now approved.")
    used_after, slots_after = capacity(page, base, advocate)
    assert (used_after, slots_after) == (used_before + 1, slots)
    bar = page.locator(f'tr[data-advocate="{advocate}"] [role="meter"]')
    assert bar.get_attribute("aria-valuetext") == f"{used_after} of {slots} used this quarter"
    page.screenshot(path=str(ARTIFACTS / "advocates.png"), full_page=True)
    page.goto(base + "/requests?status=approved")
    page.screenshot(path=str(ARTIFACTS / "request_queue_approved.png"), full_page=True)
    # the approved requests, downloaded from the page as CSV: the filter applies to the file
    with page.expect_download() as download_info:
        page.get_by_role("link", name="CSV").click()
    download = download_info.value
    assert download.suggested_filename.startswith("refmatch-requests-") and download.suggested_filename.endswith(".csv")
    with open(download.path(), encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows and {r["status"] for r in rows} == {"approved"}
    assert (request_id, advocate) in {(r["id"], r["advocate_external_id"]) for r in rows}
    # a CRM file imported from the UI: its page follows the import in the background to the end
    crm_file = ARTIFACTS / "hubspot-companies.csv"
    crm_file.write_text(
        "Record ID;Company name;Industry;Number of Employees;Country/Region;Lifecycle Stage\n"
        "E2E-1;Quayside Freight;Logistics;1200;Ireland;Lead\n",
        encoding="utf-8",
    )
    page.get_by_role("link", name="Import").click()
    page.get_by_label("What the file holds").select_option("accounts")
    page.get_by_label("File to import").set_input_files(str(crm_file))
    page.get_by_role("button", name="Import", exact=True).click()
    status = page.locator("#import-status")
    expect(status).to_have_attribute("data-status", "done", timeout=60_000)
    expect(status).to_contain_text("accounts: imported 1 rows from hubspot-companies.csv: 1 inserted")
    page.goto(base + "/")
    expect(page.get_by_role("heading", name="Coverage")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    # the forecast: its charts are drawn, with data, and its table downloads
    page.get_by_role("link", name="Forecast").click()
    page.get_by_label("Segments").select_option("industry")
    page.get_by_role("button", name="Forecast").click()
    charts = page.locator("svg.chart")
    expect(charts.first).to_be_visible()
    assert int(charts.first.get_attribute("data-points")) > 0 and page.locator("svg.chart rect.mark").count() > 0
    assert charts.first.bounding_box()["height"] > 50
    page.screenshot(path=str(ARTIFACTS / "forecast.png"), full_page=True)
    segments = downloaded_rows(page, "Download the forecast as CSV")
    assert segments and {"industry", "runs_dry", "shortfall"} <= set(segments[0])
    page.get_by_role("link", name="Outcomes").click()
    expect(page.locator("svg.chart").first).to_be_visible()
    assert page.locator("svg.chart").count() == 2 and page.locator("svg.chart rect.mark").count() > 2
    page.screenshot(path=str(ARTIFACTS / "outcomes.png"), full_page=True)
    quarters = downloaded_rows(page, "Download the quarters as CSV")
    assert quarters and {"quarter", "won", "influenced_arr"} <= set(quarters[0])

    # the same account page on a phone-sized screen
    phone = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, is_mobile=True)
    small = phone.new_page()
    sign_in(small, base, "sales")
    small.goto(f"{base}/accounts/{seeker}")
    expect(small.locator(f'li.match[data-advocate="{advocate}"]')).to_be_visible()
    width = small.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the account page scrolls sideways on a phone ({width}px)"
    small.screenshot(path=str(ARTIFACTS / "account_page_phone.png"), full_page=True)
    for path in ("/forecast", "/outcomes", "/at-risk", "/"):  # the pages with charts and wide tables
        small.goto(base + path)
        expect(small.locator("svg.chart").first).to_be_attached()
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} scrolls sideways on a phone ({width}px)"
    small.screenshot(path=str(ARTIFACTS / "dashboard_phone.png"), full_page=True)
    small.goto(base + "/at-risk")
    small.screenshot(path=str(ARTIFACTS / "at_risk_phone.png"), full_page=True)
    phone.close()
    context.close()


def downloaded_rows(page, link: str) -> list[dict[str, str]]:
    """The rows of the CSV file that the link named ``link`` downloads."""
    with page.expect_download() as download_info:
        page.get_by_role("link", name=link).click()
    with open(download_info.value.path(), encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def api(base: str, path: str, token: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = None
    if body is not None:
        data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
    request = urllib.request.Request(base + path, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# every page a signed-in admin can open (an admin sees them all), and what a POST shows
A11Y_PAGES = (
    "/",
    "/accounts",
    "/accounts/{seeker}",
    "/accounts/{advocate}",  # an advocate's page: its load, its health over time
    "/at-risk",
    "/at-risk?view=peers",
    "/onboarding",
    "/match",
    "/requests",
    "/requests/1",
    "/advocates",
    "/forecast",
    "/outcomes",
    "/runs",
    "/import",
    "/notifications",
)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def axe_violations(page) -> list[str]:
    """axe-core's findings on the page (WCAG 2.1 A and AA and best practice), one line each."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_TAGS}}).response["violations"]
    return [f"{v['id']} ({v['impact']}): {len(v['nodes'])}, e.g. {v['nodes'][0]['target']}" for v in found]


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two computed CSS colours ("rgb(r, g, b)")."""

    def luminance(css: str) -> float:
        channels = [int(x) / 255 for x in re.findall(r"\d+", css)[:3]]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_every_page_is_accessible_and_reflows(browser, demo_server):
    """axe-core finds nothing on any page; no page scrolls sideways at 320 px or at 200% zoom;
    the focus ring and input borders stand out at 3:1; forced-colours mode keeps buttons and bars."""
    from playwright.sync_api import expect

    base = demo_server
    case = next(c for c in KNOWN if c.get("purpose", "reference") == "reference")
    pages = [p.format(seeker=case["seeker"], advocate=case["advocate"]) for p in A11Y_PAGES]
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(base + "/login")
    assert axe_violations(page) == [], "/login"
    sign_in(page, base, "admin")
    # an import refused for a bad row: its page lists what to fix (and nothing is written)
    bad_file = ARTIFACTS / "bad-accounts.csv"
    ARTIFACTS.mkdir(exist_ok=True)
    bad_file.write_text("external_id,name,employees\nA11Y-1,Axe Freight,lots\n", encoding="utf-8")
    page.goto(base + "/import")
    page.get_by_label("What the file holds").select_option("accounts")
    page.get_by_label("File to import").set_input_files(str(bad_file))
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-status")).to_have_attribute("data-status", "failed", timeout=60_000)
    pages.append(page.url.removeprefix(base))
    for path in pages:
        page.goto(base + path)
        assert axe_violations(page) == [], path
    # what the forms show once used: ad-hoc matches, and a match's request form opened
    page.goto(base + "/match")
    page.get_by_label("Prospect description").fill("A freight forwarder moving its warehouses onto a new WMS")
    page.get_by_label("Flow WMS").check()
    page.get_by_role("button", name="Find matches").click()
    expect(page.locator("li.match").first).to_be_visible()
    page.locator("li.match details.request summary").first.click()
    assert axe_violations(page) == [], "/match with results and a request form open"
    # 3:1 for the focus ring against the page and for input borders against the input
    page.goto(base + "/accounts")
    search = page.get_by_role("searchbox", name="Search")
    look = search.evaluate("e => [getComputedStyle(e).borderTopColor, getComputedStyle(e).backgroundColor]")
    assert contrast(*look) >= 3, f"input border {look[0]} on {look[1]}"
    search.focus()
    ring = search.evaluate("e => getComputedStyle(e).outlineColor")
    behind = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert contrast(ring, behind) >= 3, f"focus ring {ring} on {behind}"
    context.close()

    # reflow: 320 CSS px (WCAG 1.4.10) and a 1280 px window at 200% zoom
    for width, height, scale in ((320, 640, 1), (640, 450, 2)):
        narrow = browser.new_context(viewport={"width": width, "height": height}, device_scale_factor=scale)
        small = narrow.new_page()
        sign_in(small, base, "admin")
        for path in pages:
            small.goto(base + path)
            scroll = small.evaluate("document.documentElement.scrollWidth")
            assert scroll <= width, f"{path} scrolls sideways at {width} px ({scroll} px)"
        narrow.close()

    # forced colours (Windows high contrast): buttons keep a border, bars keep their fill
    forced = browser.new_context(viewport={"width": 1280, "height": 900}, forced_colors="active")
    page = forced.new_page()
    sign_in(page, base, "admin")
    page.goto(base + "/accounts")
    button = page.get_by_role("button", name="Filter")
    border = button.evaluate(
        "e => [getComputedStyle(e).borderTopStyle, parseFloat(getComputedStyle(e).borderTopWidth)]"
    )
    assert border[0] != "none" and border[1] >= 1, f"a button has no border in forced colours: {border}"
    page.goto(base + "/advocates")
    fill = page.locator('[role="meter"] > span').first.evaluate(
        "e => [getComputedStyle(e).backgroundColor, getComputedStyle(e.parentElement).backgroundColor]"
    )
    assert fill[0] != fill[1] and fill[0] != "rgba(0, 0, 0, 0)", f"a bar's fill vanishes in forced colours: {fill}"
    forced.close()


def test_api_over_the_real_server(demo_dir, demo_server):
    """The real model behind the real WSGI server: stored and ad-hoc matches find the planted advocate."""
    from refmatch.app import users

    status, body = api(demo_server, "/api/v1/accounts")
    assert status == 401 and body["error"]["code"] == "unauthorized"
    db = service_at(demo_dir / "demo.db")
    try:
        token, _ = users.create_token(db, "cs", "e2e")
        case = KNOWN[0]
        profile, industry = db.conn.execute(
            "SELECT profile, industry FROM accounts WHERE external_id = ?", (case["seeker"],)
        ).fetchone()
        needs = [r[0] for r in db.conn.execute(
            "SELECT text FROM needs JOIN accounts ON accounts.id = account_id "
            "WHERE external_id = ? AND status != 'met'", (case["seeker"],),
        )]  # fmt: skip
    finally:
        db.close()
    status, stored = api(demo_server, f"/api/v1/accounts/{case['seeker']}/matches?k=3", token)
    assert status == 200 and stored["model"] == "all-MiniLM-L6-v2"
    assert case["advocate"] in [m["advocate"]["external_id"] for m in stored["matches"]]
    status, adhoc = api(
        demo_server, "/api/v1/match", token, {"text": profile, "industry": industry, "needs": needs, "k": 3}
    )
    assert status == 200 and adhoc["seeker"]["external_id"] is None
    assert case["advocate"] in [m["advocate"]["external_id"] for m in adhoc["matches"]]


def test_serve_with_two_workers(demo_dir):
    """--workers 2: two processes share the port, each loads its own model; both stop with the parent."""
    import socket
    import time

    from tests.e2e_demo import serving

    with serving(demo_dir, "--workers", "2", "--threads", "2") as base:
        port = int(base.rsplit(":", 1)[1])
        log = demo_dir / f"serve-{port}.log"
        deadline = time.monotonic() + 180
        while log.read_text().count(" ready (") < 2 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert log.read_text().count(" ready (") == 2, log.read_text()
        assert "with 2 workers" in log.read_text()
        for _ in range(8):
            status, body = api(base, "/readyz")
            assert status == 200 and body["status"] == "ready"
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # past TIME_WAIT, but not past a listener
        s.bind(("127.0.0.1", port))  # nobody listens any more: the workers are gone
