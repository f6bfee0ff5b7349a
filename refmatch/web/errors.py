"""Domain and HTTP errors mapped once: a JSON envelope for the API, a page for the UI.

API: ``{"error": {"code": "...", "message": "...", "details": [...]}}`` with the status
below; a bug is a 500 ``internal_error`` whose body never carries a traceback.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from refmatch.domain import errors
from refmatch.store.db import storage_error

STATUS: dict[str, int] = {
    "invalid_input": 400,
    "bad_json": 400,
    "csrf_failed": 403,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "conflict": 409,
    "unprocessable": 422,
    "stale_index": 503,
    "storage_unavailable": 503,
    "config_error": 500,
}
_FIELD = re.compile(r"^([a-z_][a-z0-9_]*): (.+)$", re.S)
_HTTP_CODES = {413: "too_large", 405: "method_not_allowed", 404: "not_found", 400: "bad_request", 415: "bad_json"}


class HttpError(errors.RefmatchError):
    """An error born in the web layer (bad JSON, CSRF), with its own code."""

    def __init__(self, code: str, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message, details)
        self.code = code


def details_of(exc: errors.RefmatchError) -> list[dict[str, Any]]:
    """Details that name the field a person has to fix (``field``), derived from 'field: message' if need be."""
    out = []
    for d in exc.details:
        d = dict(d)
        if "field" not in d and d.get("column") is not None:
            d["field"] = d["column"]
        out.append(d)
    if not out and exc.code == "invalid_input":
        m = _FIELD.match(exc.message)
        if m:
            out.append({"field": m.group(1), "message": m.group(2)})
    return out


def field_errors(exc: errors.RefmatchError) -> dict[str, str]:
    """{field: message} for forms; messages without a field go under ``""``."""
    out: dict[str, str] = {}
    for d in details_of(exc):
        key = d.get("field") or ""
        out[key] = f"{out[key]}; {d.get('message', '')}" if key in out else str(d.get("message", exc.message))
    if not out:
        out[""] = exc.message
    return out


def status_of(exc: errors.RefmatchError) -> int:
    return STATUS.get(exc.code, 400)


def envelope(code: str, message: str, status: int, details: list[dict[str, Any]] | None = None) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "details": details or []}})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="refmatch"'
    return response


def wants_json() -> bool:
    return request.path.startswith("/api/") or request.path in ("/healthz", "/readyz")


def _page(status: int, title: str, message: str) -> tuple[str, int]:
    return render_template("error.html", status=status, title=title, message=message), status


def register(app: Flask) -> None:
    @app.errorhandler(errors.RefmatchError)
    def domain_error(exc: errors.RefmatchError):
        status = status_of(exc)
        if status >= 500:
            current_app.logger.error("%s: %s", exc.code, exc.message)
        if wants_json():
            return envelope(exc.code, exc.message, status, details_of(exc))
        return _page(status, exc.code.replace("_", " ").capitalize(), exc.message)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 500
        code = _HTTP_CODES.get(status) or re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")
        message = exc.description or exc.name or "error"
        if status == 413:
            limit = request.max_content_length
            message = f"request body too large (limit {limit:,} bytes)" if limit else "request body too large"
        if wants_json():
            response = envelope(code, message, status)
            allowed = getattr(exc, "valid_methods", None)
            if status == 405 and allowed:
                response.headers["Allow"] = ", ".join(allowed)
            return response
        return _page(status, exc.name or "Error", message)

    @app.errorhandler(sqlite3.Error)
    def database_error(exc: sqlite3.Error):
        known = storage_error(exc)  # read-only, disk full, busy: a 503 that says so, not a 500
        if known is None:
            return unexpected(exc)
        return domain_error(known)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
        message = "internal error: the server logged the details"
        if wants_json():
            return envelope("internal_error", message, 500)
        return _page(500, "Internal error", message)
