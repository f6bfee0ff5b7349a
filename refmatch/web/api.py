"""The JSON API under /api/v1: parse the request, call the service layer, return JSON.

Described by the OpenAPI 3.1 document in ``refmatch.web.openapi`` (served at
``/api/v1/openapi.json``); the tests validate every response they get against it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from refmatch.app import queries
from refmatch.app import requests as workflow
from refmatch.app import risk as risk_service
from refmatch.domain.errors import InvalidInput
from refmatch.web.auth import EDITORS, current_user, require_role
from refmatch.web.errors import HttpError
from refmatch.web.openapi import document
from refmatch.web.state import SharedService, WebState

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def state() -> WebState:
    return current_app.extensions["refmatch"]


def service() -> SharedService:
    return state().service


def _user():  # noqa: ANN202 - users.User, present behind the auth gate
    user = current_user()
    assert user is not None  # the auth gate ran
    return user


# -- parsing ---------------------------------------------------------------------


def _bad(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", details=[{"field": field, "message": message}])


def int_arg(name: str, default: int | None, low: int | None = None, high: int | None = None) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _bad(name, f"must be an integer, got {raw!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        span = f"between {low} and {high}" if low is not None and high is not None else f">= {low}"
        raise _bad(name, f"must be {span}, got {value}")
    return value


def bool_arg(name: str) -> bool | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise _bad(name, f"must be true or false, got {raw!r}")


def page_args() -> tuple[int, int]:
    limit = int_arg("limit", 50, 1, queries.MAX_LIMIT)
    offset = int_arg("offset", 0, 0)
    assert limit is not None and offset is not None
    return limit, offset


def page(items: list[Any], total: int, limit: int, offset: int) -> dict[str, Any]:
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def json_body() -> dict[str, Any]:
    """The request's JSON object: 400 for anything that is not JSON, 422 for JSON that is not an object."""
    if not request.is_json:
        raise HttpError("bad_json", "send a JSON body with 'Content-Type: application/json'")
    try:
        body = json.loads(request.get_data(cache=True) or b"")
    except (ValueError, UnicodeDecodeError) as exc:
        raise HttpError("bad_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise HttpError("unprocessable", f"the body must be a JSON object, got {type(body).__name__}")
    return body


_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "string": ((str,), "a string"),
    "integer": ((int,), "an integer"),
    "number": ((int, float), "a number"),
    "boolean": ((bool,), "true or false"),
    "strings": ((list,), "a list of strings"),
}


def fields(body: Mapping[str, Any], spec: Mapping[str, tuple[str, bool]]) -> dict[str, Any]:
    """Check a body against {field: (type, required)}: every problem at once, each naming its field."""
    problems = [{"field": k, "message": f"unknown field (allowed: {', '.join(spec)})"} for k in body if k not in spec]
    out: dict[str, Any] = {}
    for name, (kind, required) in spec.items():
        value = body.get(name)
        if value is None:
            if required:
                problems.append({"field": name, "message": "a value is required"})
            continue
        types, label = _TYPES[kind]
        ok = isinstance(value, types) and not (kind in ("integer", "number") and isinstance(value, bool))
        if ok and kind == "strings":
            ok = all(isinstance(v, str) for v in value)
        if not ok:
            problems.append({"field": name, "message": f"must be {label}, got {json.dumps(value)[:60]}"})
            continue
        out[name] = value
    if problems:
        listed = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        raise InvalidInput(f"invalid request body: {listed}", details=problems)
    return out


def created(body: dict[str, Any], location: str) -> Response:
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = location
    return response


def _contacts() -> bool:
    return workflow.can_see_contact(_user(), None)


# -- the document and the caller ---------------------------------------------------


@bp.get("/openapi.json")
def openapi() -> Response:
    return jsonify(document())


@bp.get("/me")
def me() -> Response:
    user = _user()
    return jsonify({**user.as_dict(), "is_manager": user.is_manager, "is_admin": user.is_admin})


# -- accounts ----------------------------------------------------------------------


@bp.get("/accounts")
def list_accounts() -> Response:
    limit, offset = page_args()
    args = {k: request.args.get(k) or None for k in ("q", *queries.ACCOUNT_FILTERS)}
    items, total = queries.list_accounts(service().db, **args, limit=limit, offset=offset)
    return jsonify(page(items, total, limit, offset))


@bp.post("/accounts")
@require_role(*EDITORS)
def create_account() -> Response:
    body = json_body()
    with state().writing() as svc:
        account = queries.create_account(svc, body, include_contact=_contacts())
        svc.build_indexes()  # the new profile is searchable at once
    return created(account, url_for("api.get_account", external_id=account["external_id"]))


@bp.get("/accounts/<external_id>")
def get_account(external_id: str) -> Response:
    svc = service()
    return jsonify(queries.get_account(svc.db, svc.settings, external_id, include_contact=_contacts()))


@bp.patch("/accounts/<external_id>")
@require_role(*EDITORS)
def update_account(external_id: str) -> Response:
    body = json_body()
    with state().writing() as svc:
        account = queries.update_account(svc, external_id, body, include_contact=_contacts())
        svc.build_indexes()
    return jsonify(account)


@bp.get("/accounts/<external_id>/matches")
def account_matches(external_id: str) -> Response:
    result = service().match_account(
        external_id,
        purpose=request.args.get("purpose") or "reference",
        k=int_arg("k", None),
        reference_type=request.args.get("reference_type") or None,
        product=request.args.get("product") or None,
    )
    return jsonify(result.as_dict())


# -- risk ----------------------------------------------------------------------------

AT_RISK_LIMIT = 20  # each account of a page is matched: pages stay small
AT_RISK_MAX = 100


@bp.get("/at-risk")
def at_risk() -> Response:
    limit = int_arg("limit", AT_RISK_LIMIT, 1, AT_RISK_MAX)
    offset = int_arg("offset", 0, 0)
    assert limit is not None and offset is not None
    state().bring_risk_current()
    items, total, _ = risk_service.at_risk_page(
        service(), level=request.args.get("level") or None, limit=limit, offset=offset
    )
    return jsonify(page(items, total, limit, offset))


@bp.get("/accounts/<external_id>/risk")
def account_risk(external_id: str) -> Response:
    state().bring_risk_current()
    return jsonify(risk_service.account_risk(service(), external_id, as_of=request.args.get("as_of") or None))


# -- needs and advocates --------------------------------------------------------------


@bp.get("/needs")
def list_needs() -> Response:
    limit, offset = page_args()
    items, total = queries.list_needs(
        service().db,
        account=request.args.get("account") or None,
        status=request.args.get("status") or None,
        q=request.args.get("q") or None,
        limit=limit,
        offset=offset,
    )
    return jsonify(page(items, total, limit, offset))


@bp.get("/advocates")
def list_advocates() -> Response:
    limit, offset = page_args()
    svc = service()
    items, total = queries.list_advocates(
        svc.db,
        svc.settings,
        q=request.args.get("q") or None,
        consent=bool_arg("consent"),
        reference_type=request.args.get("reference_type") or None,
        near_capacity_only=bool(bool_arg("near_capacity")),
        include_contact=_contacts(),
        limit=limit,
        offset=offset,
    )
    return jsonify(page(items, total, limit, offset))


@bp.get("/advocates/load")
def advocate_load() -> Response:
    limit, offset = page_args()
    svc = service()
    items, total = workflow.advocate_load(
        svc.db, svc.settings, limit=limit, offset=offset, near_capacity_only=bool(bool_arg("near_capacity"))
    )
    contacts = queries.advocate_contacts(svc.db, [i["external_id"] for i in items]) if _contacts() else {}
    for item in items:
        item["contact"] = contacts.get(item["external_id"])
    return jsonify(page(items, total, limit, offset))


# -- ad-hoc matching ------------------------------------------------------------------

MATCH_FIELDS = {
    "text": ("string", True),
    "needs": ("strings", False),
    "name": ("string", False),
    "industry": ("string", False),
    "employees": ("integer", False),
    "country": ("string", False),
    "region": ("string", False),
    "products": ("strings", False),
    "stage": ("string", False),
    "do_not_match": ("strings", False),
    "purpose": ("string", False),
    "k": ("integer", False),
    "reference_type": ("string", False),
    "product": ("string", False),
}


@bp.post("/match")
def match_text() -> Response:
    args = fields(json_body(), MATCH_FIELDS)
    return jsonify(service().match_text(args.pop("text"), **args).as_dict())


# -- reference requests ---------------------------------------------------------------

REQUEST_FIELDS = {
    "advocate_external_id": ("string", True),
    "seeker_external_id": ("string", False),
    "purpose": ("string", False),
    "reference_type": ("string", False),
    "note": ("string", False),
    "override_reason": ("string", False),
}
TRANSITION_FIELDS = {
    "to_status": ("string", True),
    "note": ("string", False),
    "scheduled_for": ("string", False),
    "rating": ("integer", False),
    "deal_outcome": ("string", False),
    "influenced_arr": ("number", False),
    "override_reason": ("string", False),
}


def _request_body(view: workflow.RequestView) -> dict[str, Any]:
    svc = service()
    return {**view.as_dict(), "events": [e.as_dict() for e in workflow.events(svc.db, view.id)]}


@bp.post("/requests")
def create_request() -> Response:
    args = fields(json_body(), REQUEST_FIELDS)
    with state().writing() as svc:
        view = workflow.create_request(svc.db, _user(), settings=svc.settings, **args)
    return created(_request_body(view), url_for("api.get_request", request_id=view.id))


@bp.get("/requests")
def list_requests() -> Response:
    limit, offset = page_args()
    status = request.args.get("status") or None
    views, total = workflow.list_requests(
        service().db,
        _user(),
        status=status,
        advocate_external_id=request.args.get("advocate") or None,
        mine=bool(bool_arg("mine")),
        limit=limit,
        offset=offset,
    )
    return jsonify(page([v.as_dict() for v in views], total, limit, offset))


@bp.get("/requests/<int:request_id>")
def get_request(request_id: int) -> Response:
    return jsonify(_request_body(workflow.get_request(service().db, _user(), request_id)))


@bp.post("/requests/<int:request_id>/transition")
def transition(request_id: int) -> Response:
    args = fields(json_body(), TRANSITION_FIELDS)
    to_status = args.pop("to_status")
    with state().writing() as svc:
        view = workflow.transition(svc.db, _user(), request_id, to_status, settings=svc.settings, **args)
    return jsonify(_request_body(view))
