"""The pool-exhaustion forecast on planted data: who asks, who could answer, and the quarter a segment runs dry."""

import pytest

from refmatch.app import tables
from refmatch.app.forecast import forecast, parse_by, quarters_from, recruits
from refmatch.domain.errors import InvalidInput
from tests.conftest import account, advocate, write_csv

AS_OF = "2027-03-20"  # 12 of Q1's 90 days left


@pytest.fixture
def planted(service, tmp_path):
    """Logistics / Flow WMS / EMEA: 20 customers asked for 40 references in 2026 (10 a quarter, 2 each);
    A1 (8 a quarter, one used this quarter) and A2 (4, in a blackout until May) could answer; A3 and A4
    could not (no consent, unhealthy). Retail / Ledger / NA: one open prospect, no advocate at all."""
    accounts = [account(f"C{i}", stage="onboarding") for i in range(1, 21)]
    accounts += [account("A1"), account("A2"), account("A3"), account("A4", health=40)]
    accounts += [account("R1", stage="prospect", industry="Retail", region="NA", products=["Ledger"])]
    accounts += [account("P9", stage="prospect")]  # a prospect with no open need: not pipeline
    advocates = [
        advocate("A1", capacity_per_quarter=8),
        advocate("A2", capacity_per_quarter=4, blackout_until="2027-05-01"),
        advocate("A3", capacity_per_quarter=10, consent="false"),
        advocate("A4", capacity_per_quarter=10),
    ]
    needs = [{"account_external_id": "R1", "need": "close the books faster", "status": "open"}]
    service.import_file("accounts", write_csv(tmp_path / "a.csv", accounts))
    service.import_file("advocates", write_csv(tmp_path / "v.csv", advocates))
    service.import_file("needs", write_csv(tmp_path / "n.csv", needs))
    ids = dict(service.conn.execute("SELECT external_id, id FROM accounts"))
    rows = []
    for i in range(40):  # two per customer, spread over 2026's quarters
        day = f"2026-{3 * (i % 4) + 2:02d}-15T10:00:00+00:00"
        rows.append((ids[f"C{i % 20 + 1}"], ids["A1"], "completed", day))
    rows.append((ids["C1"], ids["A1"], "approved", "2027-01-05T10:00:00+00:00"))  # a slot of this quarter
    rows.append((ids["C2"], ids["A1"], "completed", "2025-11-05T10:00:00+00:00"))  # before the lookback
    with service.conn:
        service.conn.executemany(
            "INSERT INTO reference_requests (seeker_account_id, advocate_account_id, purpose, status, created_at, "
            "updated_at, approved_at) VALUES (?, ?, 'reference', ?, ?, ?, ?)",
            [(s, a, st, at, at, at) for s, a, st, at in rows],
        )
    return service


def test_a_segment_runs_dry_in_the_quarter_it_must(planted):
    f = forecast(planted, today=AS_OF)
    assert f.quarters == ["2027-Q1", "2027-Q2", "2027-Q3", "2027-Q4"] and f.per_prospect == 2.0
    retail, logistics = f.segments  # soonest first
    assert retail.key == {"industry": "Retail", "product": "Ledger", "region": "NA"}
    assert (retail.prospects, retail.advocates, retail.run_rate, retail.dry) == (1, 0, 0.0, "2027-Q1")
    assert [(q.demand, q.capacity) for q in retail.quarters] == [(1.0, 0), (1.0, 0), (0.0, 0), (0.0, 0)]
    assert retail.shortfall == 2.0  # one prospect x 2 references, over the 2 pipeline quarters

    assert logistics.name == "Logistics / Flow WMS / EMEA"
    assert (logistics.prospects, logistics.advocates, logistics.run_rate) == (0, 2, 10.0)
    q1, q2, q3, q4 = logistics.quarters
    assert q1.demand == pytest.approx(10 * 12 / 90, abs=0.01) and q1.capacity == 7  # A1's slots left; A2 away
    assert (q2.demand, q2.capacity, q2.shortfall) == (10.0, 8, 2.0)  # A2 is still away on 1 April
    assert (q3.demand, q3.capacity, q3.shortfall) == (10.0, 12, 0.0)  # back from July
    assert logistics.dry == "2027-Q2" and logistics.shortfall == 2.0


def test_groupings_options_and_errors(planted):
    by_industry = forecast(planted, by="industry", today=AS_OF)
    assert [s.name for s in by_industry.segments] == ["Retail", "Logistics"]
    by_region = forecast(planted, by=["region"], today=AS_OF)
    assert {s.name: s.dry for s in by_region.segments} == {"NA": "2027-Q1", "EMEA": "2027-Q2"}
    longer = forecast(planted, today=AS_OF, pipeline_quarters=1, quarters=2)
    assert [q.demand for q in longer.segments[0].quarters] == [2.0, 0.0]  # the pipeline all in the first quarter
    assert parse_by("region,industry") == ("industry", "region") and parse_by("all") == parse_by(None)
    for bad in ("size", "industry,industry", ","):
        with pytest.raises(InvalidInput, match="by: "):
            parse_by(bad)
    with pytest.raises(InvalidInput, match="quarters: "):
        forecast(planted, quarters=0)
    with pytest.raises(InvalidInput, match="as_of: "):
        forecast(planted, today="next week")
    with pytest.raises(InvalidInput, match="as_of: a day from 1900-01-01"):
        forecast(planted, today="0001-01-08")  # four quarters back would leave the calendar
    assert [q.label for q in quarters_from(__import__("datetime").date(2026, 11, 30), 3)] == [
        "2026-Q4", "2027-Q1", "2027-Q2",
    ]  # fmt: skip


def test_the_table_has_each_quarters_figures(planted):
    t = tables.forecast(planted, by="industry", quarters=2, today=AS_OF)
    assert t.columns[:6] == ("industry", "open_prospects", "run_rate", "advocates", "runs_dry", "shortfall")
    assert t.columns[6:] == tuple(
        f"{q} {w}" for q in ("2027-Q1", "2027-Q2") for w in ("demand", "capacity", "shortfall")
    )
    assert t.rows[0][:6] == ["Retail", 1, 0.0, 0, "2027-Q1", 2.0]
    csv = tables.encode(t, "csv").decode("utf-8").splitlines()
    assert csv[1].startswith("Retail,1,0.0,0,2027-Q1,2.0,1.0,0,1.0")


def test_forecast_cli(planted):
    from click.testing import CliRunner

    from refmatch.cli import cli
    from refmatch.embed.fake import FakeEncoder

    where = ["--db", str(planted.settings.db_path), "--index-dir", str(planted.settings.index_path)]

    def run_cli(*args):
        return CliRunner().invoke(cli, [*args, *where], obj={"encoder": FakeEncoder()})

    out = run_cli("forecast", "--as-of", AS_OF, "--by", "industry")
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith(
        "forecast as of 2027-03-20 by industry: 2 segments with demand, 2 run dry"
    )
    assert "Retail" in out.output and "2027-Q1" in out.output
    bad = run_cli("forecast", "--by", "size")
    assert bad.exit_code != 0 and "by: a comma-separated choice" in bad.output


def test_recruits_are_healthy_promoters_ranked_by_the_shortfall_they_would_cover(planted, tmp_path):
    extra = [
        account("N1"),  # never asked, a promoter
        account("N2"),  # never asked, a detractor: not a recruit
        account("N3", industry="Retail", region="NA", products=["Ledger"]),  # no NPS known
        account("N4", health=45),  # unhealthy
        account("N5", stage="onboarding"),  # not live yet
    ]
    planted.import_file("accounts", write_csv(tmp_path / "more.csv", extra))
    ids = dict(planted.conn.execute("SELECT external_id, id FROM accounts"))
    with planted.conn:
        planted.conn.executemany(
            "INSERT INTO signals (account_id, observed_on, kind, value) VALUES (?, ?, 'nps', ?)",
            [(ids["N1"], "2026-01-01", 3), (ids["N1"], "2027-01-01", 10), (ids["N2"], "2027-01-01", 6)],
        )
    f = forecast(planted, today=AS_OF)
    found = recruits(planted, f)
    assert [r.external_id for r in found] == ["N1", "A3", "N3"]  # A3: an advocate that has not consented
    n1, a3, n3 = found
    assert (n1.nps, n1.status, n1.segments, n1.covers) == (10, "never asked", ["Logistics / Flow WMS / EMEA"], 2.0)
    assert (a3.status, a3.nps) == ("not consenting", None)
    assert n3.segments == ["Retail / Ledger / NA"] and n3.covers == 2.0  # one slot short in each of two quarters
    t = tables.recruits(planted, today=AS_OF)
    assert t.columns == tables.RECRUIT_COLUMNS and t.rows[0][:3] == ["N1", "Company N1", "value"]
