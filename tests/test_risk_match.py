"""Retention and mentor matching with risk: at-risk advocates are never proposed, and an at-risk
account meets the advocate who recovered from the same troubles.

Signal dates count back from today, because the scores stored at import are as of today.
"""

from datetime import date, timedelta

import pytest

from refmatch.app import risk as risk_service
from tests.conftest import account, advocate, write_csv


def ago(days: int) -> str:
    return (date.today() - timedelta(days=days)).isoformat()


def series(external_id, kind, points):
    return [{"account_external_id": external_id, "observed_on": ago(d), "kind": kind, "value": v} for d, v in points]


@pytest.fixture
def peers(service, tmp_path):
    """S is at risk now for falling usage and a champion who left. R1 went through exactly that
    last year and recovered; R2 recovered from a support backlog, escalations and unhappy users;
    R3 was never at risk; R4 recovered like R1 but is at risk again now."""
    accounts = [account("S"), *(account(f"R{i}", stage="expansion") for i in range(1, 5))]
    steady = [(400, 85), (300, 85), (200, 85), (100, 85), (10, 85)]
    signals = [
        *series("S", "usage", [(100, 80), (45, 80), (10, 40)]),
        *series("S", "champion_left", [(20, 1)]),
        *series("R1", "usage", [(400, 80), (330, 80), (300, 40), (200, 85), (100, 85), (10, 85)]),
        *series("R1", "champion_left", [(300, 1)]),
        *series("R2", "usage", steady),
        *series("R2", "open_tickets", [(300, 8), (200, 1), (10, 1)]),
        *series("R2", "escalation", [(300, 1), (200, 0)]),
        *series("R2", "nps", [(300, 3), (200, 9)]),
        *series("R3", "usage", steady),
        *series("R4", "usage", [(400, 80), (330, 80), (300, 40), (200, 85), (100, 85), (10, 85)]),
        *series("R4", "champion_left", [(300, 1)]),
        *series("R4", "health", [(5, 30)]),
        *series("R4", "escalation", [(5, 1)]),
    ]
    service.import_file("accounts", write_csv(tmp_path / "a.csv", accounts))
    service.import_file("advocates", write_csv(tmp_path / "v.csv", [advocate(f"R{i}") for i in range(1, 5)]))
    service.import_file("signals", write_csv(tmp_path / "s.csv", signals))
    service.build_indexes()
    return service


def test_known_answer_the_advocate_who_overcame_the_same_troubles_comes_first(peers):
    found = risk_service.retention_matches(peers, "S", k=5)
    assert found.risk.at_risk and found.risk.troubles == ["falling usage", "champion left"]
    top = found.result.matches
    assert top[0].external_id == "R1"
    r1 = top[0]
    assert r1.components["shared_troubles"] == 1.0
    assert r1.reasons[0].startswith("overcame 2 of your 2 troubles: falling usage, champion left (recovered by ")
    others = {m.external_id: m for m in top[1:]}
    assert set(others) == {"R2", "R3"}
    assert others["R2"].components["shared_troubles"] == 0.0
    assert others["R2"].reasons[0] == "no record of overcoming your troubles (falling usage, champion left)"
    assert r1.score > max(m.score for m in top[1:])


def test_a_peer_who_overcame_the_trouble_comes_first_even_when_others_score_higher(peers, tmp_path):
    """R1 overcame S's troubles but is otherwise a weak fit (another industry, size, region, profile); R2 and R3
    fit S closely. Retention proposes R1 first all the same, and its reasons say why."""
    weak = account("R1", stage="expansion", industry="Pharma", employees=20, region="APAC",
                   profile="R1 makes vaccines in small batches")  # fmt: skip
    peers.import_file("accounts", write_csv(tmp_path / "weak.csv", [weak]))
    peers.build_indexes()
    found = peers.match_account("S", purpose="retention", k=3).matches
    assert [m.external_id for m in found][0] == "R1"
    assert found[0].reasons[0].startswith("overcame 2 of your 2 troubles")
    assert found[0].score < max(m.score for m in found[1:])  # first for what it overcame, not for its score
    batch_like = peers.match_account("S", purpose="retention", k=1).matches
    assert [m.external_id for m in batch_like] == ["R1"]


def test_an_at_risk_advocate_is_never_proposed_for_retention(peers):
    assert risk_service.risk_list(peers, level="medium").accounts[0].external_id in ("S", "R4")
    via_core = peers.match_account("S", purpose="retention", k=10)  # the stored scores apply to every caller
    assert "R4" not in [m.external_id for m in via_core.matches]
    assert via_core.eligible == 3
    # R4 recovers: it is proposed again, and it too overcame S's troubles
    later = series("R4", "health", [(1, 90)]) + series("R4", "escalation", [(1, 0)])
    peers.import_file("signals", write_csv(peers.settings.db_path.parent / "s2.csv", later))
    again = peers.match_account("S", purpose="retention", k=10)
    assert "R4" in [m.external_id for m in again.matches]


def test_mentor_eligibility_same_product_mentoring_consent_and_not_at_risk(service, tmp_path):
    accounts = [
        account("M", stage="onboarding"),
        account("G1"),  # eligible
        account("G2"),  # at risk
        account("G3", products=["Ledger"]),  # other product
        account("G4"),  # no mentoring consent
        account("G5", stage="adoption"),  # eligible
        account("G6", stage="onboarding"),  # not live
    ]
    advocates = [
        advocate("G1"),
        advocate("G2"),
        advocate("G3"),
        advocate("G4", reference_types=["call", "peer_call"]),
        advocate("G5"),
        advocate("G6"),
    ]
    signals = series("G2", "health", [(5, 30)]) + series("G2", "champion_left", [(5, 1)])
    service.import_file("accounts", write_csv(tmp_path / "a.csv", accounts))
    service.import_file("advocates", write_csv(tmp_path / "v.csv", advocates))
    service.import_file("signals", write_csv(tmp_path / "s.csv", signals))
    service.build_indexes()
    found = risk_service.mentor_matches(service, "M", k=10)
    assert sorted(m.external_id for m in found.result.matches) == ["G1", "G5"]
    assert found.risk.external_id == "M" and not found.risk.at_risk
    listed, total = risk_service.onboarding_page(service, limit=10, offset=0)
    assert total == 2
    assert [(o["external_id"], sorted(m["advocate"]["external_id"] for m in o["matches"])) for o in listed] == [
        ("G6", ["G1", "G5"]),  # same stage_since: by external id
        ("M", ["G1", "G5"]),
    ]


def test_at_risk_list_with_retention_peers(peers):
    risk_service.ensure_current(peers)
    rows, total, level = risk_service.at_risk_page(peers, level=None, limit=10, offset=0)
    assert (total, level) == (2, "medium")
    assert sorted(r["external_id"] for r in rows) == ["R4", "S"]
    s = next(r for r in rows if r["external_id"] == "S")
    assert s["level"] == "medium" and s["at_risk_since"] is not None
    assert s["matches"][0]["advocate"]["external_id"] == "R1"
    assert s["matches"][0]["components"]["shared_troubles"] == 1.0
