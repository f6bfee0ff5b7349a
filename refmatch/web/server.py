"""Run the app under waitress: one process, or ``workers`` forked processes sharing the port.

One process runs Python on one core at a time (the GIL), so ``prefork`` starts N
processes that accept from one listening socket, each with its own model and indexes.
Writes stay serialized: by a lock inside each process and by SQLite's write lock
(``BEGIN IMMEDIATE``) between them.

A keep-alive connection stays with the process that accepted it, and left alone the
first process to wake accepts most of them: 8 benchmark clients split 7:1 over two
workers, one worker busy and one idle. So the workers share their open-connection
counts, and one listens only while it holds no more connections than any other.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import Any

from refmatch.app.runtime import set_search_threads_here
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
    balance: tuple[Any, int] | None = None,
    **where: Any,
) -> None:
    """Load the app (model, indexes, catalog), then serve until stopped. ``where``: host and port, or sockets;
    ``balance``: (the workers' shared connection counts, this worker's slot), from ``prefork``."""
    from waitress import create_server

    from refmatch.web import create_app

    set_search_threads_here()  # one query at a time: threads slow a single search down
    app = create_app({"REFMATCH_SETTINGS": settings, "REFMATCH_ENCODER": encoder, "REFMATCH_WARM": True})
    state = app.extensions["refmatch"]
    for name, check in state.service.readiness().items():
        if not check["ok"]:
            log(f"warning: not ready: {name}: {check['message']}")
    server = create_server(app, threads=threads, ident="refmatch", **where)
    if balance is not None:
        _balance(server, *balance)
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


def _balance(server: Any, counts: Any, me: int) -> None:
    """Make a waitress server listen only while it holds no more open connections than any other worker.

    waitress asks ``readable()`` of the listening dispatcher on every turn of its loop, and
    keeps its open channels in ``active_channels``.
    """
    readable = server.readable

    def balanced_readable() -> bool:
        mine = len(server.active_channels)
        counts[me] = mine
        return readable() and mine <= min(counts)

    server.readable = balanced_readable


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
    counts = multiprocessing.RawArray("i", workers)  # shared with the children: open connections per worker
    children = []
    for me in range(workers):
        pid = os.fork()
        if pid == 0:  # the worker: its own model, indexes and connections
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            try:
                run(settings, encoder, threads, log=log, balance=(counts, me), sockets=[sock])
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
