"""scripts/backtest_risk.py runs on the shared RavenStack data and reports every method."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "backtest_risk.py"


def _script():
    spec = importlib.util.spec_from_file_location("backtest_risk", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_backtest_prints_auc_and_precision_for_rules_model_and_baselines(capsys):
    backtest = _script()
    if not (backtest.DEFAULT_DATA / "ravenstack_accounts.csv").is_file():
        pytest.skip("RavenStack data not available (../shared/data/ravenstack)")
    assert backtest.main(["--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["cutoff"] == "2024-10-01" and result["accounts_active"] > 100 and result["churned_in_horizon"] > 10
    assert set(result["methods"]) == {
        "rules (defaults + 2 mapped kinds)",
        "fitted model (4 earlier cutoffs)",
        "naive: tickets in last 90 days",
        "naive: latest usage (lower = riskier)",
    }
    for metrics in result["methods"].values():
        assert 0 <= metrics["auc"] <= 1 and 0 <= metrics["precision_at_10"] <= 1
    assert result["train"]["cutoffs"][-1] < result["cutoff"]


def test_backtest_refuses_a_missing_folder(tmp_path, capsys):
    assert _script().main(["--data", str(tmp_path)]) == 2
    assert "RavenStack data not found" in capsys.readouterr().err
