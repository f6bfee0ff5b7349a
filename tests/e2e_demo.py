"""The real demo, built once per test session, and a real ``refmatch serve`` over it.

Building the demo embeds ~4,500 texts with the real model (about 80 s on 2 cores), so it
is built once per session and each end-to-end module works on its own copy: import the
fixtures from here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

E2E_PASSWORD = "e2e-password-1"
DEMO_USERNAMES = ("sales", "cs", "manager", "admin")


def demo_env(folder: Path) -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "REFMATCH_DB": str(folder / "demo.db"),
        "REFMATCH_INDEX_DIR": str(folder / "idx"),
    }


def run_refmatch(folder: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "refmatch", *args],
        capture_output=True,
        text=True,
        env=demo_env(folder),
        timeout=timeout,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def build_demo(folder: Path) -> Path:
    """``refmatch demo`` into ``folder``; the demo users get the password E2E_PASSWORD."""
    out = run_refmatch(folder, "demo", "-q")
    assert "demo ready" in out.stdout, out.stdout
    from refmatch.app import users

    service = service_at(folder / "demo.db")
    try:
        for username in DEMO_USERNAMES:
            users.set_password(service, username, E2E_PASSWORD)
    finally:
        service.close()
    return folder


def service_at(db_path: Path):
    """A Service on the database at ``db_path`` (what the app layer's functions take first); close it after."""
    from refmatch.app.service import Service
    from refmatch.config import load_settings

    return Service(load_settings({"db": str(db_path)}, env={}))


@pytest.fixture(scope="session")
def demo_build(tmp_path_factory) -> Path:
    """The demo as ``refmatch demo`` leaves it: copy it (``demo_copy``) rather than change it."""
    return build_demo(tmp_path_factory.mktemp("demo-build"))


def demo_copy(build: Path, into: Path) -> Path:
    """A private copy of a built demo (database, secret and indexes: a second or two, not a rebuild)."""
    shutil.copytree(build, into, dirs_exist_ok=True, ignore=shutil.ignore_patterns("serve-*.log"))
    return into


@pytest.fixture(scope="session")
def demo_dir(demo_build, tmp_path_factory) -> Path:
    """The demo the web tests serve and change (requests, approvals)."""
    return demo_copy(demo_build, tmp_path_factory.mktemp("demo"))


def wait_for(predicate, timeout: float = 60.0, what: str = "condition", every: float = 0.2):  # noqa: ANN001, ANN201
    """The first truthy value of ``predicate()`` within ``timeout`` seconds, else an AssertionError naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base: str, proc: subprocess.Popen, log: Path, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"refmatch serve exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=5) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            last = exc.read().decode()
        except OSError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise TimeoutError(f"refmatch serve not ready after {timeout} s: {last}")


@contextmanager
def serving(folder: Path, *extra: str) -> Iterator[str]:
    """``refmatch serve`` on a free loopback port; yields its base URL once /readyz says ready."""
    port = free_port()
    log_path = folder / f"serve-{port}.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "refmatch", "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
        env=demo_env(folder),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc, log_path)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def demo_server(demo_dir) -> Iterator[str]:
    with serving(demo_dir) as base:
        yield base
