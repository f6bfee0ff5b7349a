"""Account search: FTS5 over name, id, industry, products, profile and needs; the product filter."""

from __future__ import annotations

import pytest

from refmatch.app import queries
from refmatch.store import search
from tests.conftest import account, write_csv


def names(svc, **kwargs):
    items, total = queries.list_accounts(svc, **kwargs)
    assert total == len(items)
    return [i["external_id"] for i in items]


@pytest.fixture
def crowd(service, tmp_path):
    accounts = [
        account("W1", name="Westport Freight", profile="Runs cold stores for dairy exporters", products=["Ledger"]),
        account("W2", name="Atlantic Foods", industry="Food", profile="Bakes bread in Cork"),
        account("W3", name="Sodéxo Ireland", industry="Catering", profile="Staff canteens"),
        account("W4", name="Harbour Systems", products=["Flow WMS", "Shield"]),
    ]
    needs = [
        {"account_external_id": "W2", "need": "Track the temperature of chilled stock", "status": "open"},
        {"account_external_id": "W4", "need": "Single sign-on with Azure AD", "status": "met"},
    ]
    service.import_file("accounts", write_csv(tmp_path / "a.csv", accounts))
    service.import_file("needs", write_csv(tmp_path / "n.csv", needs))
    return service


def test_search_reaches_profile_needs_products_and_industry(crowd):
    assert names(crowd, q="dairy") == ["W1"]  # profile
    assert names(crowd, q="temperature chilled") == ["W2"]  # a need: every word must appear
    assert names(crowd, q="azure") == ["W4"]
    assert names(crowd, q="ledger") == ["W1"]  # products
    assert names(crowd, q="catering") == ["W3"]  # industry
    assert names(crowd, q="W4") == ["W4"]  # the external id


def test_words_stem_fold_accents_and_match_as_prefixes(crowd):
    assert names(crowd, q="harb") == ["W4"]  # a prefix
    assert names(crowd, q="store") == ["W1"]  # 'stores' by its stem
    assert names(crowd, q="sodexo") == ["W3"]  # diacritics folded
    assert names(crowd, q="bread london") == []  # every word must appear


def test_own_text_ranks_before_needs_only(crowd, tmp_path):
    crowd.import_file(
        "needs", write_csv(tmp_path / "more.csv", [{"account_external_id": "W1", "need": "bread", "status": "open"}])
    )
    assert names(crowd, q="bread") == ["W2", "W1"]  # W2's profile, then W1's need


@pytest.mark.parametrize("q", ['"', "AND", "NEAR(", "*", "a OR", "-x", "'); DROP TABLE accounts; --"])
def test_no_input_is_a_syntax_error(crowd, q):
    queries.list_accounts(crowd, q=q)
    assert crowd.conn.execute("SELECT count(*) FROM accounts").fetchone()[0] == 4


def test_search_follows_every_write(crowd, tmp_path):
    crowd.import_file("accounts", write_csv(tmp_path / "u.csv", [account("W1", name="Westport Freight", profile="x")]))
    assert names(crowd, q="dairy") == []  # the old profile left the index with the update
    crowd.conn.execute("DELETE FROM needs WHERE text LIKE 'Single sign-on%'")
    assert names(crowd, q="azure") == []


def test_products_filter(crowd):
    assert names(crowd, products="Shield") == ["W4"]
    assert names(crowd, products="ledger; shield") == ["W4", "W1"]  # any of them, ignoring case; by name
    assert sorted(names(crowd, products="Flow WMS")) == ["W2", "W3", "W4"]
    assert names(crowd, products="Ledger", q="dairy") == ["W1"]
    assert (
        "Shield"
        in queries.facets(
            crowd,
        )["products"]
    )


def test_match_expression():
    assert search.match_expression("  ") is None
    assert search.match_expression("IE-ARAMEX") == '"IE"* "ARAMEX"*'
    assert search.match_expression('say "hi"') == '"say"* "hi"*'
