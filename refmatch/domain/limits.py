"""The bounds every input is held to, in one place: the importer, the API schemas (and so the
OpenAPI document), the workflow and the web layer's JSON parser all read them from here.

They exist so that cheap malformed input gets a clear 400 naming the field rather than reaching
SQLite (integers beyond 64 bits), the JSON parser's recursion limit, or the database as a
megabyte-long company name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from refmatch.domain.errors import InvalidInput

MAX_INT = 2**63 - 1  # SQLite's largest integer: ids beyond it name nothing
MAX_COUNT = 100_000_000  # employees, capacity: no company or plan is bigger
MAX_OFFSET = 1_000_000_000  # the furthest a page may start
MAX_ID = 100  # characters of an external id
MAX_SHORT = 200  # characters of a name, label, product, industry, country, contact field
MAX_TEXT = 10_000  # characters of free text: a profile, a need, topics, a churn reason
MAX_NOTE = 2_000  # characters of a request note or override reason
MAX_ITEMS = 100  # items of a list field (products, needs, do_not_match)
MAX_DEPTH = 32  # nesting levels of a JSON document (a body, a JSON Lines row)


def unicode_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as UTF-8 (a lone surrogate, from a JSON escape like \\ud800), or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"not valid Unicode: a lone surrogate (\\u{ord(text[exc.start]):04x}) at character {exc.start + 1}"
    return None


def json_problem(value: Any) -> tuple[str, str] | None:
    """(where, what) of the first thing in a parsed JSON value that no field may hold: nesting deeper
    than MAX_DEPTH, or a string (or key) that is not valid Unicode; None when there is none."""
    for path, depth, item in _walk(value):
        where = path.encode("utf-8", "replace").decode("utf-8") or "body"  # a bad key is shown as ?
        if depth > MAX_DEPTH:
            return where, f"nested deeper than {MAX_DEPTH} levels"
        if isinstance(item, str) and (problem := unicode_problem(item)):
            return where, problem
    return None


def _walk(value: Any) -> Iterator[tuple[str, int, Any]]:
    stack: list[tuple[str, int, Any]] = [("", 0, value)]
    while stack:
        path, depth, item = stack.pop()
        yield path, depth, item
        if isinstance(item, dict):
            for key, child in item.items():
                where = f"{path}.{key}" if path else str(key)
                yield where, depth + 1, key
                stack.append((where, depth + 1, child))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", depth + 1, child) for i, child in enumerate(item))


def check_page(limit: int, offset: int, max_limit: int) -> None:
    """InvalidInput naming ``limit`` and/or ``offset`` unless 1 <= limit <= max_limit and 0 <= offset <= MAX_OFFSET."""
    problems = []
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= max_limit:
        problems.append({"field": "limit", "message": f"must be from 1 to {max_limit}, got {limit!r}"})
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        problems.append({"field": "offset", "message": f"must be from 0 to {MAX_OFFSET:,}, got {offset!r}"})
    if problems:
        raise InvalidInput("; ".join(f"{p['field']}: {p['message']}" for p in problems), details=problems)


def is_row_id(value: int) -> bool:
    """Whether ``value`` can be a row id at all (SQLite refuses integers beyond 64 bits)."""
    return not isinstance(value, bool) and isinstance(value, int) and 1 <= value <= MAX_INT
