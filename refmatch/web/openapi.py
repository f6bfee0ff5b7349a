"""The OpenAPI 3.1 document of /api/v1 and request validation, both by spectree from ``refmatch.web.schemas``.

A view declares its query, body and responses once (``@spec.validate(...)``); spectree
checks each request against them before the view runs and writes the document served
at ``/api/v1/openapi.json`` from the same declarations. A request that fails the checks
gets the one error envelope (400, every problem naming its field), as any other error.
"""

from __future__ import annotations

import copy
from typing import Any

from spectree import Response, SecurityScheme, SpecTree
from spectree.models import InType, SecureType, SecuritySchemeData
from spectree.plugins.flask_plugin import FlaskPlugin

from refmatch.domain.errors import InvalidInput
from refmatch.web import schemas

ERRORS = {
    "400": "invalid input: the details name each field to fix",
    "401": "not signed in, or an invalid or revoked bearer token",
    "403": "the user's role may not do this, or a browser request without its X-CSRF-Token",
    "404": "no such object",
    "409": "conflict: an illegal workflow transition, an advocate without consent or capacity, a duplicate",
    "413": "request body too large",
    "422": "the body is JSON but not an object",
    "500": "internal error (never a traceback)",
    "503": "storage_unavailable: the database cannot be written (read-only, disk full, busy) or read; "
    "stale_index: no index has been built yet (or it was built with another model): run 'refmatch index build'",
}
DESCRIPTION = (
    "Authenticate with 'Authorization: Bearer <token>' (refmatch token create) or a signed-in browser "
    "session; a session must send X-CSRF-Token on every POST/PATCH. "
    'Every error is {"error": {"code", "message", "details"}}.'
)


def _refuse(_request: Any, _response: Any, error: Exception | None, _instance: Any, _adapter: Any) -> None:
    """spectree's hook before each view: a request that failed validation becomes InvalidInput (400)."""
    if error is None:
        return
    details = []
    for problem in error.errors():  # type: ignore[attr-defined]  # pydantic's ValidationError
        where = [str(part) for part in problem["loc"] if part not in ("query", "body", "json")]
        field = ".".join(where) or None
        message = problem["msg"]
        if problem["type"] == "extra_forbidden":
            message = "unknown field"
        details.append({"field": field, "message": message})
    listed = "; ".join(f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in details)
    raise InvalidInput(f"invalid request: {listed}", details=details)


class _RequestsOnly(FlaskPlugin):
    """spectree checks requests; answers are not re-validated on every call (a drift would turn into a 500 for
    the caller). The tests validate every answer they get against the document instead (tests/web_support.py)."""

    def validate_response(self, resp: Any, resp_model: Any, skip_validation: bool, force_resp_serialize: bool) -> Any:
        return super().validate_response(resp, resp_model, True, force_resp_serialize)


spec = SpecTree(
    "flask",
    backend=_RequestsOnly,
    title="refmatch API",
    version="1",
    description=DESCRIPTION,
    # not registered with the app: refmatch.web.api serves the document at /api/v1/openapi.json (behind
    # sign-in like the rest), and no documentation pages (they load scripts from a CDN; the app works offline)
    page_templates={},
    mode="strict",  # only the views declared with spec.validate are in the document
    before=_refuse,
    validation_error_status=400,
    validation_error_model=schemas.Error,
    naming_strategy=lambda model: model.__name__,
    nested_naming_strategy=lambda _parent, child: child,
    security_schemes=[
        SecurityScheme(
            name="bearerAuth",
            data=SecuritySchemeData(type=SecureType.HTTP, scheme="bearer", description="an API token"),
        ),
        SecurityScheme(
            name="sessionCookie",
            data=SecuritySchemeData(type=SecureType.API_KEY, name="refmatch_session", field_in=InType.COOKIE),
        ),
    ],
    security=[{"bearerAuth": []}, {"sessionCookie": []}],
)


FILE_CONTENT = {
    "text/csv": {"schema": {"type": "string"}},
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
        "schema": {"type": "string", "contentEncoding": "binary"}
    },
}
FILE_OK = "the list as a file to save (Content-Disposition names it): every row the filters find, up to 100,000"


def file_responses(*errors: str) -> Response:
    """What an export answers: the file (its media types are added by ``with_files``), or the error envelope."""
    declared: dict[str, Any] = {f"HTTP_{code}": (schemas.Error, ERRORS[code]) for code in sorted(
        set(errors) | {"400", "401", "403", "500", "503"})}  # fmt: skip
    declared["HTTP_200"] = (None, FILE_OK)
    return Response(**declared)


def with_files(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the media types of each export's file (spectree documents JSON bodies only)."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            if isinstance(operation, dict) and "exports" in operation.get("tags", ()):
                operation["responses"]["200"]["content"] = copy.deepcopy(FILE_CONTENT)
    return document


def responses(ok: type | None, *errors: str, status: int = 200, public: bool = False, body: bool = False) -> Response:
    """What an operation answers: ``ok`` with ``status``, and the error envelope for each code that applies."""
    codes = set(errors) | ({"500"} if public else {"401", "403", "500", "503"})
    if body:
        codes |= {"400", "413", "422"}
    declared: dict[str, Any] = {f"HTTP_{code}": (schemas.Error, ERRORS[code]) for code in sorted(codes)}
    if ok is not None:
        declared[f"HTTP_{status}"] = ok
    return Response(**declared)
