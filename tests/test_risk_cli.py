"""``refmatch risk``: listing in three formats, update, show, episodes, churn import, config, errors."""

import csv
import io
import json

import pytest
from click.testing import CliRunner

from refmatch.cli import cli
from refmatch.embed.fake import FakeEncoder
from tests.conftest import account, advocate, write_csv


@pytest.fixture
def run(tmp_path):
    encoder = FakeEncoder()
    base = ["--db", str(tmp_path / "r.db"), "--index-dir", str(tmp_path / "idx")]

    def invoke(*args):
        return CliRunner().invoke(cli, [*args, *base], obj={"encoder": encoder}, catch_exceptions=False)

    return invoke


@pytest.fixture
def loaded(run, tmp_path):
    accounts = [account("A1", renewal_date="2099-01-01"), account("A2"), account("A3")]
    signals = [
        {"account_external_id": "A1", "observed_on": "2026-03-01", "kind": "health", "value": 35},
        {"account_external_id": "A1", "observed_on": "2026-03-01", "kind": "champion_left", "value": 1},
        {"account_external_id": "A2", "observed_on": "2026-03-01", "kind": "open_tickets", "value": 7},
    ]
    assert run("import", "accounts", str(write_csv(tmp_path / "a.csv", accounts))).exit_code == 0
    assert run("import", "advocates", str(write_csv(tmp_path / "v.csv", [advocate("A3")]))).exit_code == 0
    assert run("import", "signals", str(write_csv(tmp_path / "s.csv", signals))).exit_code == 0
    return run


def test_list_table_json_csv(loaded):
    table = loaded("risk", "--as-of", "2026-03-10")
    assert table.exit_code == 0, table.output
    assert table.output == (
        "risk as of 2026-03-10 (rules: defaults): 0 high, 1 medium, 2 low; 1 shown at medium or above\n"
        "1. Company A1 (A1, value)  score 40  medium\n"
        "     - health 35 on 2026-03-01, below 50\n"
        "     - champion left on 2026-03-01\n"
    )
    data = json.loads(loaded("risk", "--as-of", "2026-03-10", "--level", "low", "--format", "json").output)
    assert [a["external_id"] for a in data["accounts"]] == ["A1", "A2", "A3"]
    assert data["accounts"][1]["reasons"] == [
        {
            "rule": "open_tickets",
            "trouble": "support backlog",
            "points": 10.0,
            "text": "7 open support tickets on 2026-03-01 (5 or more)",
        }
    ]
    rows = list(csv.DictReader(io.StringIO(loaded("risk", "--as-of", "2026-03-10", "--format", "csv").output)))
    assert rows == [
        {
            "external_id": "A1",
            "name": "Company A1",
            "stage": "value",
            "score": "40",
            "level": "medium",
            "at_risk_since": "",
            "troubles": "poor health; champion left",
            "reasons": "health 35 on 2026-03-01, below 50; champion left on 2026-03-01",
        }
    ]


def test_update_show_and_episodes(loaded):
    out = loaded("risk", "update", "--as-of", "2026-03-10")
    assert out.exit_code == 0 and out.output.startswith("risk as of 2026-03-10: 3 accounts scored (0 high, 1 medium")
    shown = loaded("risk", "show", "A1", "--as-of", "2026-03-10")
    assert "score 40, medium (at risk)" in shown.output and "[x] champion_left" in shown.output
    assert "episode 2026-03-01 .. open: peak 40; poor health, champion left" in shown.output
    listed = loaded("risk", "episodes", "--format", "json")
    assert [(e["external_id"], e["outcome"]) for e in json.loads(listed.output)] == [("A1", "open")]


def test_churn_import_ends_the_episode_and_fit_explains_what_is_missing(loaded, tmp_path):
    churn = write_csv(tmp_path / "c.csv", [{"account_external_id": "A1", "churned_on": "2026-03-05", "reason": ""}])
    dry = loaded("risk", "churn", str(churn), "--dry-run")
    assert dry.output.startswith("churn: would import 1 rows") and "1 inserted" in dry.output
    assert "churn: imported 1 rows" in loaded("risk", "churn", str(churn)).output
    loaded("risk", "update", "--as-of", "2026-03-10")
    eps = json.loads(loaded("risk", "episodes", "A1", "--format", "json").output)
    assert [(e["outcome"], e["ended_on"]) for e in eps] == [("churned", "2026-03-05")]
    fit = loaded("risk", "fit", "--as-of", "2026-03-10")
    assert fit.exit_code == 2 and fit.output.startswith("Error: not enough history before 2026-03-10")


def test_config_show_and_init(loaded, tmp_path):
    shown = loaded("risk", "config")
    assert shown.output.startswith("rules from defaults\nlevels: medium from 30, high from 60; at risk from medium\n")
    assert "  champion_left           20 pts  champion_left(within_days=180)  trouble: champion left" in shown.output
    init = loaded("risk", "config", "--init")
    assert init.exit_code == 0 and (tmp_path / "risk.toml").is_file()
    again = loaded("risk", "config", "--init")
    assert again.exit_code == 1 and again.output.startswith("Error: ") and "use --force" in again.output
    (tmp_path / "risk.toml").write_text("[rules.champion_left]\npoints = 40\n")
    listed = loaded("risk", "--as-of", "2026-03-10")
    assert f"(rules: {tmp_path / 'risk.toml'})" in listed.output and "score 60  high" in listed.output


def test_errors_are_one_line(loaded, tmp_path):
    bad_date = loaded("risk", "--as-of", "10/03/2026")
    assert (bad_date.exit_code, bad_date.output) == (
        2,
        "Error: as_of: not a valid date (expected YYYY-MM-DD): '10/03/2026'\n",
    )
    missing = loaded("risk", "show", "NOPE")
    assert (missing.exit_code, missing.output) == (1, "Error: unknown account: 'NOPE'\n")
    (tmp_path / "bad.toml").write_text("[rules.health_low]\nbelow = -1\n")
    bad_config = loaded("risk", "--config", str(tmp_path / "bad.toml"))
    assert bad_config.exit_code == 2
    message = "rules.health_low.below: must be a number >= 0, got -1"
    assert bad_config.output == f"Error: {tmp_path / 'bad.toml'}: {message}\n"
