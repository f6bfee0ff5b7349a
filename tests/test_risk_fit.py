"""The fitted model: evaluated like the rules, on held-out accounts, from data before each cutoff."""

from datetime import date, timedelta

import numpy as np
import pytest

from refmatch.domain.errors import InvalidInput
from refmatch.risk import AccountFrame, SignalTable, load_config
from refmatch.risk.fit import evaluate, fit_history, snapshots
from refmatch.risk.signals import ordinal

STAGES = ("prospect", "onboarding", "adoption", "value", "expansion")


def test_evaluate_known_answers():
    m = evaluate(np.array([4, 3, 2, 1]), np.array([1, 0, 1, 0]))
    assert (m.auc, m.precision_at_10, m.n, m.positives) == (0.75, 1.0, 4, 2)
    tied = evaluate(np.zeros(20), np.arange(20) < 10)
    assert tied.auc == 0.5 and tied.precision_at_10 in (0.0, 0.5, 1.0)
    assert evaluate(np.ones(3), np.zeros(3)).auc is None


def synthetic(n=240, seed=1):
    """Monthly usage for two years; a third of the accounts churn, their usage sliding for 3 months first."""
    rng = np.random.default_rng(seed)
    months = [date(2024 + m // 12, m % 12 + 1, 1) for m in range(24)]
    records, churn = [], []
    for row in range(n):
        churn_month = int(rng.integers(6, 24)) if row % 3 == 0 else None
        level = float(rng.uniform(50, 90))
        for i, day in enumerate(months):
            if churn_month is not None and i > churn_month:
                break
            slide = 0.6 ** max(0, i - churn_month + 3) if churn_month is not None else 1.0
            records.append((row, "usage", ordinal(day), level * slide + rng.normal(0, 3)))
            records.append((row, "open_tickets", ordinal(day), float(rng.integers(0, 4))))
        if churn_month is not None:
            churn.append((row, (months[churn_month] + timedelta(days=10)).isoformat()))
    accounts = AccountFrame.build([f"A{i}" for i in range(n)], stages=STAGES, churn=churn)
    return accounts, SignalTable.build(n, records)


def test_snapshots_use_only_data_before_each_cutoff_and_label_the_horizon():
    accounts, signals = synthetic(30)
    config = load_config()
    data = snapshots(accounts, signals, config, [date(2025, 1, 1)], 90)
    churn = list(zip(accounts.churn.rows.tolist(), (accounts.churn.days - ordinal("2025-01-01")).tolist()))
    assert set(data.rows[data.y].tolist()) == {r for r, d in churn if 0 < d <= 90}
    assert not set(data.rows.tolist()) & {r for r, d in churn if d <= 0}  # churned before: not a customer


def test_fit_beats_chance_and_reports_against_the_rules():
    accounts, signals = synthetic()
    report = fit_history(accounts, signals, load_config(), date(2025, 12, 31), horizon=90, seed=0)
    assert report.model.auc > 0.75 and report.rules.auc > 0.6
    assert report.test["accounts"] == 72 and report.train["accounts"] == 168
    assert report.cutoffs[0] >= "2024-03-31" and report.cutoffs[-1] <= "2025-10-02"
    assert set(report.coefficients) >= {"usage_drop_30", "usage_drop_90", "open_tickets"}
    table = report.table()
    assert "method   ROC AUC  precision@10%" in table and "verdict: " in table
    assert report.as_dict()["model"]["auc"] == report.model.auc


def test_fit_refuses_without_enough_history():
    accounts, signals = synthetic(30)
    bare = AccountFrame.build(accounts.external_ids, stages=STAGES)
    with pytest.raises(InvalidInput, match="no churn history: import churn events first"):
        fit_history(bare, signals, load_config(), date(2025, 12, 31))
    with pytest.raises(InvalidInput, match="not enough history before 2024-05-01"):
        fit_history(accounts, signals, load_config(), date(2024, 5, 1))
    with pytest.raises(InvalidInput, match="test_share: must be between 0 and 1"):
        fit_history(accounts, signals, load_config(), date(2025, 12, 31), test_share=1.5)


def test_fit_through_the_service_saves_its_report(service, tmp_path):
    from refmatch.app import risk as risk_service
    from tests.conftest import account, write_csv

    accounts, signals = synthetic(60)
    service.import_file("accounts", write_csv(tmp_path / "a.csv", [account(e) for e in accounts.external_ids]))
    rows = [
        {"account_external_id": accounts.external_ids[r], "observed_on": date.fromordinal(d).isoformat(), "kind": k}
        | {"value": round(v, 2)}
        for k, series in signals.series.items()
        for r, d, v in zip(series.rows.tolist(), series.days.tolist(), series.values.tolist())
    ]
    service.import_file("signals", write_csv(tmp_path / "s.csv", rows))
    churn = [
        {"account_external_id": accounts.external_ids[r], "churned_on": date.fromordinal(d).isoformat()}
        for r, d in zip(accounts.churn.rows.tolist(), accounts.churn.days.tolist())
    ]
    risk_service.import_churn(service, write_csv(tmp_path / "c.csv", churn))
    assert risk_service.latest_fit(service) is None
    report = risk_service.fit(service, as_of="2025-12-31")
    assert report.test["accounts"] == 18 and report.model.auc is not None
    assert risk_service.latest_fit(service)["verdict"] == report.verdict
