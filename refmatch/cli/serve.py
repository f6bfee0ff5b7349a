"""``refmatch serve``: the web app (API + UI) under gunicorn (``refmatch.web.server``).

Each worker loads the model, the indexes and the catalog before it accepts requests,
so ``/readyz`` answers ready as soon as a worker answers at all (unless the indexes are stale).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from refmatch.cli.common import common

if TYPE_CHECKING:
    from refmatch.app.service import Service


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 32),
    help="Processes answering requests, each with its own model and indexes (the index files' pages are "
    "shared): one per core for the most throughput. A worker that dies is replaced.",
)
@click.option(
    "--threads",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Request threads per worker. Matching is CPU-bound: on 2 cores one thread per worker served "
    "1.6x the requests of four at half the p99 (scripts/bench_api.py); add --workers for more cores.",
)
@click.option(
    "--timeout",
    default=120,
    show_default=True,
    type=click.IntRange(10, 3600),
    help="Seconds a worker may spend on one request (or on loading) before it is killed and replaced.",
)
@click.option(
    "--compute-threads",
    type=click.IntRange(0, 256),
    help="Threads per worker for torch, BLAS and OpenMP [env REFMATCH_COMPUTE_THREADS; default 0: the "
    "cores divided by --workers].",
)
@click.option(
    "--indexer/--no-indexer",
    default=True,
    show_default=True,
    help="Keep the indexes up to date in a background process ('refmatch index watch'), restarted if it "
    "dies: imported text becomes proposable batch by batch while matching goes on.",
)
@click.option(
    "--notifier/--no-notifier",
    default=True,
    show_default=True,
    help="Deliver notifications (e-mail, webhooks, Slack) in a background process ('refmatch notify watch'), "
    "restarted if it dies.",
)
@click.option(
    "--secure-cookies",
    is_flag=True,
    help="Mark the session cookie Secure (browsers send it only over HTTPS): set when serving behind HTTPS "
    "[env REFMATCH_SECURE_COOKIES].",
)
@common
def serve(
    service: Service,
    host: str,
    port: int,
    workers: int,
    threads: int,
    timeout: int,
    compute_threads: int | None,
    indexer: bool,
    notifier: bool,
    secure_cookies: bool,
) -> None:
    """Serve the JSON API (/api/v1) and the web UI with gunicorn.

    Sign in with a user made by 'refmatch user add' (or the demo's users); API
    clients send 'Authorization: Bearer <token>' (see 'refmatch token create').
    SIGTERM or Ctrl-C stops gracefully; SIGHUP replaces the workers (reloading the
    model and indexes) without dropping the port.
    """
    from refmatch.web.server import serve as run_server

    settings = service.settings.replace(
        secure_cookies=True if secure_cookies else None, compute_threads=compute_threads
    )
    service.close()
    encoder = (click.get_current_context().obj or {}).get("encoder")  # tests inject a fake encoder

    def log(message: str) -> None:
        click.echo(message, err=True)

    log(f"loading the model and indexes for {settings.db_path} in {workers} worker(s) ...")
    run_server(
        settings,
        encoder,
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        timeout=timeout,
        compute_threads=settings.compute_threads,
        indexer=indexer,
        notifier=notifier,
        log=log,
    )
