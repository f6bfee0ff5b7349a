"""``refmatch serve``: the web app (API + UI) under waitress, a production WSGI server.

Registered by ``refmatch.cli``; the serving itself
is ``refmatch.web.server``. The model, the indexes and the catalog are loaded before a
process accepts requests, so ``/readyz`` answers ready as soon as the server listens
(unless the indexes are stale).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from refmatch.cli.common import common

if TYPE_CHECKING:
    from refmatch.app.service import Service


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Request threads per worker. Matching is CPU-bound: on 2 cores one thread per worker served "
    "1.6x the requests of four at half the p99 (scripts/bench_api.py); add --workers for more cores.",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 32),
    help="Processes sharing the port, each with its own model and indexes: one per core for the most "
    "throughput, at the cost of one copy of the indexes each (about 1.5 GB at 100k accounts).",
)
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Mark the session cookie Secure (browsers send it only over HTTPS): set when serving behind HTTPS "
    "[env REFMATCH_SECURE_COOKIES].",
)
@common
def serve(service: Service, host: str, port: int, threads: int, workers: int, secure_cookies: bool) -> None:
    """Serve the JSON API (/api/v1) and the web UI with waitress.

    Sign in with a user made by 'refmatch user add' (or the demo's users); API
    clients send 'Authorization: Bearer <token>' (see 'refmatch token create').
    """
    from refmatch.web.server import prefork, run

    settings = service.settings.replace(secure_cookies=True) if secure_cookies else service.settings
    service.close()
    encoder = (click.get_current_context().obj or {}).get("encoder")  # tests inject a fake encoder

    def log(message: str) -> None:
        click.echo(message, err=True)

    log(f"loading the model and indexes for {settings.db_path} ...")
    if workers > 1:
        if not hasattr(os, "fork"):
            raise click.UsageError("--workers needs a platform with fork(); use --workers 1")
        prefork(settings, encoder, host, port, threads, workers, log=log)
    else:
        run(settings, encoder, threads, log=log, host=host, port=port)
