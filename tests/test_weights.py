"""Match weights learned from outcomes: planted preferences are recovered, beat the hand-set weights on held-out
requests, and are used only when asked for."""

import random

import pytest

from refmatch.app import weights as learned
from refmatch.domain.errors import InvalidInput, NotFound
from tests.conftest import account, advocate, write_csv

INDUSTRIES = ["Logistics", "Retail", "Pharma", "Banking"]
WORDS = "warehouse retail stores pallets finance ledger cloud security dashboards engineers trucks bakery".split()
LAST_YEAR = "2025-01-15T10:00:00+00:00"  # before this quarter: the requests use no capacity now


@pytest.fixture
def history(service, tmp_path):
    """40 prospects and 12 advocates over four industries, with profiles and sizes drawn at random; each prospect
    asked six advocates a year ago. Planted: a request went well exactly when both were in the same industry, so
    the hand-set weights (mostly profile similarity and size, industry 0.08) tell the outcomes apart poorly."""
    rng = random.Random(5)

    def profile() -> str:
        return " ".join(rng.sample(WORDS, 4))

    seekers = [account(f"S{i}", stage="prospect", industry=INDUSTRIES[i % 4], profile=profile(),
                       employees=rng.choice([20, 500, 9000])) for i in range(40)]  # fmt: skip
    advocates = [account(f"A{j}", industry=INDUSTRIES[j % 4], profile=profile(), employees=rng.choice([20, 500, 9000]))
                 for j in range(12)]  # fmt: skip
    service.import_file("accounts", write_csv(tmp_path / "a.csv", seekers + advocates))
    service.import_file("advocates", write_csv(tmp_path / "v.csv", [advocate(f"A{j}") for j in range(12)]))
    service.build_indexes()
    ids = dict(service.conn.execute("SELECT external_id, id FROM accounts"))
    rows = []
    for i in range(40):
        for j in {(i + step) % 12 for step in (0, 1, 2, 4, 5, 8)}:
            same = INDUSTRIES[i % 4] == INDUSTRIES[j % 4]
            status, rating = ("completed", 5) if same else ("declined", None)
            rows.append((ids[f"S{i}"], ids[f"A{j}"], "reference", "call", status, LAST_YEAR, LAST_YEAR, rating))
    with service.db.conn:
        service.conn.executemany(
            "INSERT INTO reference_requests (seeker_account_id, advocate_account_id, purpose, reference_type, status, "
            "created_at, updated_at, rating) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    return service


def test_fitted_weights_recover_the_planted_preference_and_beat_the_hand_set_ones(history):
    report = learned.fit(history, seed=1)
    assert report.requests["good"] >= 10 and report.requests["bad"] >= 10
    assert report.fitted["w_industry"] == max(report.fitted.values())  # what decided every outcome
    assert report.fitted["w_industry"] > report.hand_set["w_industry"]
    assert report.auc_fitted > report.auc_hand_set and report.beats_hand_set
    assert sum(report.fitted.values()) == pytest.approx(sum(report.hand_set.values()), abs=1e-3)
    assert "use them with 'refmatch weights use ID'" in report.verdict


def test_a_fit_is_used_only_when_asked_and_can_be_undone(history):
    report = learned.fit(history, seed=1)
    before = history.match_account("S0", k=3).matches
    assert history.settings.w_industry == 0.08  # stored, not in use
    learned.use(history, report.id)
    fresh = type(history)(history.settings, encoder=history.encoder)  # a process opening the database anew
    assert fresh.settings.w_industry == 0.08 and fresh.db and fresh.settings.w_industry == report.fitted["w_industry"]
    after = fresh.match_account("S0", k=3).matches
    assert [m.reasons for m in after][0] and set(after[0].components) == set(before[0].components)
    assert [f["in_use"] for f in learned.fits(history)] == [True]
    learned.use(history, None)
    again = type(history)(history.settings, encoder=history.encoder)
    assert again.db and again.settings.w_industry == 0.08
    with pytest.raises(NotFound, match="no weights fit 99"):
        learned.use(history, 99)
    fresh.close()
    again.close()


def test_too_few_outcomes_are_refused_plainly(world):
    with pytest.raises(InvalidInput, match="not enough outcomes to learn from: 0 good and 0 bad"):
        learned.fit(world)


def test_the_cli_fits_lists_and_switches(history, monkeypatch):
    from click.testing import CliRunner

    from refmatch.cli import cli

    settings = history.settings
    monkeypatch.setenv("REFMATCH_DB", str(settings.db_path))
    monkeypatch.setenv("REFMATCH_INDEX_DIR", str(settings.index_path))
    monkeypatch.setenv("REFMATCH_MODEL", "fake-bow")
    runner = CliRunner()
    fitted = runner.invoke(cli, ["weights", "fit", "--seed", "1"])
    assert fitted.exit_code == 0, fitted.output
    assert fitted.output.startswith("weights fit 1: 120 good and 120 bad requests")
    assert "use them with 'refmatch weights use ID'" in fitted.output
    assert "in use" not in runner.invoke(cli, ["weights", "list"]).output
    used = runner.invoke(cli, ["weights", "use", "1"])
    assert used.exit_code == 0 and "matching now uses the weights of fit 1" in used.output
    assert "  1  in use" in runner.invoke(cli, ["weights", "list"]).output
    bad = runner.invoke(cli, ["weights", "use", "latest"])
    assert bad.exit_code == 2 and "'hand-set'" in bad.output
