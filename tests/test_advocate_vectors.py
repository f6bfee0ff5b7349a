"""Exhaustive matching over packed advocate vectors: layout, kernels, and agreement with brute force."""

import random

import numpy as np
import pytest

from refmatch.match import find_matches
from refmatch.match.advocate_vectors import build_advocate_vectors, fp16_available, vectors_needed
from refmatch.match.eligibility import standing_mask
from tests.conftest import account, advocate, write_csv

WORDS = (
    "warehouse wms dock scanner route fleet invoice ledger payroll audit forecast stock picking "
    "returns customs tariff cold chain batch recall barcode label carrier tender freight portal"
).split()
STAGES = ("onboarding", "adoption", "value", "expansion")
INDUSTRIES = ("Logistics", "Retail", "Food", "Pharma")
PRODUCTS = ("Flow WMS", "Ledger", "Route")

KERNELS = ["float32", pytest.param("fp16", marks=pytest.mark.skipif(not fp16_available(), reason="no FBGEMM"))]


def _need(rnd):
    return " ".join(rnd.sample(WORDS, 3))


@pytest.fixture
def crowd(tmp_path, service):
    """60 advocates and 8 seekers with random stages, sizes, industries, products and needs (seeded)."""
    rnd = random.Random(11)
    accounts, needs, advocates = [], [], []
    for i in range(60):
        ext = f"A{i}"
        accounts.append(
            account(
                ext,
                stage=rnd.choice(STAGES),
                industry=rnd.choice(INDUSTRIES),
                employees=rnd.randint(20, 20000),
                region=rnd.choice(["EMEA", "NA"]),
                products=rnd.sample(PRODUCTS, rnd.randint(1, 2)),
                health=rnd.choice([90, 80, 30]),
                profile=f"{ext} " + " ".join(rnd.sample(WORDS, 6)),
            )
        )
        for _ in range(rnd.randint(0, 3)):
            needs.append({"account_external_id": ext, "need": _need(rnd), "status": "met"})
        needs.append({"account_external_id": ext, "need": _need(rnd), "status": "open"})
        consent = "false" if i % 9 == 0 else "true"
        advocates.append(advocate(ext, consent=consent, capacity_per_quarter=rnd.randint(1, 4)))
    for i in range(8):
        ext = f"S{i}"
        accounts.append(
            account(
                ext,
                stage=rnd.choice(["prospect", "onboarding", "adoption"]),
                industry=rnd.choice(INDUSTRIES),
                employees=rnd.randint(20, 20000),
                products=rnd.sample(PRODUCTS, rnd.randint(1, 3)),
                profile=f"{ext} " + " ".join(rnd.sample(WORDS, 6)),
            )
        )
        for _ in range(rnd.randint(1, 3)):
            needs.append({"account_external_id": ext, "need": _need(rnd), "status": "open"})
    service.import_file("accounts", write_csv(tmp_path / "accounts.csv", accounts))
    service.import_file("needs", write_csv(tmp_path / "needs.csv", needs))
    service.import_file("advocates", write_csv(tmp_path / "advocates.csv", advocates))
    service.build_indexes()
    return service


def _seeker(svc, external_id):
    """The Seeker match_account would build (via a match that records it)."""
    return svc.match_account(external_id, k=1).seeker


def _ranked(matches):
    return [(m.external_id, round(m.score, 6)) for m in matches]


def test_holds_every_standing_advocate_latest_stage_first_with_its_met_needs(crowd):
    catalog, indexes, _ = crowd._loaded()
    store = build_advocate_vectors(catalog, indexes.profiles, indexes.needs, kernel="float32")
    standing = np.flatnonzero(standing_mask(catalog))
    assert sorted(store.rows.tolist()) == standing.tolist()
    ranks = catalog.stage_rank[store.rows]
    assert (np.diff(ranks) <= 0).all(), "latest stage first"
    assert len(store.blocks) == len(set(ranks.tolist()))  # one block per stage
    for i, row in enumerate(store.rows):
        held = store.need_ids[store.need_start[i] : store.need_start[i + 1]]
        assert held.tolist() == catalog.met_needs_of(int(row)).tolist()
    assert store.size == vectors_needed(catalog) == len(store.rows) + len(store.need_ids)


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("purpose", ["reference", "mentor", "retention"])
def test_a_small_pool_still_finds_the_brute_force_best(crowd, kernel, purpose):
    catalog, indexes, _ = crowd._loaded()
    store = build_advocate_vectors(catalog, indexes.profiles, indexes.needs, kernel=kernel)
    small = crowd.settings.replace(candidates=1, diversity=0.0)  # pool = 3k
    everyone = crowd.settings.replace(candidates=1000, diversity=0.0)  # searches return every eligible one
    rules = crowd._rules(purpose, None, None)
    for i in range(8):
        seeker = _seeker(crowd, f"S{i}")
        brute, eligible = find_matches(catalog, indexes, seeker, rules, everyone, 3)
        packed, eligible_too = find_matches(catalog, indexes, seeker, rules, small, 3, store)
        assert eligible_too == eligible
        assert _ranked(packed) == _ranked(brute), f"S{i}"
        assert [m.reasons for m in packed] == [m.reasons for m in brute]


def test_searches_with_the_same_small_pool_miss_some_of_them(crowd):
    """Why the vectors are held: top-n searches by one similarity miss advocates that win on the whole score
    (shown on the embedding components alone: the lexical one only adds to what the searches cannot see)."""
    catalog, indexes, _ = crowd._loaded()
    small = crowd.settings.replace(candidates=1, diversity=0.0, w_lexical=0.0)
    everyone = crowd.settings.replace(candidates=1000, diversity=0.0, w_lexical=0.0)
    rules = crowd._rules("reference", None, None)
    missed = 0
    for i in range(8):
        seeker = _seeker(crowd, f"S{i}")
        brute, _ = find_matches(catalog, indexes, seeker, rules, everyone, 3)
        searched, _ = find_matches(catalog, indexes, seeker, rules, small, 3)
        missed += _ranked(searched) != _ranked(brute)
    assert missed > 0


def test_fp16_similarities_are_within_a_thousandth(crowd):
    if not fp16_available():
        pytest.skip("no FBGEMM")
    catalog, indexes, _ = crowd._loaded()
    exact = build_advocate_vectors(catalog, indexes.profiles, indexes.needs, kernel="float32")
    half = build_advocate_vectors(catalog, indexes.profiles, indexes.needs, kernel="fp16")
    assert half.kernel == "fp16" and half.nbytes * 2 == exact.nbytes
    queries = np.random.default_rng(0).standard_normal((3, indexes.profiles.dim)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    for a, b in zip(exact.blocks, half.blocks):
        np.testing.assert_allclose(b.profiles(queries), a.profiles(queries), atol=1e-3)
        if a.needs is not None:
            np.testing.assert_allclose(b.needs(queries), a.needs(queries), atol=1e-3)


def test_service_builds_once_per_catalog_and_falls_back_above_the_limit(crowd, tmp_path):
    catalog, indexes, _ = crowd._loaded()
    store = crowd.advocate_vectors(catalog, indexes)
    assert store is not None and crowd.advocate_vectors(catalog, indexes) is store

    more = [{"account_external_id": "A1", "need": "customs tariff portal", "status": "met"}]
    crowd.import_file("needs", write_csv(tmp_path / "more.csv", more))
    crowd.build_indexes()
    catalog2, indexes2, _ = crowd._loaded()
    assert catalog2 is not catalog
    assert crowd.advocate_vectors(catalog2, indexes2) is not store
    packed = [_ranked(crowd.match_account(f"S{i}", k=3).matches) for i in range(8)]

    crowd.settings = crowd.settings.replace(advocate_vectors_max=0)
    crowd._advocates = None
    assert crowd.advocate_vectors(catalog2, indexes2) is None
    # 60 candidates per search cover this crowd: the searches find what the packed vectors found
    assert [_ranked(crowd.match_account(f"S{i}", k=3).matches) for i in range(8)] == packed


def test_unhealthy_advocates_are_left_out_and_laxer_rules_do_not_use_the_vectors(crowd):
    from dataclasses import replace

    catalog, indexes, _ = crowd._loaded()
    store = build_advocate_vectors(catalog, indexes.profiles, indexes.needs, kernel="float32", min_health=60)
    unhealthy = set(np.flatnonzero(catalog.health < 60).tolist())
    assert len(store.rows) and not set(store.rows.tolist()) & unhealthy

    everyone = crowd.settings.replace(candidates=1000, diversity=0.0)
    lax = replace(crowd._rules("reference", None, None), min_health=20)  # the 30s are eligible now
    shown_unhealthy = 0
    for i in range(8):
        seeker = _seeker(crowd, f"S{i}")
        brute, _ = find_matches(catalog, indexes, seeker, lax, everyone, 3)
        packed, _ = find_matches(catalog, indexes, seeker, lax, everyone, 3, store)
        assert _ranked(packed) == _ranked(brute)
        shown_unhealthy += sum(catalog.row_by_external(m.external_id) in unhealthy for m in packed)
    assert shown_unhealthy > 0
