"""The server-rendered UI: Jinja pages over the same service calls as the API.

Every POST is a form carrying the session's CSRF token (checked in ``auth``); a
refused form is shown again with each error beside its field and the status code
that says why (400 invalid, 403 role, 409 capacity / consent / workflow).
"""

from __future__ import annotations

import math
from datetime import date
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from markupsafe import Markup, escape
from werkzeug.wrappers import Response

from refmatch import batch, crm
from refmatch.app import advocacy, imports, queries, tables, users
from refmatch.app import requests as workflow
from refmatch.app import risk as risk_service
from refmatch.app.notify import outbox
from refmatch.app.notify import prefs as notify_prefs
from refmatch.domain import clock, limits, vocabulary
from refmatch.domain.errors import Forbidden, InvalidInput, RefmatchError
from refmatch.domain.models import DEFAULT_REFERENCE_TYPE, PURPOSES
from refmatch.risk import LEVELS
from refmatch.web.auth import current_user, safe_next, sign_in, sign_out
from refmatch.web.charts import bars, lines
from refmatch.web.errors import field_errors, status_of
from refmatch.web.files import file_response, run_table
from refmatch.web.state import SharedService, WebState

bp = Blueprint("ui", __name__)
PER_PAGE = 25
Page = str | tuple[str, int] | Response


def state() -> WebState:
    return current_app.extensions["refmatch"]


def service() -> SharedService:
    return state().service


def _user() -> users.User:
    user = current_user()
    assert user is not None  # the auth gate ran
    return user


def page_number() -> int:
    """?page=, from 1; anything else is page 1, and a page past any real one is the last that may exist."""
    try:
        page = int(request.args.get("page", "1"))
    except ValueError:  # not a number, or thousands of digits
        return 1
    return min(max(1, page), limits.MAX_OFFSET // PER_PAGE)


def pager(total: int, page: int, per_page: int | None = None) -> dict[str, Any]:
    """What the pagination macro needs; arguments other than ``page`` are kept in the links."""
    pages = max(1, math.ceil(total / (per_page or PER_PAGE)))
    args = {k: v for k, v in request.args.items() if k != "page" and v != ""}
    args.update(request.view_args or {})
    return {"page": min(page, pages), "pages": pages, "total": total, "args": args, "endpoint": request.endpoint}


def _offset(page: int, per_page: int | None = None) -> int:
    return (page - 1) * (per_page or PER_PAGE)


def sparkline(points: list[list[Any]], label: str, width: int = 120, height: int = 28) -> Markup:
    """A trend as an inline SVG polyline (drawn here: no script). ``points`` are [ISO date, value] pairs."""
    pad = 2
    if not points:
        return Markup('<span class="muted small">no trend</span>')
    days = [date.fromisoformat(str(d)[:10]).toordinal() for d, _ in points]
    values = [float(v) for _, v in points]
    d0, d1 = min(days), max(days)
    v0, v1 = min(values), max(values)
    if v1 - v0 < 1e-9:
        v0, v1 = v0 - 1, v1 + 1
    xs = [pad + (width - 2 * pad) * ((d - d0) / (d1 - d0) if d1 > d0 else 0.5) for d in days]
    ys = [pad + (height - 2 * pad) * (1 - (v - v0) / (v1 - v0)) for v in values]
    coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys))
    first, last = values[0], values[-1]
    text = f"{label}: {first:g} on {points[0][0]} to {last:g} on {points[-1][0]}"
    return Markup(
        f'<svg class="sparkline" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(text)}"><title>{escape(text)}</title>'
        f'<polyline fill="none" points="{coords}"/>'
        f'<circle r="2" cx="{xs[-1]:.1f}" cy="{ys[-1]:.1f}"/></svg>'
    )


@bp.app_context_processor
def _globals() -> dict[str, Any]:
    return {
        "PURPOSES": PURPOSES,
        "REFERENCE_TYPES": vocabulary.REFERENCE_TYPES,
        "DEFAULT_REFERENCE_TYPE": DEFAULT_REFERENCE_TYPE,
        "STATES": workflow.STATES,
        "VERBS": workflow.VERBS,
        "LEVELS": LEVELS,
        "OPEN_STATES": queries.OPEN_STATES,
        "today": lambda: clock.today().isoformat(),  # a blackout that ended is not shown
        "sparkline": sparkline,
        "download_url": download_url,
    }


def download_url(fmt: str) -> str:
    """This page's list as a file: the same filters, every page of it."""
    args: dict[str, Any] = {**(request.view_args or {}), **request.args.to_dict()}
    args.pop("page", None)
    args["format"] = fmt
    return url_for(request.endpoint or "ui.dashboard", **args)


def wants_file() -> bool:
    return "format" in request.args


def download(t: tables.Table, label: str | None = None) -> Response:
    """A list as the CSV or XLSX file ``?format=`` asks for, named after it and today."""
    return file_response(t, request.args.get("format", ""), label)


# -- signing in ----------------------------------------------------------------------


@bp.route("/login", methods=["GET", "POST"])
def login() -> Page:
    next_url = safe_next(request.values.get("next"))
    if request.method in ("GET", "HEAD"):
        if current_user() is not None:
            return redirect(next_url or url_for("ui.dashboard"))
        return render_template("login.html", errors={}, username="", next=next_url or "")
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    errors = {}
    if not username:
        errors["username"] = "Enter your username."
    if not password:
        errors["password"] = "Enter your password."
    if errors:
        return render_template("login.html", errors=errors, username=username, next=next_url or ""), 400
    svc, address = service(), request.remote_addr
    wait, attempt = users.begin_login(svc, username, address)  # counted before the password is checked
    if wait or attempt is None:  # the password is not even checked
        minutes = math.ceil(wait / 60)
        errors[""] = (
            "Too many failed sign-ins for this username or from this address: "
            f"try again in {minutes} minute{'' if minutes == 1 else 's'}."
        )
        html = render_template("login.html", errors=errors, username=username, next=next_url or "")
        return Response(html, status=429, headers={"Retry-After": str(wait)}, mimetype="text/html")
    try:
        user = users.authenticate(svc, username, password)
    except Forbidden as exc:  # the right password of a disabled user
        errors[""] = exc.message
        return render_template("login.html", errors=errors, username=username, next=next_url or ""), 403
    if user is None:
        errors[""] = "Wrong username or password."
        return render_template("login.html", errors=errors, username=username, next=next_url or ""), 400
    users.login_succeeded(svc, username, address, attempt)
    sign_in(user)
    return redirect(next_url or url_for("ui.dashboard"))


@bp.post("/logout")
def logout() -> Response:
    sign_out()
    flash("You are signed out.")
    return redirect(url_for("ui.login"))


# -- dashboard -------------------------------------------------------------------------


@bp.get("/")
def dashboard() -> Page:
    svc = service()
    counts = queries.request_counts(svc)
    near, near_total = workflow.advocate_load(svc, near_capacity_only=True, limit=10)
    coverage = [queries.coverage(svc, p) for p in queries.COVERAGE_PURPOSES]
    names = {}
    shown = [e for c in coverage for e in c.uncovered[:10]]
    if shown:
        items, _ = queries.list_accounts(svc, external_ids=shown, limit=queries.MAX_LIMIT)
        names = {i["external_id"]: i["name"] for i in items}
    late, late_total = workflow.list_requests(svc, _user(), overdue=True, limit=5)
    ages = queries.request_ages(svc)
    per_quarter = queries.requests_by_quarter(svc)
    load = queries.load_distribution(svc)
    charts = {
        "ages": bars(
            list(ages),
            [(state, [ages[b][state] for b in ages]) for state in queries.OPEN_STATES],
            title="Open requests by how long ago they were made, by state",
        ),
        "quarters": bars(
            [q["quarter"] for q in per_quarter],
            [(k, [q[k] for q in per_quarter]) for k in ("completed", "declined or cancelled", "open")],
            title="Requests made each quarter, by where they are now",
        ),
        "load": bars(
            list(load), [("advocates", list(load.values()))], title="Consenting advocates by this quarter's load"
        ),
    }
    return render_template(
        "dashboard.html",
        ages=ages,
        per_quarter=per_quarter,
        load=load,
        charts=charts,
        counts=counts,
        near=near,
        near_total=near_total,
        coverage=coverage,
        names=names,
        late=late,
        late_total=late_total,
    )


# -- accounts ------------------------------------------------------------------------------


@bp.get("/accounts")
def accounts() -> Page:
    svc = service()
    page = page_number()
    filters = {k: request.args.get(k, "").strip() for k in ("q", *queries.ACCOUNT_FILTERS)}
    uncovered = request.args.get("uncovered", "")
    external_ids = None
    if uncovered in queries.COVERAGE_PURPOSES:
        external_ids = queries.coverage(svc, uncovered).uncovered
    if wants_file():
        return download(tables.accounts(svc, **{k: v or None for k, v in filters.items()}, external_ids=external_ids))
    items, total = queries.list_accounts(
        svc, **{k: v or None for k, v in filters.items()}, external_ids=external_ids, limit=PER_PAGE,
        offset=_offset(page),
    )  # fmt: skip
    return render_template(
        "accounts.html",
        items=items,
        filters=filters,
        uncovered=uncovered if external_ids is not None else "",
        facets=queries.facets(svc),
        pager=pager(total, page),
    )


def _default_purpose(stage: str) -> str:
    """A new deployment looks for a mentor; everyone else, by default, for a reference."""
    return "mentor" if stage == "onboarding" else "reference"


def _timeline_view(name: str, timeline: dict[str, Any]) -> dict[str, Any] | None:
    """The account's health and usage over time as a chart, the same numbers as rows, and its
    stretches at risk (the chart shades them)."""
    signals = timeline["signals"]
    if not signals:
        return None
    days = sorted({day for points in signals.values() for day, _ in points})
    by_kind = {kind: dict((day, value) for day, value in points) for kind, points in signals.items()}
    stretches = [
        (e["entered_on"], e["ended_on"] or "", f"at risk from {e['entered_on']} to {e['ended_on'] or 'now'} "
         f"({e['peak_level']} at worst; {e['outcome']})")
        for e in timeline["episodes"]
        if (e["ended_on"] or days[-1]) >= days[0]
    ]  # fmt: skip
    chart = lines(
        days,
        [(kind, [by_kind[kind].get(day) for day in days]) for kind in signals],
        title=f"{' and '.join(k.capitalize() for k in signals)} of {name} over time, with the stretches at risk shaded",
        bands=stretches,
    )
    rows = [{"day": day, **{kind: by_kind[kind].get(day) for kind in signals}} for day in days]
    return {"chart": chart, "kinds": list(signals), "rows": rows, "episodes": timeline["episodes"]}


def _account_page(
    external_id: str,
    *,
    purpose: str | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
    terms_errors: dict[str, str] | None = None,
) -> Page:
    svc = service()
    user = _user()
    contacts = workflow.can_see_contact(user, None)
    account = queries.get_account(svc, external_id, include_contact=contacts)
    # a prospect asks for references; mentors and retention peers are for customers (Service._fits)
    purposes = ("reference",) if account["stage"] == svc.settings.stages[0] else PURPOSES
    purpose = purpose if purpose and purpose in purposes else _default_purpose(account["stage"])
    result, match_error = None, None
    try:
        result = svc.match_account(external_id, purpose=purpose)
    except RefmatchError as exc:
        match_error = exc.message
    state().bring_risk_current()
    risk = risk_service.risk_of(svc, external_id)
    timeline = risk_service.timeline(svc, external_id)
    recent: list[Any] = []
    recent_total = 0
    if account["advocate"]:
        recent, recent_total = workflow.list_requests(svc, user, advocate_external_id=external_id, limit=5)
    page = render_template(
        "account.html",
        account=account,
        purpose=purpose,
        purposes=purposes,
        result=result.as_dict() if result else None,
        eligible=result.eligible if result else 0,
        match_error=match_error,
        form=form or {},
        recent=recent,
        recent_total=recent_total,
        risk=risk,
        timeline=_timeline_view(account["name"], timeline),
        **_terms(external_id, user, terms_errors),
    )
    return page, status


def _terms(external_id: str, user: users.User, errors: dict[str, str] | None) -> dict[str, Any]:
    """A manager's form for the account's advocate terms, its choices and its history; nothing for others."""
    if not user.is_manager:
        return {"terms": None}
    svc = service()
    return {
        "terms": advocacy.current(svc, external_id),
        "terms_errors": errors or {},
        "terms_history": advocacy.history(svc, external_id, 10),
        "all_accounts": advocacy.account_choices(svc),
        "default_capacity": svc.settings.default_capacity,
    }


@bp.post("/accounts/<external_id>/advocate")
def manage_advocate(external_id: str) -> Page:
    form = request.form
    try:
        with state().writing() as svc:
            changes = advocacy.manage(
                svc,
                _user(),
                external_id,
                consent=form.get("consent") == "1",
                reference_types=form.getlist("reference_types"),
                capacity_per_quarter=form.get("capacity_per_quarter", "").strip() or None,
                blackout_until=form.get("blackout_until", "").strip() or None,
                do_not_match=form.getlist("do_not_match"),
                note=form.get("note", "").strip() or None,
            )
    except InvalidInput as exc:
        return _account_page(external_id, status=400, terms_errors=field_errors(exc))
    said = ", ".join(c["field"].replace("_", " ") for c in changes) or "nothing changed"
    flash(f"Advocate terms saved: {said}.")
    return redirect(url_for("ui.account", external_id=external_id))


@bp.get("/accounts/<external_id>")
def account(external_id: str) -> Page:
    if wants_file():  # the account's matches for the purpose asked
        svc = service()
        account = queries.get_account(svc, external_id, include_contact=False)
        purpose = request.args.get("purpose") or _default_purpose(account["stage"])
        return download(tables.matches(svc, external_id, purpose=purpose), label=f"{external_id}-{purpose}-matches")
    return _account_page(external_id, purpose=request.args.get("purpose"))


def _request_form() -> dict[str, Any]:
    return {k: request.form.get(k, "").strip() for k in ("advocate_external_id", "reference_type", "note", "purpose",
                                                        "override_reason", "seeker_external_id")}  # fmt: skip


def _create_request(form: dict[str, Any]) -> workflow.RequestView:
    with state().writing() as svc:
        return workflow.create_request(
            svc,
            _user(),
            advocate_external_id=form["advocate_external_id"],
            seeker_external_id=form["seeker_external_id"] or None,
            purpose=form["purpose"] or "reference",
            reference_type=form["reference_type"] or None,
            note=form["note"] or None,
            override_reason=form["override_reason"] or None,
        )


@bp.post("/accounts/<external_id>/requests")
def request_reference(external_id: str) -> Page:
    form = _request_form()
    form["seeker_external_id"] = external_id
    try:
        view = _create_request(form)
    except RefmatchError as exc:
        form["errors"] = field_errors(exc)
        return _account_page(external_id, purpose=form["purpose"], form=form, status=status_of(exc))
    flash(f"Reference request #{view.id} sent to {view.advocate['name']}: a reference manager will review it.")
    return redirect(url_for("ui.request_detail", request_id=view.id))


# -- risk: at-risk accounts and new deployments -------------------------------------------------

RISK_PER_PAGE = 20  # each account on a page is matched: pages stay small


@bp.get("/at-risk")
def at_risk() -> Page:
    svc = service()
    page = page_number()
    level = request.args.get("level", "")
    level = level if level in LEVELS else ""
    state().bring_risk_current()
    if wants_file():
        return download(tables.at_risk(svc, level or None))
    if request.args.get("view") != "peers":
        return _at_risk_table(svc, level, page)
    items, total, shown_level = risk_service.at_risk_page(
        svc, level=level or None, limit=RISK_PER_PAGE, offset=_offset(page, RISK_PER_PAGE)
    )
    trend = risk_service.trends(svc, [i["external_id"] for i in items])
    return render_template(
        "at_risk.html",
        items=items,
        level=shown_level,
        trend=trend,
        pager=pager(total, page, RISK_PER_PAGE),
    )


FORECAST_GROUPINGS = {  # the ``by`` values the page offers, and how it names them
    "industry,product,region": "industry × product × region",
    "industry,product": "industry × product",
    "industry": "industry",
    "product": "product",
    "region": "region",
}
FORECAST_CHARTS = 6  # segments charted: those that run dry soonest
RECRUITS_SHOWN = 25  # the rest are in the download


@bp.get("/forecast")
def forecast_page() -> Page:
    from refmatch.app.forecast import forecast as compute
    from refmatch.app.forecast import recruits

    svc = service()
    by = request.args.get("by", "industry,product,region")
    by = by if by in FORECAST_GROUPINGS else "industry,product,region"
    try:
        quarters = min(8, max(2, int(request.args.get("quarters", "4"))))
    except ValueError:
        quarters = 4
    if wants_file():
        listed = tables.recruits if request.args.get("list") == "recruits" else tables.forecast
        return download(listed(svc, by=by, quarters=quarters))
    f = compute(svc, by=by, quarters=quarters)
    to_recruit = recruits(svc, f)
    charts = [
        (
            s,
            bars(
                f.quarters,
                [("demand", [q.demand for q in s.quarters]), ("capacity", [q.capacity for q in s.quarters])],
                title=f"{s.name}: reference demand against advocate capacity by quarter",
            ),
        )
        for s in f.running_dry()[:FORECAST_CHARTS]
    ]
    return render_template(
        "forecast.html", f=f, charts=charts, by=by, quarters=quarters, groupings=FORECAST_GROUPINGS,
        recruits=to_recruit[:RECRUITS_SHOWN], recruit_count=len(to_recruit),
    )  # fmt: skip


@bp.get("/outcomes")
def outcomes_page() -> Page:
    from refmatch.app.outcomes import outcomes as compute

    svc = service()
    if wants_file():
        table = request.args.get("table", "quarters")
        return download(tables.outcomes(svc, table if table in tables.OUTCOME_TABLES else "quarters"))
    report = compute(svc)
    quarters = [t.key for t in report.by_quarter]
    charts = {
        "arr": bars(
            quarters,
            [("influenced ARR", [t.influenced_arr for t in report.by_quarter])],
            title="Influenced ARR of won deals, by the quarter the reference was completed",
            width=560,
        ),
        "deals": bars(
            quarters,
            [("won", [t.won for t in report.by_quarter]), ("lost", [t.lost for t in report.by_quarter])],
            title="Deals won and lost after a reference, by quarter",
            width=560,
        ),
    }
    return render_template("outcomes.html", r=report, charts=charts)


AT_RISK_PAGE_SIZES = (25, 50, 100, 200)


def _at_risk_table(svc: Any, level: str, page: int) -> Page:
    """The at-risk accounts as a table: sortable by risk, ARR, renewal date or name, searchable, page sizes."""
    sort = request.args.get("sort", "risk")
    sort = sort if sort in risk_service.AT_RISK_SORTS else "risk"
    order = request.args.get("order", "")
    descending = {"asc": False, "desc": True}.get(order)
    try:
        per = int(request.args.get("per", AT_RISK_PAGE_SIZES[0]))
    except ValueError:
        per = AT_RISK_PAGE_SIZES[0]
    per = per if per in AT_RISK_PAGE_SIZES else AT_RISK_PAGE_SIZES[0]
    q = request.args.get("q", "").strip()[:100]
    items, total, shown_level = risk_service.at_risk_table(
        svc, level=level or None, sort=sort, descending=descending, q=q or None, limit=per, offset=_offset(page, per)
    )
    default_down = sort in ("risk", "arr")
    down = default_down if descending is None else descending
    counts = risk_service.risk_list(svc, limit=1).counts
    chart = bars(list(counts), [("accounts", list(counts.values()))], title="Scored accounts by risk level")
    return render_template(
        "at_risk_table.html", items=items, level=shown_level, sort=sort, down=down, per=per, q=q,
        sizes=AT_RISK_PAGE_SIZES, pager=pager(total, page, per), total=total, counts=counts, chart=chart,
    )  # fmt: skip


@bp.get("/onboarding")
def onboarding() -> Page:
    svc = service()
    page = page_number()
    state().bring_risk_current()
    items, total = risk_service.onboarding_page(svc, limit=RISK_PER_PAGE, offset=_offset(page, RISK_PER_PAGE))
    return render_template("onboarding.html", items=items, pager=pager(total, page, RISK_PER_PAGE))


# -- ad-hoc matching --------------------------------------------------------------------------

MATCH_FORM = ("text", "needs", "name", "industry", "employees", "country", "region", "products", "stage", "purpose",
              "k")  # fmt: skip


def _adhoc_args(form: dict[str, str]) -> dict[str, Any]:
    errors: list[dict[str, str]] = []
    args: dict[str, Any] = {
        "needs": [n.strip() for n in form["needs"].splitlines() if n.strip()],
        "products": [p.strip() for p in form["products"].replace(",", ";").split(";") if p.strip()],
        "purpose": form["purpose"] or "reference",
    }
    for key in ("name", "industry", "country", "region", "stage"):
        if form[key]:
            args[key] = form[key]
    for key, low, high in (("employees", 0, None), ("k", 1, 100)):
        if form[key]:
            try:
                args[key] = int(form[key])
                if args[key] < low or (high is not None and args[key] > high):
                    raise ValueError
            except ValueError:
                span = f"from {low} to {high}" if high else f"{low} or more"
                errors.append({"field": key, "message": f"Enter a whole number {span}."})
    if not form["text"]:
        errors.append({"field": "text", "message": "Describe the prospect: who they are, what they do, their set-up."})
    if errors:
        raise InvalidInput("; ".join(e["message"] for e in errors), details=errors)
    return args


@bp.route("/match", methods=["GET", "POST"])
def match() -> Page:
    svc = service()
    form = {k: request.form.get(k, "").strip() for k in MATCH_FORM}
    form["products"] = ";".join(p.strip() for p in request.form.getlist("products") if p.strip())  # the ticked boxes
    context: dict[str, Any] = {"form": form, "errors": {}, "result": None, "facets": queries.facets(svc)}
    if request.method in ("GET", "HEAD"):
        return render_template("match.html", **context)
    try:
        args = _adhoc_args(form)
        result = svc.match_text(form["text"], **args)
    except RefmatchError as exc:
        context["errors"] = field_errors(exc)
        return render_template("match.html", **context), status_of(exc)
    context["result"] = result.as_dict()
    context["eligible"] = result.eligible
    return render_template("match.html", **context)


@bp.post("/match/request")
def adhoc_request() -> Page:
    form = _request_form()
    try:
        view = _create_request(form)
    except RefmatchError as exc:
        flash(f"Request refused: {exc.message}", "error")
        return render_template("match.html", form={k: "" for k in MATCH_FORM}, errors={}, result=None,
                               facets=queries.facets(service())), status_of(exc)  # fmt: skip
    flash(f"Reference request #{view.id} sent to {view.advocate['name']}.")
    return redirect(url_for("ui.request_detail", request_id=view.id))


# -- the request queue -------------------------------------------------------------------------


@bp.get("/requests")
def requests_queue() -> Page:
    svc = service()
    user = _user()
    page = page_number()
    status = request.args.get("status", "")
    status = status if status in workflow.STATES else ""
    mine = request.args.get("mine") == "1"
    overdue = request.args.get("overdue") == "1"
    if wants_file():
        return download(tables.requests(svc, user, status=status or None, mine=mine, overdue=overdue))
    views, total = workflow.list_requests(
        svc, user, status=status or None, mine=mine, overdue=overdue, limit=PER_PAGE, offset=_offset(page)
    )
    return render_template(
        "requests.html",
        views=views,
        status=status,
        mine=mine,
        overdue=overdue,
        overdue_total=workflow.list_requests(svc, user, overdue=True, limit=1)[1],
        counts=queries.request_counts(svc),
        pager=pager(total, page),
    )


def _request_page(request_id: int, *, errors: dict[str, dict[str, str]] | None = None, status: int = 200) -> Page:
    svc = service()
    view = workflow.get_request(svc, _user(), request_id)
    return render_template(
        "request.html",
        view=view,
        events=workflow.events(svc, request_id),
        errors=errors or {},
        values=request.form if request.method == "POST" else {},
        deal_outcomes=workflow.DEAL_OUTCOMES,
    ), status


@bp.get("/requests/<int:request_id>")
def request_detail(request_id: int) -> Page:
    return _request_page(request_id)


@bp.post("/requests/<int:request_id>/transition")
def request_transition(request_id: int) -> Page:
    to_status = request.form.get("to_status", "")
    values: dict[str, Any] = {k: request.form.get(k, "").strip() or None for k in (
        "note", "scheduled_for", "rating", "deal_outcome", "influenced_arr", "override_reason")}  # fmt: skip
    try:
        with state().writing() as svc:
            view = workflow.transition(svc, _user(), request_id, to_status, **values)
    except Forbidden as exc:
        return _request_page(request_id, errors={to_status: {"": exc.message}}, status=403)
    except RefmatchError as exc:
        if exc.code == "not_found":
            raise
        return _request_page(request_id, errors={to_status: field_errors(exc)}, status=status_of(exc))
    flash(f"Request #{view.id} for {view.advocate['name']} is now {view.status}.")
    return redirect(safe_next(request.form.get("next")) or url_for("ui.request_detail", request_id=request_id))


# -- advocates -------------------------------------------------------------------------------------


@bp.get("/advocates")
def advocates() -> Page:
    svc = service()
    page = page_number()
    q = request.args.get("q", "").strip()
    ref_type = request.args.get("reference_type", "")
    ref_type = ref_type if ref_type in vocabulary.REFERENCE_TYPES else ""
    consent = {"yes": True, "no": False}.get(request.args.get("consent", ""))
    near = request.args.get("near") == "1"
    if wants_file():
        return download(
            tables.advocates(svc, _user(), q=q or None, consent=consent, reference_type=ref_type or None,
                             near_capacity_only=near)
        )  # fmt: skip
    items, total = queries.list_advocates(
        svc,
        q=q or None,
        consent=consent,
        reference_type=ref_type or None,
        near_capacity_only=near,
        include_contact=workflow.can_see_contact(_user(), None),
        limit=PER_PAGE,
        offset=_offset(page),
    )
    filters = {"q": q, "reference_type": ref_type, "consent": request.args.get("consent", ""), "near": near}
    return render_template("advocates.html", items=items, filters=filters, pager=pager(total, page))


# -- batch runs: the nightly job's results, each run's matches as a file ------------------------------


@bp.get("/runs")
def batch_runs() -> Page:
    svc = service()
    if wants_file():  # one run's matches
        raw = request.args.get("run", "")
        if not raw.isdigit():
            raise InvalidInput(
                f"run: a batch run's id, got {raw!r}", details=[{"field": "run", "message": "not a run id"}]
            )
        return download(run_table(svc.conn, int(raw)), label=f"run-{raw}-matches")
    found = batch.list_runs(svc.conn, 50)
    return render_template(
        "runs.html", runs=found, lines={r.id: batch.format_report(r.report) for r in found if r.report}
    )


# -- imports: a file uploaded and imported in the background, its progress followed -------------------------


def upload_limit() -> None:
    """The import form may send a large file; every other route keeps the app's small body limit."""
    if request.endpoint == "ui.import_page" and request.method == "POST":
        request.max_content_length = imports.MAX_UPLOAD_BYTES


def _import_page(errors: dict[str, str] | None = None, status: int = 200) -> Page:
    svc = service()
    return render_template(
        "import.html",
        kinds=imports.KINDS,
        presets=crm.PRESETS,
        jobs=imports.recent(svc.settings),
        errors=errors or {},
        values=request.form if request.method == "POST" else {},
        max_upload=imports.MAX_UPLOAD_BYTES,
    ), status


def _only_managers() -> users.User:
    user = _user()
    if not user.is_manager:
        raise Forbidden("only a reference manager or admin may import files")
    return user


@bp.route("/import", methods=["GET", "POST"])
def import_page() -> Page:
    user = _only_managers()
    if request.method in ("GET", "HEAD"):
        return _import_page()
    form, upload = request.form, request.files.get("file")
    mapping = form.get("map", "")
    if mapping not in ("", *crm.PRESETS):
        return _import_page({"map": f"must be one of {', '.join(crm.PRESETS)}, or empty to detect it"}, 400)
    try:
        job = imports.start(
            service().settings,
            kind=form.get("kind", ""),
            filename=upload.filename or "" if upload else "",
            save=lambda path: upload.save(path) if upload else None,
            user=user.username,
            column_map=mapping or None,
            dry_run=form.get("dry_run") == "1",
            skip_invalid=form.get("skip_invalid") == "1",
            ignore_unknown=form.get("ignore_unknown") == "1",
        )
    except InvalidInput as exc:
        return _import_page(field_errors(exc), 400)
    finally:
        if upload:
            upload.close()  # a large upload is spooled to a temporary file: saved, it is closed at once
    return redirect(url_for("ui.import_job", job_id=job.id))


@bp.get("/imports/<job_id>")
def import_job(job_id: str) -> Page:
    _only_managers()
    job = imports.get(service().settings, job_id)
    return render_template("import_job.html", job=job)


# -- notifications -------------------------------------------------------------------------------


@bp.get("/notifications")
def notifications() -> Page:
    return _notifications_page()


def _notifications_page(errors: dict[str, str] | None = None, status: int = 200) -> Page:
    svc, user = service(), _user()
    shown_status = request.args.get("status", "failed")
    shown_status = shown_status if shown_status in ("pending", "sent", "failed") else "failed"
    deliveries = outbox.deliveries(svc, shown_status, 50) if user.is_manager else []
    return render_template(
        "notifications.html",
        mine=notify_prefs.preferences(svc, user.username),
        events=outbox.EVENTS,
        channels=outbox.PERSONAL_CHANNELS,
        counts=outbox.counts(svc) if user.is_manager else None,
        deliveries=deliveries,
        shown_status=shown_status,
        errors=errors or {},
    ), status


@bp.post("/notifications/mine")
def notifications_mine() -> Page:
    user = _user()
    form = request.form
    try:
        email, slack = form.get("email", "").strip(), form.get("slack_user_id", "").strip()
        wanted = {e: [c for c in outbox.PERSONAL_CHANNELS if form.get(f"want:{e}:{c}") == "1"] for e in outbox.EVENTS}
        with state().writing() as svc:
            notify_prefs.set_contact(svc, user.username, email=email, slack_user_id=slack)
            notify_prefs.set_wanted(svc, user.username, wanted)
    except InvalidInput as exc:
        return _notifications_page(errors=field_errors(exc), status=400)
    flash("Your notification settings are saved.")
    return redirect(url_for("ui.notifications"))


@bp.post("/notifications/retry")
def notifications_retry() -> Page:
    if not _user().is_manager:
        raise Forbidden("only a reference manager or admin may retry deliveries")
    raw = request.form.get("id", "").strip()
    ids = None
    if raw:
        if not raw.isdigit():
            raise InvalidInput(f"id: not a delivery id: {raw!r}")
        ids = [int(raw)]
    with state().writing() as svc:
        n = outbox.retry(svc, ids)
    flash(f"{n} deliver{'y' if n == 1 else 'ies'} queued again.")
    return redirect(url_for("ui.notifications"))
