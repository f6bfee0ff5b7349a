"""Run the app under waitress: one process, or ``workers`` forked processes sharing the port.

One process runs Python on one core at a time (the GIL), so ``prefork`` starts N
processes that accept from one listening socket, each with its own model and indexes.
Writes stay serialized: by a lock inside each process and by SQLite's write lock
(``BEGIN IMMEDIATE``) between them.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from refmatch.config import Settings
from refmatch.embed.base import Encoder


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(
    settings: Settings,
    encoder: Encoder | None,
    threads: int,
    *,
    log: Callable[[str], None] = _stderr,
    **where: Any,
) -> None:
    """Load the app (model, indexes, catalog), then serve until stopped. ``where``: host and port, or sockets."""
    import faiss
    from waitress import create_server

    from refmatch.web import create_app

    faiss.omp_set_num_threads(1)  # one query at a time: threads slow a single search down
    app = create_app({"REFMATCH_SETTINGS": settings, "REFMATCH_ENCODER": encoder, "REFMATCH_WARM": True})
    state = app.extensions["refmatch"]
    for name, check in state.service.readiness().items():
        if not check["ok"]:
            log(f"warning: not ready: {name}: {check['message']}")
    server = create_server(app, threads=threads, ident="refmatch", **where)
    if "port" in where:
        log(f"refmatch serving on http://{where['host']}:{server.effective_port} (Ctrl-C to stop)")
    else:
        log(f"worker {os.getpid()} ready")
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        state.service.close()


def prefork(
    settings: Settings,
    encoder: Encoder | None,
    host: str,
    port: int,
    threads: int,
    workers: int,
    *,
    log: Callable[[str], None] = _stderr,
) -> None:
    """Listen once, fork ``workers`` processes that serve from the socket; stop them on SIGTERM / Ctrl-C."""
    sock = socket.create_server((host, port), backlog=1024)
    log(f"refmatch serving on http://{host}:{sock.getsockname()[1]} with {workers} workers (Ctrl-C to stop)")
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker: its own model, indexes and connections
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            try:
                run(settings, encoder, threads, log=log, sockets=[sock])
            finally:
                os._exit(0)
        children.append(pid)

    def stop(*_: Any) -> None:
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    try:
        for pid in children:
            os.waitpid(pid, 0)
    except KeyboardInterrupt:
        stop()
        for pid in children:
            os.waitpid(pid, 0)
    finally:
        sock.close()
