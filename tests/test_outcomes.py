"""Outcome reporting: the totals against figures computed by hand from planted requests."""

import pytest

from refmatch.app import tables
from refmatch.app.outcomes import outcomes
from refmatch.domain.errors import InvalidInput
from tests.conftest import account, advocate, write_csv


@pytest.fixture
def planted(service, tmp_path):
    accounts = [
        account("P1", stage="prospect", products=["Flow WMS", "Ledger"]),
        account("P2", stage="prospect", industry="Retail", products=["Ledger"]),
        account("P3", stage="prospect"),
        account("P4", stage="prospect"),
        account("C1", stage="onboarding"),  # a customer asking: not a prospect's deal to compare
        account("A1"),
        account("A2"),
    ]
    service.import_file("accounts", write_csv(tmp_path / "a.csv", accounts))
    service.import_file("advocates", write_csv(tmp_path / "v.csv", [advocate("A1"), advocate("A2")]))
    ids = dict(service.conn.execute("SELECT external_id, id FROM accounts"))
    rows = [  # seeker, advocate, purpose, status, completed_at, outcome, arr, rating
        ("P1", "A1", "reference", "completed", "2026-02-10", "won", 100000, 5),
        ("P2", "A1", "reference", "completed", "2026-05-10", "lost", None, 3),
        ("P2", "A2", "reference", "completed", "2026-05-20", "won", 50000, 4),
        ("P1", "A2", "reference", "declined", None, None, None, None),
        ("P3", "A2", "reference", "cancelled", None, None, None, None),
        ("C1", "A1", "reference", "completed", "2026-05-25", "open", None, 4),
        ("P4", "A1", "reference", "requested", None, None, None, None),
        ("C1", "A2", "mentor", "completed", "2026-05-26", None, None, 1),
    ]
    with service.conn:
        service.conn.executemany(
            "INSERT INTO reference_requests (seeker_account_id, advocate_account_id, purpose, status, created_at, "
            "updated_at, completed_at, deal_outcome, influenced_arr, rating) "
            "VALUES (?, ?, ?, ?, '2026-01-05T09:00:00+00:00', '2026-01-05T09:00:00+00:00', ?, ?, ?, ?)",
            [(ids[s], ids[a], p, st, c and c + "T12:00:00+00:00", o, arr, r) for s, a, p, st, c, o, arr, r in rows],
        )
    return service


def test_outcome_totals_match_the_hand_computed_figures(planted):
    r = outcomes(planted)
    assert (r.deals.won, r.deals.lost, r.deals.open, r.deals.influenced_arr) == (2, 1, 1, 150000)
    assert r.deals.win_rate == pytest.approx(2 / 3, abs=1e-3)
    assert [(t.key, t.won, t.lost, t.open, t.influenced_arr) for t in r.by_quarter] == [
        ("2026-Q1", 1, 0, 0, 100000), ("2026-Q2", 1, 1, 1, 50000),
    ]  # fmt: skip
    assert [(t.key, t.won, t.lost, t.open, t.influenced_arr) for t in r.by_product] == [
        ("Ledger", 2, 1, 0, 150000),
        ("Flow WMS", 1, 0, 1, 100000),
    ]  # fmt: skip  (P1's deal counts under both its products)
    assert {t.key: (t.won, t.lost, t.open) for t in r.by_industry} == {"Logistics": (1, 0, 1), "Retail": (1, 1, 0)}
    a1, a2 = r.advocates
    assert (a1.external_id, a1.asked, a1.accepted, a1.declined, a1.completed) == ("A1", 4, 3, 0, 3)
    assert (a1.acceptance, a1.completion, a1.rating, a1.influenced_arr) == (1.0, 1.0, 4.0, 100000)
    assert (a2.asked, a2.accepted, a2.declined, a2.acceptance, a2.completion, a2.rating) == (3, 1, 1, 0.5, 1.0, 4.0)
    assert (r.ratings, r.rating) == (4, 4.0)  # the mentor request's 1 is not a reference's
    assert r.converted == {
        "with": {"prospects": 2, "won": 2, "share": 1.0},  # P1 and P2
        "without": {"prospects": 1, "won": 0, "share": 0.0},  # P3; P4 is still waiting, C1 a customer
    }


def test_outcome_tables_and_errors(planted):
    quarters = tables.outcomes(planted, "quarters")
    assert quarters.columns == ("quarter", "won", "lost", "open", "win_rate", "influenced_arr")
    assert quarters.rows[0] == ["2026-Q1", 1, 0, 0, 1.0, 100000]
    advocates = tables.outcomes(planted, "advocates")
    assert advocates.rows[1][:8] == ["A2", "Company A2", 3, 1, 1, 1, 0.5, 1.0]
    with pytest.raises(InvalidInput, match="table: must be one of"):
        tables.outcomes(planted, "regions")


def test_no_outcome_yet_is_an_empty_report(service):
    r = outcomes(service)
    assert (r.deals.won, r.by_quarter, r.advocates, r.rating) == (0, [], [], None)
    assert r.converted["with"] == {"prospects": 0, "won": 0, "share": None}
