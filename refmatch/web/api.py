"""The JSON API under /api/v1: validate the request, call the service layer, return JSON.

Each view declares its query string, body and answers once, with the models of
``refmatch.web.schemas``; spectree (``refmatch.web.openapi``) checks requests against them
and writes the OpenAPI 3.1 document from them (served at ``/api/v1/openapi.json``). The
tests validate every response they get against that document.
"""

from __future__ import annotations

import copy
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request, url_for
from spectree import Response as Answers

from refmatch.app import queries, tables
from refmatch.app import requests as workflow
from refmatch.app import risk as risk_service
from refmatch.web import schemas
from refmatch.web.auth import EDITORS, current_user, require_role
from refmatch.web.errors import HttpError
from refmatch.web.files import file_response, run_table
from refmatch.web.openapi import file_responses, responses, spec, with_files
from refmatch.web.schemas import page
from refmatch.web.state import SharedService, WebState

bp = Blueprint("api", __name__, url_prefix="/api/v1")
ops = Blueprint("ops", __name__)  # /healthz and /readyz: for load balancers, no sign-in
ACCOUNT_ID = {"external_id": "the account's external id"}
REQUEST_ID = {"request_id": "the reference request's id"}


def state() -> WebState:
    return current_app.extensions["refmatch"]


def service() -> SharedService:
    return state().service


def _user():  # noqa: ANN202 - users.User, present behind the auth gate
    user = current_user()
    assert user is not None  # the auth gate ran
    return user


def document(app: Flask | None = None) -> dict[str, Any]:
    """The OpenAPI document (a copy: callers may change it); without ``app``, from these blueprints alone."""
    if app is None:
        app = Flask("refmatch-openapi")
        app.register_blueprint(bp)
        app.register_blueprint(ops)
    with app.app_context():  # spectree reads the routes of the current app
        return with_files(copy.deepcopy(spec.spec))


@bp.before_request
def _json_bodies() -> None:
    """A body that is not JSON is 400, JSON that is not an object 422, before any field is looked at."""
    if request.method not in ("POST", "PATCH"):
        return
    if not request.is_json:
        raise HttpError("bad_json", "send a JSON body with 'Content-Type: application/json'")
    try:
        body = current_app.json.loads(request.get_data(cache=True) or b"")  # bounded: refmatch.web.jsonio
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError("bad_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise HttpError("unprocessable", f"the body must be a JSON object, got {type(body).__name__}")


def _body() -> dict[str, Any]:
    """The JSON object as sent (after validation): absent and null stay apart, as PATCH needs."""
    return current_app.json.loads(request.get_data(cache=True))


def _given(model: schemas.Strict) -> dict[str, Any]:
    """The fields of a validated body that the caller sent with a value."""
    return model.model_dump(exclude_none=True)


def _ctx(name: str) -> Any:
    return getattr(request.context, name)  # type: ignore[attr-defined]  # spectree puts the validated models there


def created(body: dict[str, Any], location: str) -> Response:
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    return response


def _contacts() -> bool:
    return workflow.can_see_contact(_user(), None)


# -- operations ------------------------------------------------------------------------


@ops.get("/healthz")
@spec.validate(resp=responses(schemas.Health, public=True), tags=["ops"], security={})
def healthz() -> Response:
    """The process is alive"""
    return jsonify({"status": "ok"})


@ops.get("/readyz")
@spec.validate(
    resp=Answers(HTTP_200=schemas.Ready, HTTP_503=schemas.Ready, HTTP_500=schemas.Error), tags=["ops"], security={}
)
def readyz() -> Response:
    """Database open, indexes loaded and not stale, model loaded (503 with the checks if not)"""
    checks = service().readiness()
    ready = all(c["ok"] for c in checks.values())
    response = jsonify({"status": "ready" if ready else "not_ready", "checks": checks})
    response.status_code = 200 if ready else 503
    return response


@bp.get("/openapi.json")
def openapi() -> Response:
    """This document (an object; listed in no document, being the document)."""
    return jsonify(document(current_app))


# -- the caller ------------------------------------------------------------------------


@bp.get("/me")
@spec.validate(resp=responses(schemas.User), tags=["meta"])
def me() -> Response:
    """The signed-in user"""
    user = _user()
    return jsonify({**user.as_dict(), "is_manager": user.is_manager, "is_admin": user.is_admin})


# -- accounts ----------------------------------------------------------------------


@bp.get("/accounts")
@spec.validate(query=schemas.AccountsQuery, resp=responses(schemas.AccountSummaryPage, "400"), tags=["accounts"])
def list_accounts() -> Response:
    """Accounts: full-text search (q: name, id, industry, products, profile and needs), filters, pagination"""
    query: schemas.AccountsQuery = _ctx("query")
    args = query.model_dump(exclude={"limit", "offset"})
    items, total = queries.list_accounts(service(), **args, limit=query.limit, offset=query.offset)
    return jsonify(page(items, total, query.limit, query.offset))


@bp.post("/accounts")
@require_role(*EDITORS)
@spec.validate(
    json=schemas.AccountInput, resp=responses(schemas.Account, "409", status=201, body=True), tags=["accounts"]
)
def create_account() -> Response:
    """Create an account (reference managers, admins); validated like an import row"""
    with state().writing() as svc:
        account = queries.create_account(svc, _body(), include_contact=_contacts())
        svc.build_indexes()  # the new profile is searchable at once
    return created(account, url_for("api.get_account", external_id=account["external_id"]))


@bp.get("/accounts/<external_id>")
@spec.validate(resp=responses(schemas.Account, "404"), tags=["accounts"], path_parameter_descriptions=ACCOUNT_ID)
def get_account(external_id: str) -> Response:
    """An account with its needs and advocate profile"""
    svc = service()
    return jsonify(queries.get_account(svc, external_id, include_contact=_contacts()))


@bp.patch("/accounts/<external_id>")
@require_role(*EDITORS)
@spec.validate(
    json=schemas.AccountPatch,
    resp=responses(schemas.Account, "404", body=True),
    tags=["accounts"],
    path_parameter_descriptions=ACCOUNT_ID,
)
def update_account(external_id: str) -> Response:
    """Update an account (reference managers, admins): the fields given; null clears one"""
    with state().writing() as svc:
        account = queries.update_account(svc, external_id, _body(), include_contact=_contacts())
        svc.build_indexes()
    return jsonify(account)


@bp.get("/accounts/<external_id>/matches")
@spec.validate(
    query=schemas.MatchesQuery,
    resp=responses(schemas.MatchResult, "400", "404", "503"),
    tags=["matching"],
    path_parameter_descriptions=ACCOUNT_ID,
)
def account_matches(external_id: str) -> Response:
    """Matches for a stored seeker, with component scores and reasons"""
    query: schemas.MatchesQuery = _ctx("query")
    result = service().match_account(external_id, **query.model_dump())
    return jsonify(result.as_dict())


# -- risk ----------------------------------------------------------------------------


@bp.get("/at-risk")
@spec.validate(query=schemas.AtRiskQuery, resp=responses(schemas.AtRiskAccountPage, "400", "503"), tags=["risk"])
def at_risk() -> Response:
    """Accounts at a risk level or above, riskiest first, each with its top 3 retention peers"""
    query: schemas.AtRiskQuery = _ctx("query")
    state().bring_risk_current()
    items, total, _ = risk_service.at_risk_page(service(), level=query.level, limit=query.limit, offset=query.offset)
    return jsonify(page(items, total, query.limit, query.offset))


@bp.get("/accounts/<external_id>/risk")
@spec.validate(
    query=schemas.RiskQuery,
    resp=responses(schemas.AccountRisk, "400", "404"),
    tags=["risk"],
    path_parameter_descriptions=ACCOUNT_ID,
)
def account_risk(external_id: str) -> Response:
    """An account's risk: score, level, reasons, every rule's measure, its episodes and signals"""
    query: schemas.RiskQuery = _ctx("query")
    state().bring_risk_current()
    return jsonify(risk_service.account_risk(service(), external_id, as_of=query.as_of))


# -- analytics ------------------------------------------------------------------------


@bp.get("/forecast")
@spec.validate(query=schemas.ForecastQuery, resp=responses(schemas.Forecast, "400"), tags=["analytics"])
def forecast() -> Response:
    """Pool-exhaustion forecast: per segment, reference demand against advocate capacity, the quarter it runs dry"""
    from refmatch.app.forecast import forecast as compute

    query: schemas.ForecastQuery = _ctx("query")
    options = query.model_dump(exclude={"as_of"})
    return jsonify(compute(service(), **options, today=query.as_of).as_dict())


@bp.get("/recruits")
@spec.validate(query=schemas.ForecastQuery, resp=responses(schemas.RecruitList, "400"), tags=["analytics"])
def recruits() -> Response:
    """Who to recruit: healthy promoters not yet consenting, by the forecast shortfall they would cover"""
    from dataclasses import asdict

    from refmatch.app.forecast import forecast as compute
    from refmatch.app.forecast import recruits as ranked

    query: schemas.ForecastQuery = _ctx("query")
    f = compute(service(), **query.model_dump(exclude={"as_of"}), today=query.as_of)
    return jsonify({"as_of": f.as_of, "items": [asdict(r) for r in ranked(service(), f)]})


@bp.get("/exports/recruits")
@spec.validate(query=schemas.ForecastExport, resp=file_responses(), tags=["exports"])
def export_recruits() -> Response:
    """The recruiting list as a file"""
    query: schemas.ForecastExport = _ctx("query")
    options = query.model_dump(exclude={"as_of", "format"})
    return file_response(tables.recruits(service(), **options, today=query.as_of), query.format)


@bp.get("/exports/forecast")
@spec.validate(query=schemas.ForecastExport, resp=file_responses(), tags=["exports"])
def export_forecast() -> Response:
    """The pool-exhaustion forecast as a file: a row per segment, each quarter's demand, capacity and shortfall"""
    query: schemas.ForecastExport = _ctx("query")
    options = query.model_dump(exclude={"as_of", "format"})
    return file_response(tables.forecast(service(), **options, today=query.as_of), query.format)


@bp.get("/outcomes")
@spec.validate(resp=responses(schemas.Outcomes), tags=["analytics"])
def outcomes() -> Response:
    """What references did: deals won and lost, influenced ARR by quarter, product and industry, advocates' rates"""
    from refmatch.app.outcomes import outcomes as compute

    return jsonify(compute(service()).as_dict())


@bp.get("/exports/outcomes")
@spec.validate(query=schemas.OutcomesExport, resp=file_responses(), tags=["exports"])
def export_outcomes() -> Response:
    """One table of the outcome report as a file: by quarter, product or industry, or per advocate"""
    query: schemas.OutcomesExport = _ctx("query")
    return file_response(tables.outcomes(service(), query.table), query.format)


# -- needs and advocates --------------------------------------------------------------


@bp.get("/needs")
@spec.validate(query=schemas.NeedsQuery, resp=responses(schemas.NeedPage, "400"), tags=["accounts"])
def list_needs() -> Response:
    """Needs: by account, status, text search"""
    query: schemas.NeedsQuery = _ctx("query")
    items, total = queries.list_needs(service(), **query.model_dump())
    return jsonify(page(items, total, query.limit, query.offset))


@bp.get("/advocates")
@spec.validate(query=schemas.AdvocatesQuery, resp=responses(schemas.AdvocatePage, "400"), tags=["advocates"])
def list_advocates() -> Response:
    """Advocates with consent, reference types and this quarter's load"""
    query: schemas.AdvocatesQuery = _ctx("query")
    svc = service()
    items, total = queries.list_advocates(
        svc,
        q=query.q,
        consent=query.consent,
        reference_type=query.reference_type,
        near_capacity_only=query.near_capacity,
        include_contact=_contacts(),
        limit=query.limit,
        offset=query.offset,
    )
    return jsonify(page(items, total, query.limit, query.offset))


@bp.get("/advocates/load")
@spec.validate(query=schemas.LoadQuery, resp=responses(schemas.AdvocateLoadPage, "400"), tags=["advocates"])
def advocate_load() -> Response:
    """The advocate load view: slots used this quarter, fullest first"""
    query: schemas.LoadQuery = _ctx("query")
    svc = service()
    items, total = workflow.advocate_load(
        svc, limit=query.limit, offset=query.offset, near_capacity_only=query.near_capacity
    )
    contacts = queries.advocate_contacts(svc, [i["external_id"] for i in items]) if _contacts() else {}
    for item in items:
        item["contact"] = contacts.get(item["external_id"])
    return jsonify(page(items, total, query.limit, query.offset))


# -- ad-hoc matching ------------------------------------------------------------------


@bp.post("/match")
@spec.validate(json=schemas.AdhocMatch, resp=responses(schemas.MatchResult, "503", body=True), tags=["matching"])
def match_text() -> Response:
    """Ad-hoc matching: a prospect described in free text, with optional needs and fields"""
    args = _given(_ctx("json"))
    return jsonify(service().match_text(args.pop("text"), **args).as_dict())


# -- reference requests ---------------------------------------------------------------


def _request_body(view: workflow.RequestView) -> dict[str, Any]:
    svc = service()
    return {**view.as_dict(), "events": [e.as_dict() for e in workflow.events(svc, view.id)]}


@bp.post("/requests")
@spec.validate(
    json=schemas.RequestCreate,
    resp=responses(schemas.ReferenceRequest, "404", "409", status=201, body=True),
    tags=["requests"],
)
def create_request() -> Response:
    """Ask an advocate for a reference (409 without consent or capacity)"""
    args = _given(_ctx("json"))
    with state().writing() as svc:
        view = workflow.create_request(svc, _user(), **args)
    return created(_request_body(view), url_for("api.get_request", request_id=view.id))


@bp.get("/requests")
@spec.validate(
    query=schemas.RequestsQuery, resp=responses(schemas.ReferenceRequestSummaryPage, "400"), tags=["requests"]
)
def list_requests() -> Response:
    """Reference requests, newest first"""
    query: schemas.RequestsQuery = _ctx("query")
    views, total = workflow.list_requests(
        service(),
        _user(),
        status=query.status,
        advocate_external_id=query.advocate,
        mine=query.mine,
        overdue=query.overdue,
        limit=query.limit,
        offset=query.offset,
    )
    return jsonify(page([v.as_dict() for v in views], total, query.limit, query.offset))


@bp.get("/requests/<int:request_id>")
@spec.validate(
    resp=responses(schemas.ReferenceRequest, "404"), tags=["requests"], path_parameter_descriptions=REQUEST_ID
)
def get_request(request_id: int) -> Response:
    """A reference request with its audit trail"""
    return jsonify(_request_body(workflow.get_request(service(), _user(), request_id)))


@bp.post("/requests/<int:request_id>/transition")
@spec.validate(
    json=schemas.Transition,
    resp=responses(schemas.ReferenceRequest, "404", "409", body=True),
    tags=["requests"],
    path_parameter_descriptions=REQUEST_ID,
)
def transition(request_id: int) -> Response:
    """Move a request along requested -> approved | declined -> scheduled -> completed | cancelled"""
    args = _given(_ctx("json"))
    to_status = args.pop("to_status")
    with state().writing() as svc:
        view = workflow.transition(svc, _user(), request_id, to_status, **args)
    return jsonify(_request_body(view))


# -- exports: the lists above as CSV or XLSX files, with the same filters -------------------


@bp.get("/exports/accounts")
@spec.validate(query=schemas.AccountsExport, resp=file_responses(), tags=["exports"])
def export_accounts() -> Response:
    """Accounts as a file, with the filters of GET /accounts"""
    query: schemas.AccountsExport = _ctx("query")
    return file_response(tables.accounts(service(), **query.model_dump(exclude={"format"})), query.format)


@bp.get("/exports/advocates")
@spec.validate(query=schemas.AdvocatesExport, resp=file_responses(), tags=["exports"])
def export_advocates() -> Response:
    """Advocates as a file, with the filters of GET /advocates"""
    query: schemas.AdvocatesExport = _ctx("query")
    t = tables.advocates(
        service(), _user(), q=query.q, consent=query.consent, reference_type=query.reference_type,
        near_capacity_only=query.near_capacity,
    )  # fmt: skip
    return file_response(t, query.format)


@bp.get("/exports/requests")
@spec.validate(query=schemas.RequestsExport, resp=file_responses(), tags=["exports"])
def export_requests() -> Response:
    """Reference requests as a file, with the filters of GET /requests"""
    query: schemas.RequestsExport = _ctx("query")
    t = tables.requests(
        service(), _user(), status=query.status, advocate_external_id=query.advocate, mine=query.mine,
        overdue=query.overdue,
    )  # fmt: skip
    return file_response(t, query.format)


@bp.get("/exports/at-risk")
@spec.validate(query=schemas.AtRiskExport, resp=file_responses(), tags=["exports"])
def export_at_risk() -> Response:
    """At-risk accounts as a file, riskiest first, with their renewal dates and reasons"""
    query: schemas.AtRiskExport = _ctx("query")
    state().bring_risk_current()
    return file_response(tables.at_risk(service(), query.level), query.format)


@bp.get("/exports/accounts/<external_id>/matches")
@spec.validate(
    query=schemas.MatchesExport, resp=file_responses("404"), tags=["exports"], path_parameter_descriptions=ACCOUNT_ID
)
def export_matches(external_id: str) -> Response:
    """A stored seeker's matches as a file, with the options of GET /accounts/{external_id}/matches"""
    query: schemas.MatchesExport = _ctx("query")
    t = tables.matches(service(), external_id, **query.model_dump(exclude={"format"}))
    return file_response(t, query.format, label=f"{external_id}-{query.purpose}-matches")


@bp.get("/exports/runs/<int:run_id>")
@spec.validate(
    query=schemas.FileQuery,
    resp=file_responses("404"),
    tags=["exports"],
    path_parameter_descriptions={"run_id": "the batch run's id (refmatch batch runs list)"},
)
def export_run(run_id: int) -> Response:
    """A batch run's matches as a file: purpose, seeker, rank, advocate, score and reasons"""
    query: schemas.FileQuery = _ctx("query")
    return file_response(run_table(service().conn, run_id), query.format, label=f"run-{run_id}-matches")
