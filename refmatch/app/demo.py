"""The bundled demo dataset (refmatch/demo_data, made by scripts/make_demo_data.py): imported in order,
then its churn events, its history of reference requests (once), and the indexes."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from typing import Any

from refmatch.app.risk import import_churn
from refmatch.app.service import IMPORT_ORDER, ProgressFactory, Service
from refmatch.domain.errors import NotFound
from refmatch.store.history import load_request_history


def load(
    service: Service, *, progress: ProgressFactory | None = None, echo: Callable[[str], None] = lambda s: None
) -> dict[str, Any]:
    """Load the demo dataset and build the indexes; ``echo`` is told what each step did."""
    folder = resources.files("refmatch") / "demo_data"
    if not (folder / "accounts.csv").is_file():
        raise NotFound("the demo data is not installed: run refmatch demo from a checkout of the repository")
    reports = []
    for kind in IMPORT_ORDER:
        with resources.as_file(folder / f"{kind}.csv") as path:
            report = service.import_file(kind, path)
        echo(report.summary())
        reports.append(report)
    if (folder / "churn.csv").is_file():  # former customers: what `refmatch risk fit` learns from
        with resources.as_file(folder / "churn.csv") as path:
            report = import_churn(service, path)
        echo(report.summary())
        reports.append(report)
    if (folder / "requests.csv").is_file():
        with resources.as_file(folder / "requests.csv") as path:
            if loaded := load_request_history(service.db, path, service.settings.request_turnaround_hours):
                echo(f"history: {loaded} past reference requests, with their events and outcomes")
    builds = service.build_indexes(progress=progress)
    for b in builds:
        echo(f"index {b.name}: {b.total} vectors ({b.kind}), {b.embedded} embedded, {b.added} added")
    return {"imports": reports, "indexes": builds}
