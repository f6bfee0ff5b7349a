import sqlite3
from datetime import date

import numpy as np
import pytest

from refmatch.domain.errors import InvalidInput, NotFound, StaleIndex
from tests.conftest import account, write_csv


def names(result):
    return [m.external_id for m in result.matches]


def test_exact_order_and_every_ineligible_advocate_excluded(world):
    result = world.match_account("P1", k=10)
    assert names(result) == ["A1", "A2", "A3"]
    assert result.eligible == 3
    scores = [m.score for m in result.matches]
    assert scores == sorted(scores, reverse=True)


def test_need_coverage_is_the_heart_of_the_score(world):
    a1, a2, a3 = world.match_account("P1", k=3).matches
    assert a1.components["need_coverage"] == pytest.approx(1.0, abs=1e-5)
    assert 0.45 < a2.components["need_coverage"] < 0.75
    assert a3.components["need_coverage"] < 0.3
    assert a1.reasons[0].startswith("met 2 of your 2 open needs: ")
    assert a2.reasons[0].startswith("met 1 of your 2 open needs: single sign on with azure ad")
    assert "same industry: Logistics" in a1.reasons
    assert "same region: EMEA" in a1.reasons
    assert "uses Flow WMS" in a1.reasons
    assert a1.components["industry"] == 1.0 and a3.components["industry"] == 0.0


def test_reference_type_changes_who_is_eligible(world):
    assert "A11" in names(world.match_account("P1", k=10, reference_type="logo"))
    assert "A1" not in names(world.match_account("P1", k=10, reference_type="logo"))


def test_k_results_whenever_k_are_eligible(world):
    assert len(world.match_account("P1", k=2).matches) == 2
    assert len(world.match_account("P1", k=1).matches) == 1


def test_capacity_used_by_approved_requests_this_quarter(world, tmp_path):
    today = date.today().isoformat()
    conn = world.conn
    a1 = conn.execute("SELECT id FROM accounts WHERE external_id = 'A1'").fetchone()[0]
    for _ in range(3):  # A1's capacity is 3 per quarter
        conn.execute(
            "INSERT INTO reference_requests (advocate_account_id, purpose, status, created_at, updated_at, "
            "approved_at) VALUES (?, 'reference', 'approved', ?, ?, ?)",
            (a1, today, today, today),
        )
    world._catalog = None
    assert names(world.match_account("P1", k=10)) == ["A2", "A3"]


def test_fatigue_penalises_recent_use(world):
    before = {m.external_id: m for m in world.match_account("P1", k=3).matches}
    today = date.today().isoformat()
    a1 = world.conn.execute("SELECT id FROM accounts WHERE external_id = 'A1'").fetchone()[0]
    world.conn.execute(
        "INSERT INTO reference_requests (advocate_account_id, purpose, status, created_at, updated_at, approved_at) "
        "VALUES (?, 'reference', 'completed', ?, ?, ?)",
        (a1, today, today, today),
    )
    world._catalog = None
    after = {m.external_id: m for m in world.match_account("P1", k=3).matches}
    assert after["A1"].components["fatigue"] == pytest.approx(-1 / 3)
    assert after["A1"].score < before["A1"].score
    assert "1 of 3 quarterly slots used" in after["A1"].reasons


def test_competitor_exclusion_works_both_ways(world, tmp_path):
    # A8 is in P1's do_not_match; make A2 name P1 in its own list
    world.import_file(
        "accounts",
        write_csv(tmp_path / "a2.csv", [account("A2", stage="expansion", employees=5000, do_not_match=["P1"])]),
    )
    world.build_indexes()
    assert names(world.match_account("P1", k=10)) == ["A1", "A3"]


def test_mentor_purpose_needs_mentoring_consent_and_a_live_advocate(world):
    result = world.match_account("C1", purpose="mentor", k=10)
    assert set(names(result)) == {"A1", "A2", "A3", "A8"}  # A7 is a prospect, not live; A8 is only P1's competitor
    assert "C1" not in names(result)


def test_adhoc_seeker_matches_like_a_stored_one(world):
    result = world.match_text(
        "distribution centres retailers logistics",
        needs=["consolidate regional warehouses onto one wms", "single sign on with azure ad"],
        industry="Logistics",
        employees=500,
        region="EMEA",
        products=["Flow WMS"],
        do_not_match=["A8"],
    )
    assert names(result) == ["A1", "A2", "A3"]
    assert result.seeker.external_id is None
    assert result.as_dict()["seeker"] == {"external_id": None, "name": "ad-hoc prospect"}


def test_json_shape(world):
    out = world.match_account("P1", k=2).as_dict()
    assert set(out) == {"seeker", "purpose", "matches", "note", "model", "index"}
    assert out["seeker"] == {"external_id": "P1", "name": "Company P1"}
    first = out["matches"][0]
    assert set(first) == {"rank", "advocate", "score", "strength", "components", "reasons"}
    assert set(first["components"]) == {
        "need_coverage", "profile_similarity", "industry", "size", "region", "products", "stage_gap", "lexical",
        "fatigue",
    }  # fmt: skip
    assert out["model"] == "fake-bow"
    assert set(out["index"]) == {"built_at", "data_version"}


def test_bad_requests_are_refused_clearly(world):
    with pytest.raises(NotFound, match="unknown account: 'NOPE'"):
        world.match_account("NOPE")
    with pytest.raises(InvalidInput, match="purpose: must be one of reference, mentor, retention"):
        world.match_account("P1", purpose="friendship")
    with pytest.raises(InvalidInput, match="k: must be between 1 and 100"):
        world.match_account("P1", k=0)
    with pytest.raises(InvalidInput, match="text: must not be empty"):
        world.match_text("   ")
    with pytest.raises(InvalidInput, match=r"needs\[1\]: must not be empty") as empty:
        world.match_text("a logistics firm", needs=["pick faster", " "])
    assert empty.value.details == [{"field": "needs[1]", "message": "must not be empty"}]
    for purpose, wanted in (("mentor", "in onboarding"), ("retention", "at risk")):
        with pytest.raises(InvalidInput, match=f"purpose: {purpose} is for customers {wanted}; P1 is a prospect"):
            world.match_account("P1", purpose=purpose)
        with pytest.raises(InvalidInput, match="ask for a reference"):
            world.match_text("a logistics firm", purpose=purpose)


def test_reasons_name_the_product_asked_for(world):
    plain = world.match_account("P1", k=3)
    assert any(r == "uses Flow WMS" for r in plain.matches[0].reasons)
    asked = world.match_account("P1", k=3, product="Ledger")
    assert asked.matches and all("uses Ledger, the product asked for" in m.reasons for m in asked.matches)
    assert not any(r.startswith("uses Flow WMS") for m in asked.matches for r in m.reasons)


def test_an_import_never_stops_matching(world, tmp_path):
    """New text waits for the next build; matching answers from the indexes as built meanwhile."""
    before = names(world.match_account("P1", k=10))
    world.import_file("accounts", write_csv(tmp_path / "new.csv", [account("N1", profile="brand new text")]))
    assert names(world.match_account("P1", k=10)) == before
    assert world.index_lag()["profiles"].unindexed.tolist() == [world.catalog().ids[-1]]
    world.build_indexes()
    assert names(world.match_account("P1", k=10))[0] == "A1"
    assert world.index_lag()["profiles"].pending == 0


def test_missing_index_is_refused(service, tmp_path):
    service.import_file("accounts", write_csv(tmp_path / "a.csv", [account("X1")]))
    with pytest.raises(StaleIndex, match="run 'refmatch index build'"):
        service.match_account("X1")


def test_unchanged_data_version_bump_does_not_make_index_stale(world, tmp_path):
    # re-importing identical rows changes nothing the index holds
    world.import_file("accounts", write_csv(tmp_path / "same.csv", [account("A1", employees=600)]))
    assert names(world.match_account("P1", k=10)) == ["A1", "A2", "A3"]
    assert isinstance(world.conn, sqlite3.Connection)


def test_catalog_memos_declare_what_they_read(world):
    """with_usage keeps what the slot counts cannot change and drops the rest; an undeclared memo is refused."""
    from refmatch.match.catalog import DERIVED, with_usage

    catalog = world.catalog()
    catalog.offers("call")
    catalog.memo("available", ("call", 4, 60.0), lambda: "computed from the slot counts")
    catalog.memo("standing", 60.0, lambda: "computed from the accounts only")
    fresh = with_usage(catalog, world.conn)
    assert set(fresh.memos) == {"offers", "standing"}
    assert {name for name, reads in DERIVED.items() if "usage" in reads} == {"available"}
    with pytest.raises(KeyError, match="not declared"):
        catalog.memo("undeclared", None, lambda: 1)


def test_each_match_has_a_strength_and_a_weak_list_says_what_is_missing(world):
    from dataclasses import replace

    strong = world.match_account("P1", k=3)
    assert strong.matches[0].strength == "strong" and strong.note is None
    for m in strong.matches:
        high, low = world.settings.strength_strong, world.settings.strength_fair
        expected = "strong" if m.score >= high and m.needs_met else "fair" if m.score >= low else "weak"
        assert m.strength == expected
    world.settings = replace(world.settings, strength_strong=0.0, strength_fair=0.0)  # every score is enough
    unmet = world.match_text("a bakery", industry="Food", employees=5, needs=["bake bread at night"])
    assert unmet.matches and all(m.needs_met == 0 and m.strength == "fair" for m in unmet.matches)  # never strong
    no_needs = world.match_text("a bakery", industry="Food", employees=5)
    assert no_needs.matches and {m.strength for m in no_needs.matches} == {"strong"}  # nothing to meet
    world.settings = replace(world.settings, strength_strong=0.99, strength_fair=0.98)  # everything is weak now
    weak = world.match_text("a bakery", industry="Food", employees=5, needs=["bake bread at night"])
    assert weak.matches and {m.strength for m in weak.matches} == {"weak"}
    assert weak.note.startswith("Nothing better than a weak match: ")
    assert "none has met a need like your 1 open ones" in weak.note
    assert "no live advocate in your industry (Food)" in weak.note and "none of a similar size" in weak.note


def test_the_lexical_component_scores_the_words_met_needs_share(world):
    from dataclasses import replace

    from refmatch.match.lexical import LexicalIndex, tokens

    assert tokens("Consolidate the regional Warehouses") == ["consolidate", "regional", "warehouse"]
    met = ["faster month end close", "single sign on with azure ad", "month end close", "azure ad sign on"]
    index = LexicalIndex.build(met, np.array([0, 1, 2, 2]))
    rows = np.array([0, 1, 2, 3])  # row 3 has met nothing
    best = index.best(["close the month end faster"], rows, 4)[:, 0]
    assert best[0] == pytest.approx(1.0, abs=1e-6) and best[1] == 0.0 and best[3] == 0.0  # every word, as rarely
    assert 0.0 < best[2] < best[0]  # three of the four words
    alone = index.best(["close the month end faster"], np.array([2]), 4)[:, 0]
    assert alone[0] == pytest.approx(best[2])  # the same pair scores the same whoever else is scored
    assert index.coverage(["the and of"], rows, 4).tolist() == [0.0] * 4  # only common words: nothing to go on
    two = index.coverage(["month end close", "azure single sign on"], rows, 4)
    assert two[2] > two[0] > 0.0 and two[2] > two[1] > 0.0  # row 2 met both needs in their words
    assert index.shared_words(["Azure single sign-on"], ["azure ad sign on"]) == ["azure", "sign"]
    assert LexicalIndex.build([], np.zeros(0, dtype=np.int64)).coverage(["x"], rows, 4).tolist() == [0.0] * 4
    shuffled = LexicalIndex.build(met[::-1], np.array([2, 2, 1, 0]))  # met needs in any order
    assert shuffled.best(["close the month end faster"], rows, 4)[:, 0].tolist() == pytest.approx(best.tolist())
    common = LexicalIndex.build(["stock count", "stock levels", "stock alerts"], np.array([0, 1, 2]))
    assert common.coverage(["stock"], rows, 4).tolist() == [0.0] * 4  # in every met need: says nothing
    assert common.coverage(["stock alerts"], rows, 4).tolist()[2] == pytest.approx(1.0)
    wordless = LexicalIndex.build([*met, "of the"], np.array([0, 1, 2, 2, 3]))  # row 3's need has no words
    assert wordless.best(["month end"], rows, 4)[3, 0] == 0.0
    result = world.match_account("P1", k=3)  # on by default
    assert all(0.0 <= m.components["lexical"] <= 1.0 for m in result.matches)
    assert max(m.components["lexical"] for m in result.matches) > 0
    named = [r for m in result.matches for r in m.reasons if r.startswith("their met needs use your words: ")]
    assert named  # the words are named where they count
    world.settings = replace(world.settings, w_lexical=0.0)
    off = world.match_account("P1", k=3)
    assert all(m.components["lexical"] == 0.0 for m in off.matches)
    assert not any(r.startswith("their met needs use") for m in off.matches for r in m.reasons)


def test_a_shortened_need_is_cut_between_words():
    from refmatch.match.scoring import _short

    assert _short("short enough") == "short enough"
    cut = _short("Cross-dock inbound pallets onto outbound trailers without putting them away first")
    assert cut == "Cross-dock inbound pallets onto outbound trailers without…" and len(cut) <= 60
    assert _short("x" * 80) == "x" * 59 + "…"  # one long word: cut in it
    assert _short("a" * 58 + " bb") == "a" * 58 + "…"


def test_the_catalog_is_read_from_one_snapshot_while_an_import_lands(world, tmp_path):
    from refmatch.app.service import Service
    from refmatch.embed.fake import FakeEncoder
    from refmatch.match import load_catalog
    from tests.conftest import advocate

    writer = Service(world.settings, encoder=FakeEncoder())  # another process's connection, say
    landed = []

    def import_between_reads(sql: str) -> None:
        if "FROM stage_history" in sql and not landed:  # the account list has been read already
            landed.append(True)
            writer.import_file("accounts", write_csv(tmp_path / "late.csv", [account("L1", stage="expansion")]))
            writer.import_file("advocates", write_csv(tmp_path / "late_adv.csv", [advocate("L1")]))

    world.conn.set_trace_callback(import_between_reads)
    try:
        catalog = load_catalog(world.conn, tuple(world.settings.stages))
    finally:
        world.conn.set_trace_callback(None)
    assert landed and "L1" not in catalog.external_ids  # as the database was when the reads began
    assert not world.conn.in_transaction
    assert "L1" in load_catalog(world.conn, tuple(world.settings.stages)).external_ids
    writer.close()
