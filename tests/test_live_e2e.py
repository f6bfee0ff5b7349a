"""Always-on matching end to end: the real model, FAISS files, SQLite file, `refmatch serve` and its indexer.

An import under a running server: matching never stops, a new prospect gets matches at
once, a new advocate is proposed once the background indexer has embedded it (no restart),
and an indexer killed with SIGKILL is replaced and leaves indexes that verify clean.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import time
import urllib.request
from importlib import resources
from pathlib import Path

import pytest

from tests.e2e_demo import demo_copy, run_refmatch, service_at, serving, wait_for

pytestmark = pytest.mark.e2e
TWIN = "IE-HYUNDAI-CARS-IRELAND"  # the demo's planted best advocate for IE-ARAMEX


def rows_of(kind: str, key: str, value: str) -> tuple[list[str], list[dict[str, str]]]:
    with resources.as_file(resources.files("refmatch") / "demo_data" / f"{kind}.csv") as path:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            return list(reader.fieldnames or []), [r for r in reader if r[key] == value]


def write(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def twin_files(folder: Path, new_id: str) -> list[tuple[str, Path]]:
    """The advocate TWIN again under ``new_id``: its account, met needs and consent."""
    out = []
    for kind, key in (
        ("accounts", "external_id"),
        ("needs", "account_external_id"),
        ("advocates", "account_external_id"),
    ):
        columns, rows = rows_of(kind, key, TWIN)
        for r in rows:
            r[key] = new_id
            if kind == "accounts":
                r["name"] = "Twin Motors"
        out.append((kind, write(folder / f"twin-{kind}.csv", columns, rows)))
    return out


def matches(base: str, token: str, external_id: str) -> list[str]:
    request = urllib.request.Request(
        f"{base}/api/v1/accounts/{external_id}/matches?k=5", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200
        return [m["advocate"]["external_id"] for m in json.loads(response.read())["matches"]]


def indexer_pids(server_pid: int) -> list[int]:
    found = []
    children = []
    for task in Path(f"/proc/{server_pid}/task").iterdir():  # the supervising thread is the parent, not main
        try:
            children += (task / "children").read_text().split()
        except OSError:
            continue
    for child in children:
        cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"watch" in cmdline and b"index" in cmdline:
            found.append(int(child))
    return found


def test_import_under_a_running_server_then_background_indexing_and_a_killed_indexer(demo_build, tmp_path):
    folder = demo_copy(demo_build, tmp_path / "live")
    from refmatch.app import users

    service = service_at(folder / "demo.db")
    token, _ = users.create_token(service, "sales", "live-e2e")
    service.close()
    with serving(folder) as base:
        server_pid = int(next(p for p in os.listdir("/proc") if p.isdigit() and _serves(p, base)))
        assert matches(base, token, "IE-ARAMEX")[0] == TWIN
        first_indexer = wait_for(lambda: indexer_pids(server_pid), 30, "the indexer process")[0]
        # below the workers: idle class, in the server's session (one CPU share with it), its own process group
        wait_for(lambda: os.sched_getscheduler(first_indexer) == os.SCHED_IDLE, 30, "the indexer's idle class")
        assert os.getsid(first_indexer) == os.getsid(server_pid)
        assert os.getpgid(first_indexer) != os.getpgid(server_pid)

        # a new prospect, imported while the server runs: matches at once, its text embedded on the spot
        columns, aramex = rows_of("accounts", "external_id", "IE-ARAMEX")
        aramex[0].update(external_id="NEW-PROSPECT", name="New Prospect")
        run_refmatch(folder, "import", "accounts", str(write(tmp_path / "p.csv", columns, aramex)))
        assert TWIN in matches(base, token, "NEW-PROSPECT")

        # a new advocate: not proposed until the indexer has embedded it, then proposed without a restart
        for kind, path in twin_files(tmp_path, "IE-TWIN-MOTORS"):
            run_refmatch(folder, "import", kind, str(path))
        assert "IE-TWIN-MOTORS" not in matches(base, token, "IE-ARAMEX")  # answered, from the snapshot

        # the indexer killed in the middle of that work is started again, and finishes it
        time.sleep(4)  # it has seen the new text and is loading the model or embedding
        os.kill(first_indexer, signal.SIGKILL)
        wait_for(lambda: [p for p in indexer_pids(server_pid) if p != first_indexer], 30, "a new indexer", 0.5)
        wait_for(lambda: "IE-TWIN-MOTORS" in matches(base, token, "IE-ARAMEX"), 300, "the background indexer", 1)
        assert matches(base, token, "IE-ARAMEX")[0] in (TWIN, "IE-TWIN-MOTORS")
    assert "up to date" in run_refmatch(folder, "index", "status").stdout
    assert "indexes verified" in run_refmatch(folder, "index", "verify").stdout


def _serves(pid: str, base: str) -> bool:
    """Whether process ``pid`` is the `refmatch serve` listening at ``base``."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in cmdline and base.rsplit(":", 1)[1].encode() in cmdline
