"""The web shell: ``create_app(test_config)`` builds the Flask app (API + UI blueprints).

One app holds one ``SharedService`` for the process: the model and the indexes are
loaded once and shared by every request thread; writes take a process-wide lock.
``refmatch serve`` runs it under gunicorn (``refmatch.web.server``).
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask, Response, g
from flask_compress import Compress

from refmatch.config import Settings, load_settings
from refmatch.web import api, auth, errors, slack, ui
from refmatch.web.jsonio import BoundedJSON
from refmatch.web.state import SharedService, WebState

__all__ = ["create_app", "secret_key_for"]

DEFAULTS: dict[str, Any] = {
    "MAX_CONTENT_LENGTH": 1024 * 1024,  # the largest body any route accepts (413 beyond)
    "MAX_FORM_MEMORY_SIZE": 1024 * 1024,
    "SESSION_COOKIE_NAME": "refmatch_session",
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_SECURE": False,  # replaced by the secure_cookies setting unless test_config sets it
    # refmatch's own: a Settings (or overrides for load_settings), an Encoder to use, warm up at start
    "REFMATCH_SETTINGS": None,
    "REFMATCH_ENCODER": None,
    "REFMATCH_WARM": False,
}
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
}


def secret_key_for(settings: Settings) -> str:
    """The configured secret key, else a random one kept beside the database (``<db>.secret``, mode 600)."""
    if settings.secret_key:
        return settings.secret_key
    path = Path(str(settings.db_path) + ".secret")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        key = secrets.token_urlsafe(48)
        fh.write(key + "\n")
    return key


def _settings(value: Any) -> Settings:
    if isinstance(value, Settings):
        return value
    return load_settings(value if isinstance(value, Mapping) else None)


COMPRESSED = ["application/json", "text/csv"]


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. ``test_config`` overrides Flask's config and refmatch's (``REFMATCH_*`` keys above)."""
    app = Flask(__name__)
    app.config.from_mapping(DEFAULTS)
    app.json = BoundedJSON(app)  # request bodies: bounded depth, valid Unicode, finite numbers
    app.json.sort_keys = False  # keep the documented order
    if test_config:
        app.config.update(test_config)
    settings = _settings(app.config["REFMATCH_SETTINGS"])
    if "SESSION_COOKIE_SECURE" not in (test_config or {}):
        app.config["SESSION_COOKIE_SECURE"] = settings.secure_cookies
    # the cookie's signature expires with the session's absolute lifetime (Flask's default: 31 days)
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=settings.session_max_hours)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = secret_key_for(settings)
    service = SharedService(settings, encoder=app.config["REFMATCH_ENCODER"])
    app.extensions["refmatch"] = WebState(service)

    # compressed when the client accepts it: the API's JSON and CSV downloads (static files are sent as they
    # are, and cached). Not the
    # HTML pages: they hold the session's CSRF token beside text a request can choose (a search), the mix a
    # BREACH attack reads through compressed sizes.
    app.config.setdefault("COMPRESS_MIMETYPES", COMPRESSED)
    app.config.setdefault("COMPRESS_MIN_SIZE", 1024)
    app.config.setdefault("COMPRESS_ALGORITHM", ["gzip"])  # every HTTP client decodes it (zstd and br: not all)
    Compress(app)
    errors.register(app)
    app.before_request(ui.upload_limit)  # before the sign-in and CSRF checks read the body
    auth.register(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(ui.bp)
    app.register_blueprint(api.ops)
    app.register_blueprint(slack.bp)

    @app.before_request
    def started() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def headers(response: Response) -> Response:
        if "started" in g:  # time spent in the app, for browser dev tools and scripts/bench_api.py
            response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - g.started) * 1000:.2f}"
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if auth.current_user() is not None:
            response.headers["Cache-Control"] = "no-store"
            response.vary.add("Cookie")
        return response

    if app.config["REFMATCH_WARM"]:
        service.warm()
    return app
