"""Serve the app with gunicorn: a master that binds the port and N worker processes that answer.

Why processes: matching is CPU-bound and Python runs one thread at a time, so one
worker per core gives the most throughput. gunicorn keeps the workers: one that dies
(a crash, ``kill -9``, a request past ``timeout``) is replaced, ``SIGTERM`` stops them
gracefully, ``SIGHUP`` starts fresh workers and retires the old ones (after a new
model or settings), ``TTIN``/``TTOU`` add and remove one.

The app is built once in the master (``preload_app``) so configuration errors show
before any worker starts, but nothing heavy is loaded there: each worker loads the
model, the indexes and the catalog after the fork, before it accepts a request, so no
torch or OpenMP state is shared across ``fork()``. Each worker holds its compute pools
(torch, BLAS, OpenMP, FAISS) to ``cores // workers`` threads (``refmatch.app.runtime``).

Workers are gunicorn's ``sync`` kind (one request at a time, the connection closed after
each, and ``timeout`` kills a worker stuck in a request) unless ``threads`` > 1, which
takes ``gthread`` (threads per worker, keep-alive). A sync worker must not face slow
clients directly: put a buffering proxy (nginx) in front when serving beyond localhost.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from refmatch.app.runtime import limit_threads, threads_per_process
from refmatch.config import ENCODER_SETTINGS, Settings, settings_env
from refmatch.domain.errors import ConfigError
from refmatch.embed.base import Encoder


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_port(host: str, port: int) -> None:
    """Refuse a port that is taken now, before seconds of loading (gunicorn would retry, then exit)."""
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise ConfigError(
                f"port {port} on {host} is already in use (another refmatch serve?): stop it, or choose --port"
            ) from None
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


class RefmatchServer(BaseApplication):
    """gunicorn's application contract: our options, and the Flask app built once."""

    def __init__(
        self,
        settings: Settings,
        encoder: Encoder | None,
        options: dict[str, Any],
        *,
        compute_threads: int,
        log: Callable[[str], None],
    ):
        self.settings = settings
        self.encoder = encoder
        self.options = options
        self.compute_threads = compute_threads
        self.log = log
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)
        self.cfg.set("preload_app", True)
        self.cfg.set("post_worker_init", self._worker_ready)
        self.cfg.set("when_ready", lambda _arbiter: self.log(self._listening()))

    def load(self) -> Any:
        from refmatch.web import create_app

        return create_app({"REFMATCH_SETTINGS": self.settings, "REFMATCH_ENCODER": self.encoder})

    def _listening(self) -> str:
        workers, bind = self.cfg.workers, self.cfg.bind[0]
        return f"refmatch serving on http://{bind} with {workers} worker{'s' * (workers != 1)} (Ctrl-C to stop)"

    def _worker_ready(self, worker: Any) -> None:
        """In each new worker, before it accepts: hold the thread pools, load everything, say if not ready."""
        limit_threads(self.compute_threads)
        worker.notify()  # loading takes seconds: tell the master this worker is alive
        state = worker.wsgi.extensions["refmatch"]
        state.service.warm()
        limit_threads(self.compute_threads)  # again: torch and its OpenMP runtime loaded with the model
        for name, check in state.service.readiness().items():
            if not check["ok"]:
                self.log(f"warning: worker {os.getpid()} not ready: {name}: {check['message']}")
        self.log(f"worker {os.getpid()} ready ({self.compute_threads} compute thread(s))")


class Background:
    """A ``refmatch`` command in a process of its own beside the server, started again whenever it ends.

    A process, not a thread of a worker: a worker must stay free to answer. It runs in a
    process group of its own, so a Ctrl-C meant for the server does not kill it before the
    server stops it; not in a session of its own, which would give it a CPU share of its
    own (see ``runtime.run_below``).
    """

    what = "background process"

    def __init__(self, settings: Settings, log: Callable[[str], None], restart_after: float = 2.0):
        self.settings, self.log, self.restart_after = settings, log, restart_after
        self.proc: subprocess.Popen | None = None
        self.stopping = threading.Event()
        self.owner = os.getpid()  # workers are forked with this object: only the server process stops it
        self.thread = threading.Thread(target=self._supervise, name=f"refmatch-{self.what}", daemon=True)

    def arguments(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> None:
        self.thread.start()

    def _supervise(self) -> None:
        env = {
            **os.environ,
            "REFMATCH_DB": str(self.settings.db),
            "REFMATCH_INDEX_DIR": str(self.settings.index_dir),
            **settings_env(self.settings, ENCODER_SETTINGS),  # the indexer embeds as the server's settings say
        }
        while not self.stopping.is_set():
            command = [sys.executable, "-m", "refmatch", *self.arguments()]
            self.proc = subprocess.Popen(command, env=env, process_group=0)
            code = self.proc.wait()
            if self.stopping.is_set():
                return
            again = f"starting it again in {self.restart_after:.0f} s"
            self.log(f"warning: the {self.what} exited with status {code}; {again}")
            self.stopping.wait(self.restart_after)

    def stop(self) -> None:
        if os.getpid() != self.owner:  # a worker leaving: the server's finally clause runs in it too
            return
        self.stopping.set()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            proc.terminate()  # what it was doing is finished or left to its next start
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Indexer(Background):
    """``refmatch index watch``: embedding takes seconds of CPU per batch and its own copy of the model."""

    what = "indexer"

    def arguments(self) -> list[str]:
        # below the workers: idle-class CPU time (Linux SCHED_IDLE), which never delays them, with every
        # core when they are quiet; elsewhere nice 10 and one thread
        limits = ["--idle"] if hasattr(os, "SCHED_IDLE") else ["--nice", "10", "--threads", "1"]
        return ["index", "watch", *limits]


class Notifier(Background):
    """``refmatch notify watch``: delivers the outbox, so that no request ever waits on SMTP or Slack."""

    what = "notifier"

    def arguments(self) -> list[str]:
        return ["notify", "watch"]


def serve(
    settings: Settings,
    encoder: Encoder | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    threads: int = 1,
    timeout: int = 120,
    compute_threads: int = 0,
    indexer: bool = True,
    notifier: bool = True,
    log: Callable[[str], None] = _stderr,
) -> None:
    """Serve until stopped (SIGINT / SIGTERM). ``compute_threads`` 0: ``cores // workers``. ``indexer``: keep
    the indexes up to date in a supervised background process (``refmatch index watch``)."""
    check_port(host, port)
    compute = compute_threads or threads_per_process(workers)
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread" if threads > 1 else "sync",
        "timeout": timeout,  # a worker silent this long (stuck in a request, or loading) is killed and replaced
        "graceful_timeout": 30,
        "keepalive": 5,
        "backlog": 1024,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "refmatch",
    }
    # the indexer loads the configured model itself: with an injected encoder (tests, benchmarks) its
    # vectors would not be the ones the indexes hold, so none is started
    background: list[Background] = []
    if indexer and encoder is None:
        background.append(Indexer(settings, log))
    if notifier:
        background.append(Notifier(settings, log))
    for process in background:
        process.start()
    try:
        RefmatchServer(settings, encoder, options, compute_threads=compute, log=log).run()
    finally:
        for process in background:
            process.stop()
