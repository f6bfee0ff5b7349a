"""Who is asking: a signed-in browser session or an API bearer token; CSRF; roles.

Everything needs a user except the endpoints in ``PUBLIC``. A browser session is a signed
cookie carrying the user's session epoch, its sign-in time and its last use: it ends when
the epoch moves on (sign-out, a new password, the user disabled or removed: every session
of that user at once), after ``session_idle_minutes`` unused, or ``session_max_hours``
after sign-in. A browser session must
prove every state-changing request with the session's CSRF token: a hidden
``csrf_token`` field in forms, an ``X-CSRF-Token`` header from scripts. Requests
authenticated by a bearer token carry no ambient credential, so they are exempt.
"""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, current_app, flash, g, redirect, request, session, url_for

from refmatch.app import users
from refmatch.domain.errors import Forbidden, Unauthorized
from refmatch.web.errors import HttpError

# reachable without signing in (static: the login page's stylesheet, nothing else lives there; slack.*:
# each request is checked against Slack's signature instead)
PUBLIC = frozenset({"ops.healthz", "ops.readyz", "ui.login", "static", "slack.command", "slack.actions"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SEEN_EVERY = 60  # seconds: how stale a session's last-seen time may get before the cookie is rewritten


def current_user() -> users.User | None:
    return g.get("user")


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not token:
        token = session["csrf"] = secrets.token_urlsafe(32)
    return token


def _service() -> Any:
    return current_app.extensions["refmatch"].service


def sign_in(user: users.User) -> None:
    """A fresh session (and CSRF token) carrying the user's session epoch and the time of sign-in."""
    session.clear()
    now = int(users.utcnow().timestamp())
    session.update(user_id=user.id, epoch=users.session_epoch(_service(), user.id), at=now, seen=now)
    csrf_token()


def sign_out() -> None:
    """End this user's sessions everywhere (a copy of the cookie stops working too), then this one."""
    user = current_user()
    if user is not None and g.get("auth") == "session":
        users.end_sessions(_service(), user.username)
    session.clear()


def _session_user(settings: Any) -> users.User | None:
    """The session's user, or None (and the session cleared) when the session has ended: signed out,
    password changed, user disabled or removed (the epoch), idle too long, or older than its lifetime."""
    values: list[Any] = [session.get(k) for k in ("user_id", "epoch", "at", "seen")]
    if values[0] is None:
        return None
    now = int(users.utcnow().timestamp())
    user = None
    if all(isinstance(v, int) for v in values):  # a cookie from before sessions had epochs has ended too
        user_id, epoch, at, seen = values
        if now - at < settings.session_max_hours * 3600 and now - seen < settings.session_idle_minutes * 60:
            user = users.session_user(_service(), user_id, epoch)
    if user is None:
        session.clear()
        g.session_ended = True  # the sign-in page says why
    elif now - values[3] >= SEEN_EVERY:  # refresh the idle clock (it rewrites the cookie: not on every request)
        session["seen"] = now
    return user


def safe_next(target: str | None) -> str | None:
    """Only same-site relative paths, so ?next= cannot send a user elsewhere."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        return None
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


def _identify() -> None:
    from refmatch.web.state import WebState

    state: WebState = current_app.extensions["refmatch"]
    g.user, g.auth = None, None
    if request.endpoint in ("ops.healthz", "ops.readyz", "static", "slack.command", "slack.actions"):
        return
    token = _bearer() if request.path.startswith("/api/") else None
    if token is not None:
        user = users.user_for_token(state.service, token)
        if user is None:
            raise Unauthorized("invalid or revoked API token")
        g.user, g.auth = user, "token"
        return
    user = _session_user(state.service.settings)
    if user is not None:
        g.user, g.auth = user, "session"


def _gate() -> Any:
    if request.endpoint in PUBLIC or g.user is not None:
        return None
    if request.routing_exception is not None:  # no such route, or not with this method: 404 / 405 say so
        return None
    if request.path.startswith("/api"):
        raise Unauthorized("sign in or send 'Authorization: Bearer <token>'")
    if request.method in SAFE_METHODS:
        target = request.full_path if request.query_string else request.path
        if g.get("session_ended"):
            flash("Your session has ended: sign in again.")
        return redirect(url_for("ui.login", next=target))
    raise Unauthorized("sign in first")


def _check_csrf() -> None:
    if request.method in SAFE_METHODS or g.get("auth") == "token" or request.endpoint in ("ops.healthz", "ops.readyz"):
        return
    if request.endpoint in ("slack.command", "slack.actions"):  # signed by Slack, no ambient credential
        return
    if request.routing_exception is not None:  # nothing will run: the 404 / 405 follows
        return
    expected = session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and not request.path.startswith("/api/"):
        sent = request.form.get(CSRF_FIELD)
    if not expected or not sent or not hmac.compare_digest(str(sent), str(expected)):
        where = f"the {CSRF_HEADER} header" if request.path.startswith("/api/") else "the form"
        raise HttpError(
            "csrf_failed",
            f"CSRF token missing or invalid: reload the page and try again (send it in {where})",
        )


def register(app: Flask) -> None:
    app.before_request(_identify)
    app.before_request(_gate)
    app.before_request(_check_csrf)
    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["current_user"] = current_user


def require_role(*roles: str) -> Callable:
    """Refuse (403) users whose role is not one of ``roles``."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            user = current_user()
            if user is None:
                raise Unauthorized("sign in first")
            if user.role not in roles:
                raise Forbidden(f"your role ({user.role}) may not do this: it needs {' or '.join(roles)}")
            return view(*args, **kwargs)

        return wrapper

    return decorator


EDITORS = ("reference_manager", "admin")  # may create and update accounts
