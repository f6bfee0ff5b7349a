"""The dashboard's figures: open requests by age, requests per quarter, advocates' load, retention coverage."""

from datetime import date

from refmatch.app import queries
from tests import test_risk_match

peers = test_risk_match.peers  # the fixture: pytest finds it as an attribute of this module


def _requests(world, rows):
    ids = dict(world.conn.execute("SELECT external_id, id FROM accounts"))
    with world.conn:
        world.conn.executemany(
            "INSERT INTO reference_requests (seeker_account_id, advocate_account_id, purpose, status, created_at, "
            "updated_at, approved_at) VALUES (?, ?, 'reference', ?, ?, ?, ?)",
            [(ids[s], ids[a], st, at, at, at if st != "requested" else None) for s, a, st, at in rows],
        )


def test_open_requests_by_age_and_requests_per_quarter(world):
    _requests(world, [
        ("P1", "A1", "requested", "2027-03-30T10:00:00+00:00"),  # 2 days
        ("P1", "A2", "approved", "2027-03-20T10:00:00+00:00"),  # 12 days
        ("A7", "A1", "scheduled", "2027-03-01T10:00:00+00:00"),  # 31 days
        ("A7", "A2", "completed", "2027-01-10T10:00:00+00:00"),  # finished: not open
        ("A7", "A3", "declined", "2026-12-10T10:00:00+00:00"),
    ])  # fmt: skip
    ages = queries.request_ages(world, today=date(2027, 4, 1))
    assert ages == {
        "under a week": {"requested": 1, "approved": 0, "scheduled": 0},
        "1-2 weeks": {"requested": 0, "approved": 1, "scheduled": 0},
        "2-4 weeks": {"requested": 0, "approved": 0, "scheduled": 0},
        "4 weeks or more": {"requested": 0, "approved": 0, "scheduled": 1},
    }
    assert queries.requests_by_quarter(world) == [
        {"quarter": "2026-Q4", "completed": 0, "declined or cancelled": 1, "open": 0},
        {"quarter": "2027-Q1", "completed": 1, "declined or cancelled": 0, "open": 3},
    ]


def test_advocates_by_load(world):
    # A1: 3 slots (the fixture's default), 3 used -> full; A2: 2 of 3 -> half or more; A5 has no slot -> full
    _requests(world, [("P1", "A1", "approved", "2027-02-01T10:00:00+00:00")] * 3)
    _requests(world, [("P1", "A2", "scheduled", "2027-02-02T10:00:00+00:00")] * 2)
    load = queries.load_distribution(world, today=date(2027, 2, 10))
    assert list(load) == list(queries.LOAD_BUCKETS) and load["full"] == 2 and load["half or more"] == 1
    consenting = world.conn.execute("SELECT count(*) FROM advocates WHERE consent = 1").fetchone()[0]
    assert sum(load.values()) == consenting
    near = world.settings.replace(near_capacity_share=0.6)  # 2 of 3 is now near capacity
    world.settings = near
    assert queries.load_distribution(world, today=date(2027, 2, 10))["near capacity"] == 1


def test_retention_coverage_counts_the_accounts_at_risk(peers, tmp_path):
    from tests.conftest import advocate, write_csv

    covered = queries.coverage(peers, "retention")  # S and R4 are at risk; R1-R3 can help S, R1-R3 help R4
    assert (covered.purpose, covered.seekers, covered.uncovered) == ("retention", 2, ())
    no_consent = [advocate(f"R{i}", consent="false") for i in range(1, 5)]
    peers.import_file("advocates", write_csv(tmp_path / "none.csv", no_consent))
    alone = queries.coverage(peers, "retention")
    assert alone.seekers == 2 and set(alone.uncovered) == {"S", "R4"}
