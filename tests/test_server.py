"""Serving under gunicorn: workers that die are replaced while the others answer; SIGTERM stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from refmatch.app import users
from refmatch.web.server import check_port
from tests.e2e_demo import free_port, wait_for

ROOT = Path(__file__).resolve().parents[1]


def workers_of(pid: int) -> set[int]:
    try:
        return set(map(int, Path(f"/proc/{pid}/task/{pid}/children").read_text().split()))
    except OSError:
        return set()


def get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def server(world, tmp_path):
    """``refmatch.web.server.serve`` with 2 workers over the small world, in its own process."""
    token, _ = users.create_token(world, users.add_user(world, "api", "long enough", "sales").username, "t")
    world.close()
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.serve_fake", world.settings.db, world.settings.index_dir, str(port), "2"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: log.read_text().count(" ready (") >= 2 or proc.poll() is not None, what="2 workers")
        assert proc.poll() is None, log.read_text()
        yield proc, base, token, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_killed_worker_is_replaced_while_the_other_answers(server):
    proc, base, token, log = server
    assert get(base + "/readyz")[0] == 200
    status, body = get(base + "/api/v1/accounts/P1/matches?k=2", token)
    assert status == 200 and body["matches"][0]["advocate"]["external_id"] == "A1"
    before = workers_of(proc.pid)
    assert len(before) == 2
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    answered = [get(base + "/api/v1/accounts/P1/matches?k=2", token)[0] for _ in range(20)]
    assert answered == [200] * 20  # the other worker answers every request meanwhile
    after = wait_for(lambda: (w := workers_of(proc.pid)) and len(w) == 2 and victim not in w and w, what="a new worker")
    assert len(after - before) == 1
    wait_for(lambda: log.read_text().count(" ready (") >= 3, what="the new worker to load")
    assert "ready (1 compute thread(s))" in log.read_text()  # 2 workers share this machine's cores

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=40) == 0
    assert not any(Path(f"/proc/{w}").exists() for w in after)


def test_a_port_in_use_is_refused_before_loading_anything():
    import socket

    from refmatch.domain.errors import ConfigError

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
            check_port("127.0.0.1", port)
    check_port("127.0.0.1", port)  # free again


def test_only_the_server_process_stops_its_indexer():
    """gunicorn forks workers from inside serve(): a worker leaving runs the server's finally clause too."""
    from refmatch.config import load_settings
    from refmatch.web.server import Indexer

    class Proc:
        terminated = False

        def poll(self):
            return None

        def terminate(self):
            self.terminated = True

        def wait(self, timeout=None):
            return 0

    indexer = Indexer(load_settings(env={}), log=lambda _line: None)
    indexer.proc = Proc()
    indexer.owner = os.getpid() + 1  # as seen from a forked worker
    indexer.stop()
    assert not indexer.proc.terminated and not indexer.stopping.is_set()
    indexer.owner = os.getpid()
    indexer.stop()
    assert indexer.proc.terminated and indexer.stopping.is_set()


@pytest.mark.skipif(not Path("/proc/self/autogroup").exists(), reason="the kernel groups no tasks by session")
def test_an_idle_indexer_leading_its_own_session_lowers_its_session_group_too():
    code = (
        "import os; from refmatch.app.runtime import run_below; done = run_below(0, idle=True); "
        "print(done, os.sched_getscheduler(0) == os.SCHED_IDLE, open('/proc/self/autogroup').read().split()[-1])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, start_new_session=True
    ).stdout.split()
    assert out[-2:] == ["True", "19"]
    assert "autogroup nice 19" in " ".join(out)
    # in a shared session (a shell, or a server's indexer) the group is the session's and is left alone
    code = "from refmatch.app.runtime import run_below; print(run_below(3, idle=True))"
    out2 = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "nice 3" in out2 and "SCHED_IDLE" in out2 and "autogroup" not in out2
