"""What a write costs the next match: reload only what the write can have changed.

text_version and catalog_version are kept by SQLite triggers (migration 0006): a
request approved touches neither, an account's health touches the catalog only, a
need's text both.
"""

from datetime import date

from refmatch.index.sync import text_version
from refmatch.match.catalog import catalog_version
from refmatch.store import transaction
from tests.conftest import write_csv


def names(result):
    return [m.external_id for m in result.matches]


def _versions(svc):
    return text_version(svc.conn), catalog_version(svc.conn)


def _approve_request_for(svc, external_id):
    today = date.today().isoformat()
    with transaction(svc.db) as conn:
        advocate = conn.execute("SELECT id FROM accounts WHERE external_id = ?", (external_id,)).fetchone()[0]
        conn.execute(
            "INSERT INTO reference_requests (advocate_account_id, purpose, status, created_at, updated_at, "
            "approved_at) VALUES (?, 'reference', 'approved', ?, ?, ?)",
            (advocate, today, today, today),
        )


def test_triggers_bump_each_version_only_for_what_it_covers(world):
    texts, catalog = _versions(world)
    _approve_request_for(world, "A1")
    assert _versions(world) == (texts, catalog)  # requests: neither

    with transaction(world.db) as conn:
        conn.execute("UPDATE accounts SET health = 70 WHERE external_id = 'A2'")
    assert _versions(world) == (texts, catalog + 1)  # not an indexed text

    with transaction(world.db) as conn:
        conn.execute("UPDATE accounts SET profile = 'A2 now sells boats' WHERE external_id = 'A2'")
    assert _versions(world)[0] == texts + 1

    with transaction(world.db) as conn:
        conn.execute("UPDATE accounts SET profile = profile WHERE external_id = 'A2'")  # no change: no bump
        conn.execute("UPDATE needs SET text = 'faster quarter end close' WHERE text = 'faster month end close'")
    assert _versions(world)[0] == texts + 2


def test_a_request_refreshes_slot_counts_and_keeps_indexes_catalog_and_vectors(world):
    catalog, indexes, _ = world._loaded()
    store = world.advocate_vectors(catalog, indexes)
    for _ in range(3):  # A1's capacity is 3 per quarter
        _approve_request_for(world, "A1")

    assert names(world.match_account("P1", k=10)) == ["A2", "A3"]  # A1 is full, seen at once
    catalog2, indexes2, _ = world._loaded()
    assert indexes2 is indexes  # the index files were not read again
    assert indexes.profiles.read_only and indexes.needs.read_only  # memory-mapped, shared by the workers
    assert catalog2 is not catalog and catalog2.base is catalog.base  # slot counts re-read, the rest kept
    assert world.advocate_vectors(catalog2, indexes2) is store
    assert int(catalog2.used_quarter[catalog2.row_by_external("A1")]) == 3

    world._catalog = None  # a full reload agrees
    assert names(world.match_account("P1", k=10)) == ["A2", "A3"]


def test_an_account_change_reloads_the_catalog_but_not_the_indexes(world):
    catalog, indexes, _ = world._loaded()
    with transaction(world.db) as conn:
        conn.execute("UPDATE accounts SET health = 30 WHERE external_id = 'A2'")  # below min_health
    assert "A2" not in names(world.match_account("P1", k=10))
    catalog2, indexes2, _ = world._loaded()
    assert indexes2 is indexes and catalog2.base is not catalog.base


def test_a_changed_text_waits_for_the_build_and_a_rebuild_is_loaded(world, tmp_path):
    _, indexes, _ = world._loaded()
    assert "A3" in names(world.match_account("P1", k=10))
    with transaction(world.db) as conn:
        conn.execute("UPDATE accounts SET profile = 'A3 sells boats now' WHERE external_id = 'A3'")
    assert "A3" not in names(world.match_account("P1", k=10))  # its vector is of text it no longer has
    assert world._loaded()[1] is indexes  # the same snapshot, not reloaded
    world.build_indexes()
    assert "A3" in names(world.match_account("P1", k=10))
    assert world._loaded()[1] is not indexes


def test_index_files_replaced_by_another_process_are_loaded(world, tmp_path, settings, encoder):
    from refmatch.app.service import Service

    _, indexes, _ = world._loaded()
    other = Service(settings, encoder=encoder)  # e.g. the nightly job, or another worker
    try:
        rows = [{"account_external_id": "A3", "need": "customs declarations portal", "status": "met"}]
        other.import_file("needs", write_csv(tmp_path / "more.csv", rows))
        other.build_indexes()
    finally:
        other.close()
    world.match_account("P1")
    assert world._loaded()[1] is not indexes
