"""The one clock: what "now", "today" and "this quarter" mean, everywhere.

Timestamps are stored in UTC (ISO 8601), so "today" is the UTC date as well: a request
approved at 23:30 in Dublin on 31 March and the capacity bar, eligibility and the
approval check all agree on which quarter it used a slot of.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def now() -> datetime:
    """The current time in UTC, to the second (what is stored)."""
    return datetime.now(UTC).replace(microsecond=0)


def today() -> date:
    """Today's date in UTC."""
    return datetime.now(UTC).date()


def quarter_start(day: date) -> date:
    """The first day of the calendar quarter ``day`` is in."""
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def quarter_window(day: date) -> tuple[str, str]:
    """(first day of the quarter, ``day``) as ISO dates: the span whose slot use counts on ``day``."""
    return quarter_start(day).isoformat(), day.isoformat()


def recent_window(day: date, days: int = 90) -> tuple[str, str]:
    """(``days`` before ``day``, ``day``) as ISO dates: the span fatigue looks back over."""
    return (day - timedelta(days=days)).isoformat(), day.isoformat()
