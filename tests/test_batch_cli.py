"""``refmatch batch`` and ``refmatch runs``: output, exit codes and errors, word for word where it matters."""

import json
import re

import pytest
from click.testing import CliRunner

from refmatch.app.service import Service
from refmatch.batch import BatchParams, Hooks, run_batch
from refmatch.batch.lock import run_lock
from refmatch.cli import cli
from refmatch.config import load_settings
from refmatch.embed.fake import FakeEncoder
from tests.conftest import account, advocate, write_csv


@pytest.fixture
def run(tmp_path):
    encoder = FakeEncoder()
    base = ["--db", str(tmp_path / "r.db"), "--index-dir", str(tmp_path / "idx")]

    def invoke(*args):
        return CliRunner().invoke(cli, [*args, *base], obj={"encoder": encoder}, catch_exceptions=False)

    accounts = [account("P1", stage="prospect"), account("C1", stage="onboarding"), account("A1"), account("A2")]
    needs = [
        {"account_external_id": "P1", "need": "sso with azure ad", "status": "open"},
        {"account_external_id": "A1", "need": "sso with azure ad", "status": "met"},
    ]
    assert invoke("import", "accounts", str(write_csv(tmp_path / "a.csv", accounts))).exit_code == 0
    assert invoke("import", "needs", str(write_csv(tmp_path / "n.csv", needs))).exit_code == 0
    advocates = [advocate("A1", capacity_per_quarter=1), advocate("A2")]
    assert invoke("import", "advocates", str(write_csv(tmp_path / "v.csv", advocates))).exit_code == 0
    return invoke


def test_batch_runs_stores_reports_and_exports(run, tmp_path):
    out = tmp_path / "run-{run_id}.csv"
    result = run("batch", "-q", "-k", "2", "--as-of", "2026-01-05", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(
        "run 1: done (coverage; reference, mentor, retention; k 2; as of 2026-01-05; 2 seekers in 1 partitions, "
    )
    assert lines[1] == "seekers: 2: 1 with 2 matches, 1 with fewer, 0 with none; 3 matches"
    assert lines[2] == "coverage: 2 seekers with a match, of the 2 the advocates' room could cover at all (max-flow)"
    assert (
        lines[3]
        == "the score objective would give: 1 with 2, 1 with fewer, 0 with none; 3 matches, score "
        + (lines[3].rsplit(" ", 1)[1])
    )
    lines = lines[:2] + lines[4:]
    assert lines[2] == (
        "advocates: 2 of 2 candidates used, 1 at capacity, 0 over; top 10% take 67% of matches "
        "(unconstrained greedy: 50%, 1 over capacity); max load 2 (greedy: 2)"
    )
    assert lines[3].startswith("score: ")
    assert lines[4] == f"exported to {tmp_path / 'run-1.csv'}"
    assert (tmp_path / "run-1.csv").read_text(encoding="utf-8").count("\n") == 4  # header and three matches

    listed = run("runs", "list")
    assert listed.exit_code == 0
    assert listed.output.split()[:2] == ["1", "done"] and "matches 3" in listed.output

    shown = run("runs", "show", "1")
    assert shown.exit_code == 0
    assert "parameters: depth 10; per advocate capacity left; partition size 2000" in shown.output
    assert "model fake-bow; data version " in shown.output and "profiles built " in shown.output
    data = json.loads(run("runs", "show", "1", "--format", "json").output)
    assert data["params"]["k"] == 2 and data["report"]["matches"] == 3 and data["status"] == "done"

    assert run("batch", "-q", "--greedy", "--purpose", "reference").exit_code == 0
    diff = run("runs", "diff", "1", "2")
    assert diff.exit_code == 0
    assert diff.output.splitlines() == [  # A1 (one slot) went to C1's mentor match in run 1, to P1 in run 2
        "run 1 -> run 2: 1 changed, 0 reranked, 0 new, 1 gone, 0 unchanged",
        "gone      mentor    C1 (Company C1): was A1, A2",
        "changed   reference P1 (Company P1): +A1; now A1, A2",
    ]
    exported = run("runs", "export", "1", str(tmp_path / "again.jsonl"))
    assert exported.output == f"exported 3 matches of run 1 to {tmp_path / 'again.jsonl'}\n"


def test_stage_lines_and_progress_go_to_stderr(run):
    result = run("batch", "--as-of", "2026-01-05")
    assert result.exit_code == 0
    assert re.findall(r"(?:batch|run 1): (\w+) done in \d+\.\d s", result.stderr) == [
        "embed", "plan", "search", "assign", "write",
    ]  # fmt: skip
    assert "run 1: searching" in result.stderr  # the progress bar
    assert result.stdout.startswith("run 1: done")


def test_errors_are_one_line(run):
    bad = run("batch", "--as-of", "tomorrow")
    assert bad.exit_code == 2 and bad.output == "Error: as_of: must be a date YYYY-MM-DD, got 'tomorrow'\n"
    bad = run("batch", "--out", "x.xlsx")
    assert bad.exit_code == 2 and bad.output == "Error: out: must end in .csv or .jsonl, got 'x.xlsx'\n"
    missing = run("runs", "show", "42")
    assert missing.exit_code == 1 and missing.output == "Error: unknown run: 42\n"
    mixed = run("batch", "--resume", "1", "--purpose", "mentor")
    assert mixed.exit_code == 2 and "--resume takes the run's own parameters; drop --purpose" in mixed.output


def test_resume_from_the_command_line(run, tmp_path):
    settings = load_settings({"db": str(tmp_path / "r.db"), "index_dir": str(tmp_path / "idx")}, env={})
    service = Service(settings, encoder=FakeEncoder())

    def crash(phase, part):
        raise KeyboardInterrupt  # as if stopped by hand after the first partition

    try:
        with pytest.raises(KeyboardInterrupt):
            run_batch(service, BatchParams.create(partition_size=1), hooks=Hooks(on_partition=crash))
    finally:
        service.close()
    shown = run("runs", "show", "1")
    assert shown.output.startswith("run 1: failed (coverage; ") and "error: KeyboardInterrupt" in shown.output
    resumed = run("batch", "-q", "--resume", "1", "--out", str(tmp_path / "late.jsonl"))
    assert resumed.exit_code == 0, resumed.output
    assert resumed.output.startswith("run 1: done (coverage; ")
    assert (tmp_path / "late.jsonl").exists()
    done = run("batch", "-q", "--resume", "1")
    assert done.exit_code == 1 and done.output == "Error: run 1 is already done; start a new run instead\n"


def test_a_locked_database_is_refused(run, tmp_path):
    with run_lock(tmp_path / "r.db"):
        locked = run("batch", "-q")
    assert locked.exit_code == 1
    assert locked.output.startswith("Error: another batch run is in progress (lock ")


def test_the_executor_is_chosen_on_the_command_line(run, tmp_path):
    wrong = run("batch", "-q", "--workers", "2")
    assert wrong.exit_code != 0 and "--address, --workers and --gpus-per-worker need --executor ray" in wrong.output
    idle_gpus = run("index", "build", "-q", "--executor", "ray", "--gpus-per-worker", "1")  # refused before Ray starts
    assert idle_gpus.exit_code == 2 and "embed on 'cpu'; set REFMATCH_DEVICE=cuda" in idle_gpus.output, idle_gpus.output
    pytest.importorskip("ray")
    here = run("batch", "-q", "--as-of", "2026-01-05", "--out", str(tmp_path / "here.jsonl"))
    there = run("batch", "-q", "--as-of", "2026-01-05", "--executor", "ray", "--workers", "2",
                "--out", str(tmp_path / "there.jsonl"))  # fmt: skip
    assert here.exit_code == 0 and there.exit_code == 0, there.output

    def rows(name):
        lines = (tmp_path / name).read_text(encoding="utf-8").splitlines()
        return [{k: v for k, v in json.loads(line).items() if k != "run_id"} for line in lines]

    assert rows("there.jsonl") == rows("here.jsonl") and rows("here.jsonl")
    built = run("index", "build", "-q", "--full", "--executor", "ray", "--workers", "2")
    assert built.exit_code == 0 and "profiles: rebuilt" in built.output, built.output
