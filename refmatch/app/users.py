"""Users, roles and API bearer tokens: the people the web layer and the CLI act for.

Passwords are hashed with scrypt (``refmatch.app.passwords``) and never logged or put in an
error message. Bearer tokens are random, shown once at creation, and stored only as
their sha256, so a copy of the database does not hand out working tokens.

Every function takes the ``Service`` first (as all of ``refmatch.app`` does); writes run
in one ``refmatch.store.transaction``, except bookkeeping that matching never reads (a
token's last use, failed sign-ins), which is written without bumping data_version.

Sign-in throttling counts failed sign-ins per casefolded username (unknown usernames
too, so the limit does not reveal which exist) and per client address. A key is
blocked once it has ``login_max_failures`` failures (4x that for an address) within the
last ``login_window_minutes``, until the oldest of those falls out of the window.
"""

from __future__ import annotations

import hashlib
import math
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from refmatch.app import passwords
from refmatch.domain import clock
from refmatch.domain.errors import Conflict, Forbidden, InvalidInput, NotFound
from refmatch.domain.vocabulary import MANAGER_ROLES, ROLES
from refmatch.store import inserted_id, transaction
from refmatch.store.repo import now_iso

if TYPE_CHECKING:
    from refmatch.app.service import Service
    from refmatch.config import Settings

MIN_PASSWORD = 8
TOKEN_PREFIX = "rmt_"
# method for new hashes; tests lower the cost (verify_password reads it from the hash)
PASSWORD_METHOD = passwords.DEFAULT_METHOD
# last_used_at is refreshed at most this often, so API reads do not each become a write
TOKEN_TOUCH_EVERY = timedelta(minutes=1)
# one client address may fail this many times as often as one username (offices behind one NAT)
ADDRESS_FAILURES_FACTOR = 4
# the demo's users: username -> role
DEMO_USERS = {"sales": "sales", "cs": "cs", "manager": "reference_manager", "admin": "admin"}

_USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_COLUMNS = "id, username, role, display_name, disabled_at IS NOT NULL"


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str
    display_name: str | None = None
    disabled: bool = False

    @property
    def is_manager(self) -> bool:
        """Reference managers and admins approve, decline, schedule and complete requests."""
        return self.role in MANAGER_ROLES

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "username": self.username, "role": self.role, "display_name": self.display_name}


def _user(row: tuple | None) -> User | None:
    return None if row is None else User(row[0], row[1], row[2], row[3], bool(row[4]))


def _check_password(password: str) -> None:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise InvalidInput(
            f"password: must be at least {MIN_PASSWORD} characters",
            details=[{"field": "password", "message": f"must be at least {MIN_PASSWORD} characters"}],
        )


def _hash(password: str) -> str:
    return passwords.hash_password(password, PASSWORD_METHOD)


def add_user(service: Service, username: str, password: str, role: str, display_name: str | None = None) -> User:
    """Create a user. InvalidInput for a bad username, role or short password; Conflict if taken."""
    username = (username or "").strip()
    problems = []
    if not _USERNAME.match(username):
        problems.append(
            {"field": "username", "message": "1-64 letters, digits or . _ @ + -, starting with a letter or digit"}
        )
    if role not in ROLES:
        problems.append({"field": "role", "message": f"must be one of {', '.join(ROLES)}"})
    if problems:
        raise InvalidInput("; ".join(f"{p['field']}: {p['message']}" for p in problems), details=problems)
    _check_password(password)
    display_name = display_name.strip() if display_name and display_name.strip() else None
    stamp = now_iso()
    password_hash = _hash(password)
    with transaction(service.db) as conn:
        if conn.execute("SELECT 1 FROM users WHERE username = ?", (username,)).fetchone():
            raise Conflict(
                f"username {username!r} is taken",
                details=[{"field": "username", "message": "is taken"}],
            )
        cur = conn.execute(
            "INSERT INTO users (username, password_hash, role, display_name, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (username, password_hash, role, display_name, stamp, stamp),
        )
        user_id = inserted_id(cur)
    return User(user_id, username, role, display_name)


_DUMMY_HASH: dict[str, str] = {}


def authenticate(service: Service, username: str, password: str) -> User | None:
    """The user if the password is right, else None. Unknown users cost a hash check too.

    Forbidden when the password is right but the user is disabled (only someone who knows
    the password learns that).
    """
    row = service.conn.execute(
        f"SELECT {_COLUMNS}, password_hash FROM users WHERE username = ?", ((username or "").strip(),)
    ).fetchone()
    if row is None:
        # spend the same time as a wrong password, so response times do not reveal usernames
        dummy = _DUMMY_HASH.setdefault(PASSWORD_METHOD, _hash(secrets.token_urlsafe(12)))
        passwords.verify_password(dummy, password or "")
        return None
    if not passwords.verify_password(row[5], password or ""):
        return None
    user = _user(row)
    assert user is not None
    if user.disabled:
        raise Forbidden(f"user {user.username} is disabled: an admin can enable it again (refmatch user enable)")
    return user


def get_user(service: Service, user_id: int) -> User | None:
    return _user(service.conn.execute(f"SELECT {_COLUMNS} FROM users WHERE id = ?", (user_id,)).fetchone())


def get_user_by_name(service: Service, username: str) -> User | None:
    return _user(service.conn.execute(f"SELECT {_COLUMNS} FROM users WHERE username = ?", (username,)).fetchone())


def list_users(service: Service) -> list[User]:
    return [u for r in service.conn.execute(f"SELECT {_COLUMNS} FROM users ORDER BY username") if (u := _user(r))]


def _require(service: Service, username: str) -> User:
    user = get_user_by_name(service, username)
    if user is None:
        raise NotFound(f"unknown user: {username!r}")
    return user


def set_password(service: Service, username: str, password: str) -> None:
    user = _require(service, username)
    _check_password(password)
    password_hash = _hash(password)
    with transaction(service.db) as conn:  # a new password ends every session signed in with the old one
        conn.execute(
            "UPDATE users SET password_hash = ?, session_epoch = session_epoch + 1, updated_at = ? WHERE id = ?",
            (password_hash, now_iso(), user.id),
        )


# -- sessions and the user's life cycle ---------------------------------------------------


def session_epoch(service: Service, user_id: int) -> int | None:
    """The epoch a session signed in now carries; None for an unknown user."""
    row = service.conn.execute("SELECT session_epoch FROM users WHERE id = ?", (user_id,)).fetchone()
    return None if row is None else int(row[0])


def session_user(service: Service, user_id: int, epoch: int) -> User | None:
    """The user a browser session belongs to, or None when that session has ended: the user was
    removed or disabled, or has signed out, changed password or been signed out since (a new epoch)."""
    row = service.conn.execute(
        f"SELECT {_COLUMNS} FROM users WHERE id = ? AND session_epoch = ? AND disabled_at IS NULL",
        (user_id, epoch),
    ).fetchone()
    return _user(row)


def end_sessions(service: Service, username: str) -> User:
    """End every browser session of the user at once (sign-out everywhere). NotFound if unknown.

    Bookkeeping: it does not bump data_version (nothing matching reads changes).
    """
    user = _require(service, username)
    with transaction(service.db, bump=False) as conn:
        conn.execute("UPDATE users SET session_epoch = session_epoch + 1 WHERE id = ?", (user.id,))
    return user


def set_disabled(service: Service, username: str, disabled: bool) -> bool:
    """Disable (no sign-in, no API token, every session ended) or enable a user; whether anything changed."""
    user = _require(service, username)
    if user.disabled == disabled:
        return False
    with transaction(service.db, bump=False) as conn:
        conn.execute(
            "UPDATE users SET disabled_at = ?, session_epoch = session_epoch + 1, updated_at = ? WHERE id = ?",
            (now_iso() if disabled else None, now_iso(), user.id),
        )
    return True


def remove_user(service: Service, username: str) -> User:
    """Delete a user, its API tokens and its sessions. The requests it made stay, with its username
    (``requested_by``) and their audit trail; only the link to the user row is cleared."""
    user = _require(service, username)
    with transaction(service.db) as conn:
        conn.execute(
            "UPDATE reference_requests SET requested_by_user_id = NULL WHERE requested_by_user_id = ?", (user.id,)
        )
        conn.execute("DELETE FROM api_tokens WHERE user_id = ?", (user.id,))
        conn.execute("DELETE FROM users WHERE id = ?", (user.id,))
    return user


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(service: Service, username: str, name: str) -> tuple[str, int]:
    """(the plaintext token, its id). The plaintext exists only in this return value."""
    name = (name or "").strip()
    if not name:
        raise InvalidInput(
            "name: give the token a name (what uses it)", details=[{"field": "name", "message": "must not be empty"}]
        )
    user = _require(service, username)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction(service.db) as conn:
        cur = conn.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash, created_at) VALUES (?, ?, ?, ?)",
            (user.id, name, _token_hash(token), now_iso()),
        )
        token_id = inserted_id(cur)
    return token, token_id


def user_for_token(service: Service, token: str) -> User | None:
    """The user a live (not revoked) bearer token belongs to, else None (also when that user is disabled).

    last_used_at is refreshed at most once a minute, in its own statement and without
    bumping data_version: token use is bookkeeping, not data that matching reads.
    """
    if not token:
        return None
    conn = service.conn
    row = conn.execute(
        "SELECT t.id, t.last_used_at, u.id, u.username, u.role, u.display_name "
        "FROM api_tokens t JOIN users u ON u.id = t.user_id "
        "WHERE t.token_hash = ? AND t.revoked_at IS NULL AND u.disabled_at IS NULL",
        (_token_hash(token),),
    ).fetchone()
    if row is None:
        return None
    now = clock.now()
    if row[1] is None or datetime.fromisoformat(row[1]) <= now - TOKEN_TOUCH_EVERY:
        try:
            conn.execute("UPDATE api_tokens SET last_used_at = ? WHERE id = ?", (now.isoformat(), row[0]))
        except sqlite3.OperationalError:  # database busy: bookkeeping must not refuse a valid token
            pass
    return User(*row[2:])


def revoke_token(service: Service, token_id: int) -> None:
    """Revoke a token for good (revoking a revoked token changes nothing). NotFound if unknown."""
    with transaction(service.db) as conn:
        if conn.execute("SELECT 1 FROM api_tokens WHERE id = ?", (token_id,)).fetchone() is None:
            raise NotFound(f"unknown token id: {token_id}")
        conn.execute("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now_iso(), token_id))


def list_tokens(service: Service, username: str | None = None) -> list[dict[str, Any]]:
    """Tokens (never their hashes): id, username, name, created_at, last_used_at, revoked_at."""
    sql = (
        "SELECT t.id, u.username, t.name, t.created_at, t.last_used_at, t.revoked_at "
        "FROM api_tokens t JOIN users u ON u.id = t.user_id"
    )
    params: tuple = ()
    if username is not None:
        sql += " WHERE u.id = ?"
        params = (_require(service, username).id,)
    keys = ("id", "username", "name", "created_at", "last_used_at", "revoked_at")
    return [dict(zip(keys, r)) for r in service.conn.execute(sql + " ORDER BY t.id", params)]


# -- sign-in throttling ------------------------------------------------------------------


def utcnow() -> datetime:
    """The clock of sign-in throttling (tests replace it)."""
    return clock.now()


def _stamp(moment: datetime) -> str:
    # one fixed width, so ISO strings compare in time order
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _user_key(username: str) -> str:
    return "user:" + (username or "").strip().casefold()


def _throttle_keys(username: str, address: str | None, settings: Settings) -> list[tuple[str, int]]:
    """(key, failures that block it) for the username and, when known, the client address."""
    keys = [(_user_key(username), settings.login_max_failures)]
    if address:
        keys.append(("addr:" + address, settings.login_max_failures * ADDRESS_FAILURES_FACTOR))
    return keys


def login_wait(service: Service, username: str, address: str | None, now: datetime | None = None) -> int:
    """Seconds a sign-in as ``username`` from ``address`` must still wait; 0 when it may be tried now.

    A key with ``limit`` failures after ``now - window`` is blocked until the ``limit``-th
    most recent of them (the oldest, when there are just ``limit``) is ``window`` old.
    """
    return _wait(service.conn, username, address, service.settings, now or utcnow())


def _wait(conn: sqlite3.Connection, username: str, address: str | None, settings: Settings, now: datetime) -> int:
    window = timedelta(minutes=settings.login_window_minutes)
    wait = 0.0
    for key, limit in _throttle_keys(username, address, settings):
        row = conn.execute(
            "SELECT at FROM login_failures WHERE key = ? AND at > ? ORDER BY at DESC LIMIT 1 OFFSET ?",
            (key, _stamp(now - window), limit - 1),
        ).fetchone()
        if row is not None:
            wait = max(wait, (datetime.fromisoformat(row[0]) + window - now).total_seconds())
    return max(0, math.ceil(wait))


def _record(conn: sqlite3.Connection, username: str, address: str | None, settings: Settings, now: datetime) -> str:
    conn.execute(
        "DELETE FROM login_failures WHERE at <= ?", (_stamp(now - timedelta(minutes=settings.login_window_minutes)),)
    )
    stamp = _stamp(now)
    conn.executemany(
        "INSERT INTO login_failures (key, at) VALUES (?, ?)",
        [(key, stamp) for key, _ in _throttle_keys(username, address, settings)],
    )
    return stamp


def record_login_failure(service: Service, username: str, address: str | None, now: datetime | None = None) -> None:
    """Count a failed sign-in against the username and the address; forget failures older than the window.

    Bookkeeping, not data that matching reads: one transaction that does not bump data_version.
    """
    with transaction(service.db, bump=False) as conn:
        _record(conn, username, address, service.settings, now or utcnow())


def begin_login(
    service: Service, username: str, address: str | None, now: datetime | None = None
) -> tuple[int, str | None]:
    """Before checking a password: (seconds to wait, None) when blocked, else (0, the attempt's stamp).

    The attempt is counted as a failure at once, in the same write transaction as the check
    (BEGIN IMMEDIATE: one at a time across every process), so that simultaneous guesses
    cannot all pass the check before any is counted. ``login_succeeded`` takes it back.
    """
    now = now or utcnow()
    with transaction(service.db, bump=False) as conn:
        wait = _wait(conn, username, address, service.settings, now)
        if wait:
            return wait, None
        return 0, _record(conn, username, address, service.settings, now)


def login_succeeded(service: Service, username: str, address: str | None, stamp: str) -> None:
    """The attempt begun at ``stamp`` was right: forget the username's failures and this attempt's
    count against the address (the address's earlier failures stay)."""
    with transaction(service.db, bump=False) as conn:
        conn.execute("DELETE FROM login_failures WHERE key = ?", (_user_key(username),))
        if address:
            conn.execute(
                "DELETE FROM login_failures WHERE rowid = "
                "(SELECT rowid FROM login_failures WHERE key = ? AND at = ? LIMIT 1)",
                ("addr:" + address, stamp),
            )


def clear_login_failures(service: Service, username: str) -> int:
    """Forget the username's failed sign-ins (after a successful one, or to unlock it); how many there were.

    The address's failures stay: one good password must not reset what an address has tried.
    Does not bump data_version.
    """
    if not (username or "").strip():
        raise InvalidInput(
            "username: must not be empty", details=[{"field": "username", "message": "must not be empty"}]
        )
    cur = service.conn.execute("DELETE FROM login_failures WHERE key = ?", (_user_key(username),))
    return cur.rowcount


def ensure_demo_users(service: Service) -> dict[str, str]:
    """Create the demo users that do not exist yet; {username: password} of those created now."""
    created: dict[str, str] = {}
    for username, role in DEMO_USERS.items():
        if get_user_by_name(service, username) is None:
            password = secrets.token_urlsafe(9)
            add_user(service, username, password, role, display_name=f"Demo {role.replace('_', ' ')}")
            created[username] = password
    if created:  # the demo's history names its requesters: link their requests to them
        with transaction(service.db, bump=False) as conn:
            conn.execute(
                "UPDATE reference_requests SET requested_by_user_id = (SELECT id FROM users u WHERE u.username = "
                "reference_requests.requested_by) WHERE requested_by_user_id IS NULL"
            )
    return created
