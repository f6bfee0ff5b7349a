"""Domain errors, mapped once at each boundary (CLI, API, UI).

Every error carries a stable ``code`` and optional ``details``: a list of
dicts naming the field / row / file a person has to fix.
"""

from __future__ import annotations

from typing import Any


class RefmatchError(Exception):
    """Base class: a problem a user can act on (never a bug)."""

    code = "error"
    exit_code = 1

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or []


class InvalidInput(RefmatchError):
    """Input that fails validation: a bad row, field, option or argument."""

    code = "invalid_input"
    exit_code = 2


class NotFound(RefmatchError):
    code = "not_found"


class Conflict(RefmatchError):
    code = "conflict"


class StaleIndex(RefmatchError):
    """The FAISS index does not describe the database (missing, stale, or of another model)."""

    code = "stale_index"
    exit_code = 2


class ConfigError(RefmatchError):
    code = "config_error"
    exit_code = 2


class Forbidden(RefmatchError):
    """Signed in, but the user's role (or relation to the object) does not allow this."""

    code = "forbidden"
    exit_code = 1


class Unauthorized(RefmatchError):
    """Not signed in, or the credentials (password, bearer token) are not valid."""

    code = "unauthorized"


class StorageError(RefmatchError):
    """The database or a file could not be written or read: read-only, disk full, busy, an I/O error.

    Nothing was changed (a transaction is rolled back whole); the message names the file and
    the cause, so that an operator can act (free space, fix permissions or the mount, retry).
    """

    code = "storage_unavailable"
    exit_code = 1
