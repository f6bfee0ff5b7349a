"""scripts/nightly_batch.py: what cron sees (exit codes, one log line per stage) and resuming."""

import importlib.util
import logging
from pathlib import Path

import pytest

from refmatch.batch import BatchParams, Hooks, list_runs, run_batch
from refmatch.batch.lock import run_lock

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "nightly_batch.py"


@pytest.fixture
def nightly():
    spec = importlib.util.spec_from_file_location("nightly_batch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def argv(world):
    # the world's indexes were built with the fake encoder: naming its model finds them fresh, loads no model
    settings = world.settings
    return ["--db", str(settings.db_path), "--index-dir", str(settings.index_path), "--model", "fake-bow"]


def messages(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "refmatch.nightly"]


def test_a_night_logs_each_stage_and_exits_0(nightly, argv, caplog, tmp_path):
    caplog.set_level(logging.INFO, logger="refmatch.nightly")
    assert nightly.main([*argv, "-k", "2", "--out", str(tmp_path / "m-{run_id}.jsonl")]) == 0
    lines = messages(caplog)
    assert lines[0].startswith("starting a run: coverage; reference, mentor, retention; k 2; as of ")
    assert [line.split(": ")[1].split(" done")[0] for line in lines if " done in " in line] == [
        "embed", "plan", "search", "assign", "write", "export",
    ]  # fmt: skip
    assert lines[-1] == f"run 1: done; exported to {tmp_path / 'm-1.jsonl'}"
    assert any(line.startswith("run 1: seekers: 3: ") for line in lines)  # P1, A7 (reference), C1 (mentor)


def test_exit_codes(nightly, argv, world, caplog, monkeypatch):
    with run_lock(world.settings.db_path):
        assert nightly.main(argv) == 75  # another run holds the lock: try later
    assert nightly.main([*argv, "--as-of", "someday"]) == 2
    assert "as_of: must be a date YYYY-MM-DD, got 'someday'" in messages(caplog)

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(nightly, "run_batch", boom)
    assert nightly.main(argv) == 1


def test_resume_incomplete_finishes_last_nights_run(nightly, argv, world, caplog):
    def crash(phase, part):
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        run_batch(world, BatchParams.create(partition_size=1), hooks=Hooks(on_partition=crash))
    caplog.set_level(logging.INFO, logger="refmatch.nightly")
    assert nightly.main([*argv, "--resume-incomplete"]) == 0
    assert "resuming run 1 (stopped in search)" in messages(caplog)
    assert [(r.id, r.status, r.resumes) for r in list_runs(world.conn)] == [(1, "done", 1)]
    assert nightly.main([*argv, "--resume-incomplete"]) == 0  # nothing to finish: a new run
    assert [r.id for r in list_runs(world.conn)] == [2, 1]
