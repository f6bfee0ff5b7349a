"""The background indexer: embeds new and changed text in rounds and saves the indexes after each.

Serving processes pick up each saved round at their next request (``Service._snapshot``),
so an account imported with thousands of others becomes proposable when its round is
saved, not when the last text is embedded. Rounds are crash-safe: embeddings are cached
per batch and index files are replaced atomically under the build lock, so a killed
indexer loses at most the round in progress; started again it continues from what is
cached and saved (``refmatch index verify`` then finds every vector right).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from refmatch.app.service import Service
from refmatch.index.sync import BuildReport, text_version


@dataclass
class Round:
    reports: list[BuildReport]
    seconds: float

    @property
    def remaining(self) -> int:
        return sum(r.remaining for r in self.reports)

    @property
    def added(self) -> int:
        return sum(r.added for r in self.reports)

    def line(self) -> str:
        parts = [f"{r.name} +{r.added} -{r.removed} ({r.remaining} left)" for r in self.reports]
        return f"indexed in {self.seconds:.1f} s: " + ", ".join(parts)


def pending(service: Service) -> int:
    """Texts the served indexes lack (new, changed or deleted since they were built); -1: no index at all."""
    from refmatch.domain.errors import StaleIndex

    try:
        return sum(lag.pending for lag in service.index_lag().values())
    except StaleIndex:
        return -1


def run_round(service: Service, batch: int) -> Round | None:
    """One round when anything is pending (at most ``batch`` new texts per index), else None."""
    if pending(service) == 0:
        return None
    started = time.perf_counter()
    reports = service.build_indexes(max_embed=batch)
    return Round(reports, time.perf_counter() - started)


def watch(
    service: Service,
    *,
    batch: int = 2000,
    interval: float = 2.0,
    stop: Callable[[], bool] = lambda: False,
    log: Callable[[str], None] = lambda _line: None,
) -> None:
    """Index what changes, round after round, until ``stop()``; idle rounds cost one query.

    The text version (kept by triggers) says whether any indexed text changed since the
    last complete round, so an idle indexer does not compare 100k hashes every few seconds.
    """
    seen: int | None = None
    while not stop():
        now = text_version(service.conn)
        if now is None or now != seen:
            done = run_round(service, batch)
            if done is not None:
                log(done.line())
            if done is None or done.remaining == 0:
                seen = now  # complete as of this text version
            if done is not None and done.remaining:
                continue  # more to do: no pause between rounds
        deadline = time.monotonic() + interval
        while not stop() and time.monotonic() < deadline:
            time.sleep(min(0.2, interval))
