"""Always-on matching: a data change never takes matching down, and eligibility is never stale.

Matching answers from the index snapshot as last built; text new or changed since waits for
the next build (its accounts are not proposed meanwhile), a seeker's own new text is embedded
on the spot, and everything that needs no embedding applies to the very next match.
"""

from __future__ import annotations

from click.testing import CliRunner

from refmatch.app.service import Service
from refmatch.cli import cli
from refmatch.embed.fake import FakeEncoder
from refmatch.store import transaction
from tests.conftest import account, advocate, write_csv

WAREHOUSE = "consolidate regional warehouses onto one wms"


def names(result):
    return [m.external_id for m in result.matches]


def test_consent_withdrawn_applies_at_once_while_text_waits(world, tmp_path):
    world.import_file("accounts", write_csv(tmp_path / "n.csv", [account("N1", profile="new words, not indexed")]))
    assert world.index_lag()["profiles"].pending == 1
    assert names(world.match_account("P1", k=10))[0] == "A1"
    world.import_file("advocates", write_csv(tmp_path / "v.csv", [advocate("A1", consent="false")]))
    assert "A1" not in names(world.match_account("P1", k=10))  # the next match, no build in between


def test_a_new_prospect_gets_matches_right_after_import(world, tmp_path):
    world.import_file("accounts", write_csv(tmp_path / "p.csv", [account("P2", stage="prospect")]))
    world.import_file(
        "needs", write_csv(tmp_path / "n.csv", [{"account_external_id": "P2", "need": WAREHOUSE, "status": "open"}])
    )
    assert world.index_lag()["profiles"].pending == 1 and world.index_lag()["needs"].pending == 1
    result = world.match_account("P2", k=10)
    assert result.seeker.need_texts == [WAREHOUSE]
    # the seeker's new need was embedded now: those who met it come first (A8 too, which P1 excludes)
    assert sorted(names(result)[:2]) == ["A1", "A8"]
    assert result.matches[0].components["need_coverage"] > 0.9


def test_a_new_advocate_is_proposed_after_a_build_in_another_process_without_a_restart(world, tmp_path):
    assert "B1" not in names(world.match_account("P1", k=10))
    world.import_file("accounts", write_csv(tmp_path / "b.csv", [account("B1")]))
    world.import_file(
        "needs", write_csv(tmp_path / "bn.csv", [{"account_external_id": "B1", "need": WAREHOUSE, "status": "met"}])
    )
    world.import_file("advocates", write_csv(tmp_path / "bv.csv", [advocate("B1")]))
    assert "B1" not in names(world.match_account("P1", k=10))  # its text is not in the snapshot yet
    builder = Service(world.settings, encoder=FakeEncoder())  # the indexer: another process, say
    builder.build_indexes()
    builder.close()
    assert "B1" in names(world.match_account("P1", k=10))  # files swapped in, same serving Service
    assert world.index_lag()["profiles"].pending == 0


def test_an_advocate_whose_met_need_changed_waits_for_the_build(world):
    """Its snapshot vector is of the old text: scoring it would explain a match with text it lacks."""
    assert "A2" in names(world.match_account("P1", k=10))
    with transaction(world.db) as conn:
        conn.execute(
            "UPDATE needs SET text = 'a single sign-on portal for our staff' WHERE account_id = "
            "(SELECT id FROM accounts WHERE external_id = 'A2')"
        )
    assert "A2" not in names(world.match_account("P1", k=10))
    world.build_indexes()
    assert "A2" in names(world.match_account("P1", k=10))


def test_cli_match_answers_from_the_snapshot_and_says_so_or_refuses_with_strict(world, tmp_path):
    world.import_file("accounts", write_csv(tmp_path / "n.csv", [account("N1", profile="new words")]))
    world.close()
    base = ["--db", world.settings.db, "--index-dir", world.settings.index_dir]

    def run(*args):
        return CliRunner().invoke(cli, [*args, *base], obj={"encoder": FakeEncoder()}, catch_exceptions=False)

    answered = run("match", "P1", "-k", "3")
    assert answered.exit_code == 0 and "1. Company A1 (A1)" in answered.stdout
    assert "note: 1 texts changed since the last index build are not indexed yet" in answered.stderr
    strict = run("match", "P1", "--strict")
    assert strict.exit_code == 2
    assert "Error: the indexes are behind the database (profiles: 1 new or changed" in strict.stderr
    assert run("index", "status").exit_code == 1  # status still says exactly what is stale


def test_a_server_loads_replaced_index_files_in_the_background(world, tmp_path, monkeypatch):
    """No request waits for a reload: the held snapshot serves until the loader thread has the new one ready
    (indexes, lags, the catalog lagged for them and the advocate vectors), and the next request takes it."""
    import threading
    import time

    from refmatch.web.state import SharedService

    server = SharedService(world.settings, encoder=FakeEncoder())
    assert "B1" not in names(server.match_account("P1", k=10))
    world.import_file("accounts", write_csv(tmp_path / "b.csv", [account("B1")]))
    world.import_file(
        "needs", write_csv(tmp_path / "bn.csv", [{"account_external_id": "B1", "need": WAREHOUSE, "status": "met"}])
    )
    world.import_file("advocates", write_csv(tmp_path / "bv.csv", [advocate("B1")]))
    loading = threading.Event()  # holds the loader back until the request has been answered
    real = server._load_files

    def slow_load():
        if threading.current_thread() is not threading.main_thread():
            loading.wait(30)
        return real()

    monkeypatch.setattr(server, "_load_files", slow_load)
    assert "B1" not in names(server.match_account("P1", k=10))  # its text waits; held snapshot loaded
    builder = Service(world.settings, encoder=FakeEncoder())  # the indexer: another process
    builder.build_indexes()
    builder.close()

    # the files were replaced: this request is answered from the held snapshot, not after a reload
    assert "B1" not in names(server.match_account("P1", k=10))
    world.import_file("advocates", write_csv(tmp_path / "w.csv", [advocate("A1", consent="false")]))
    assert "A1" not in names(server.match_account("P1", k=10))  # eligibility still applies at once
    loading.set()
    deadline = time.monotonic() + 30
    while server._prepared is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server._prepared is not None and not isinstance(server._prepared, Exception), server._prepared
    found = names(server.match_account("P1", k=10))
    assert "B1" in found and "A1" not in found  # the new snapshot, with today's eligibility
    assert server.index_lag()["profiles"].pending == 0
    server.close()
