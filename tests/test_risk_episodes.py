"""Risk episodes: entered, why, resolved or churned; stored scores follow every import."""

import json
from datetime import date

import pytest

from refmatch.app import risk as risk_service
from refmatch.domain.errors import InvalidInput
from tests.conftest import account, write_csv

DAILY = "[episodes]\nreplay_every_days = 1\n"  # checkpoints every day: exact dates in the asserts


def signal(external_id, day, kind, value):
    return {"account_external_id": external_id, "observed_on": day, "kind": kind, "value": value}


@pytest.fixture
def history(service, tmp_path):
    """E1 falls ill on 2026-02-01 and recovers on 2026-04-01; E2 falls ill and churns on 2026-03-15;
    E3 is at risk from 2026-03-01 on (until its ticket count goes stale after 120 days); E4 stays healthy."""
    (tmp_path / "risk.toml").write_text(DAILY)
    service.import_file("accounts", write_csv(tmp_path / "a.csv", [account(f"E{i}") for i in range(1, 5)]))
    rows = []
    for e in ("E1", "E2", "E3", "E4"):
        rows.append(signal(e, "2026-01-01", "health", 80))
    rows += [
        signal("E1", "2026-02-01", "health", 40),  # low (20) + lost 40 in 30 days (15): 35, medium
        signal("E1", "2026-04-01", "health", 85),
        signal("E2", "2026-02-01", "health", 40),
        signal("E3", "2026-03-01", "champion_left", 1),  # 20
        signal("E3", "2026-03-01", "open_tickets", 6),  # 10
        signal("E4", "2026-03-01", "health", 82),
    ]
    service.import_file("signals", write_csv(tmp_path / "s.csv", rows))
    write_csv(tmp_path / "churn.csv", [{"account_external_id": "E2", "churned_on": "2026-03-15", "reason": "budget"}])
    risk_service.import_churn(service, tmp_path / "churn.csv")
    return service


def by_account(svc):
    return {e["external_id"]: e for e in risk_service.episodes(svc)}


def test_episodes_enter_resolve_churn_and_stay_open(history):
    report = risk_service.update(history, as_of="2026-06-15")
    assert report.rebuilt  # an earlier date than the last checkpoint (today) replays
    eps = by_account(history)
    assert set(eps) == {"E1", "E2", "E3"}
    e1, e2, e3 = eps["E1"], eps["E2"], eps["E3"]
    assert (e1["entered_on"], e1["ended_on"], e1["outcome"]) == ("2026-02-01", "2026-04-01", "resolved")
    assert e1["troubles"] == ["poor health"] and e1["rules"] == ["health_low", "health_drop_30"]
    assert e1["peak_score"] == 35 and e1["peak_level"] == "medium"
    assert [r["text"] for r in e1["reasons_at_entry"]] == [
        "health 40 on 2026-02-01, below 50",
        "health fell 40 points in 30 days: 80 on 2026-01-01, 40 on 2026-02-01",
    ]
    assert (e2["entered_on"], e2["ended_on"], e2["outcome"]) == ("2026-02-01", "2026-03-15", "churned")
    assert (e3["entered_on"], e3["ended_on"], e3["outcome"]) == ("2026-03-01", None, "open")
    assert e3["troubles"] == ["support backlog", "champion left"]
    assert (report.at_risk, report.open_episodes) == (1, 1)


def test_incremental_updates_equal_one_replay(history):
    risk_service.update(history, as_of="2026-02-15")
    step = risk_service.update(history, as_of="2026-06-15")
    assert not step.rebuilt and step.resolved == 1 and step.churned == 1
    incremental = risk_service.episodes(history)
    risk_service.update(history, as_of="2026-06-15", rebuild=True)
    assert risk_service.episodes(history) == incremental


def test_stored_scores_follow_each_import_as_of_today(history, tmp_path):
    stored = dict(history.conn.execute("SELECT key, value FROM meta WHERE key LIKE 'risk_%'"))
    assert stored["risk_checkpoint"] == date.today().isoformat()
    before = history.conn.execute("SELECT count(*) FROM risk_scores WHERE score > 0").fetchone()[0]
    new = [signal("E4", date.today().isoformat(), "open_tickets", 9)]
    history.import_file("signals", write_csv(tmp_path / "s2.csv", new), dry_run=True)
    assert history.conn.execute("SELECT count(*) FROM risk_scores WHERE score > 0").fetchone()[0] == before
    history.import_file("signals", write_csv(tmp_path / "s2.csv", new))
    reasons = history.conn.execute(
        "SELECT r.reasons FROM risk_scores r JOIN accounts a ON a.id = r.account_id WHERE a.external_id = 'E4'"
    ).fetchone()[0]
    assert [r["rule"] for r in json.loads(reasons)] == ["open_tickets"]


def test_list_as_of_a_date_with_levels_and_reasons(history):
    listing = risk_service.risk_list(history, as_of="2026-02-10")
    assert [a.external_id for a in listing.accounts] == ["E1", "E2"]
    assert listing.counts == {"low": 2, "medium": 2, "high": 0} and listing.at_risk == 2
    assert listing.accounts[0].as_dict()["reasons"][0]["trouble"] == "poor health"
    assert risk_service.risk_list(history, as_of="2026-02-10", level="high").accounts == []
    assert [a.external_id for a in risk_service.risk_list(history, as_of="2026-06-15", level="low").accounts] == [
        "E3",
        "E1",
        "E4",
    ]  # E2 churned: no longer listed


def test_account_page_has_rules_signals_and_episodes(history):
    risk_service.update(history, as_of="2026-06-15")
    page = risk_service.account_risk(history, "E1", as_of="2026-02-10")
    assert page["score"] == 35 and page["level"] == "medium" and page["at_risk"]
    assert page["signals"]["health"] == [["2026-01-01", 80.0], ["2026-02-01", 40.0], ["2026-04-01", 85.0]]
    low = next(r for r in page["rules"] if r["rule"] == "health_low")
    assert low == {"rule": "health_low", "trouble": "poor health", "points": 20, "fired": True, "measure": 40.0}
    assert [e["outcome"] for e in page["episodes"]] == ["resolved"]


def test_bad_arguments_are_named(history, tmp_path):
    with pytest.raises(InvalidInput, match=r"as_of: not a valid date \(expected YYYY-MM-DD\): '2026-02-30'"):
        risk_service.risk_list(history, as_of="2026-02-30")
    with pytest.raises(InvalidInput, match="level: must be one of low, medium, high, got 'severe'"):
        risk_service.risk_list(history, as_of="2026-02-10", level="severe")
    with pytest.raises(InvalidInput, match="outcome: must be one of open, resolved, churned"):
        risk_service.episodes(history, outcome="lost")
    bad = write_csv(
        tmp_path / "bad.csv",
        [
            {"account_external_id": "NOPE", "churned_on": "2026-01-01"},
            {"account_external_id": "E1", "churned_on": "01/02/2026"},
        ],
    )
    with pytest.raises(InvalidInput) as err:
        risk_service.import_churn(history, bad)
    assert "2 of 2 rows are invalid; nothing was imported" in err.value.message
    assert "row 2, column 'account_external_id': unknown account 'NOPE'" in err.value.message
    assert "row 3, column 'churned_on': not a valid date (expected YYYY-MM-DD): '01/02/2026'" in err.value.message
