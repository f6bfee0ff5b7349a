"""The background indexer: rounds that make new text proposable batch by batch, and survive being killed."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from refmatch.app import indexer
from refmatch.app.service import Service
from refmatch.embed.fake import FakeEncoder
from refmatch.index import files as index_files
from tests.conftest import account, advocate, write_csv
from tests.e2e_demo import wait_for

WAREHOUSE = "consolidate regional warehouses onto one wms"


def names(result):
    return [m.external_id for m in result.matches]


def add_advocates(svc, tmp_path, count):
    ids = [f"B{i}" for i in range(count)]
    svc.import_file("accounts", write_csv(tmp_path / "b.csv", [account(e, profile=f"{e} ships pallets") for e in ids]))
    needs = [{"account_external_id": e, "need": WAREHOUSE, "status": "met"} for e in ids]
    svc.import_file("needs", write_csv(tmp_path / "bn.csv", needs))
    svc.import_file("advocates", write_csv(tmp_path / "bv.csv", [advocate(e) for e in ids]))
    return ids


def test_rounds_make_new_advocates_proposable_batch_by_batch(world, tmp_path):
    add_advocates(world, tmp_path, 5)
    proposable = []
    while (done := indexer.run_round(world, batch=2)) is not None:
        shown = {m for m in names(world.match_account("P1", k=20)) if m.startswith("B")}
        proposable.append(len(shown))
        assert done.remaining == sum(world.index_lag()[n].pending for n in ("profiles", "needs"))
    assert proposable == [2, 4, 5]  # two per round, each round served at once
    assert world.verify_indexes() == []  # the same indexes as one full build: every vector right
    assert indexer.run_round(world, batch=2) is None  # nothing pending: no rewrite of the files


def test_a_round_killed_mid_save_loses_only_that_round(world, tmp_path, monkeypatch):
    add_advocates(world, tmp_path, 4)
    indexer.run_round(world, batch=2)
    real_replace = index_files.os.replace

    def killed(src, dst):  # the process dies after writing the new file, before renaming it
        raise SystemExit("killed")

    monkeypatch.setattr(index_files.os, "replace", killed)
    with pytest.raises(SystemExit):
        indexer.run_round(world, batch=2)
    monkeypatch.undo()
    assert index_files.os.replace is real_replace
    # kill -9 runs no cleanup: what a killed save leaves behind beside the good pair
    (world.settings.index_path / ".profiles.faiss.k9x.tmp").write_bytes(b"IxM2 torn")
    restarted = Service(world.settings, encoder=FakeEncoder())  # started again
    while indexer.run_round(restarted, batch=2) is not None:
        pass
    assert not any(restarted.settings.index_path.glob(".*.tmp"))  # cleaned under the build lock
    assert restarted.verify_indexes() == []
    assert {m for m in names(restarted.match_account("P1", k=20)) if m.startswith("B")} == {"B0", "B1", "B2", "B3"}
    restarted.close()


def test_watch_indexes_what_changes_until_stopped(world, tmp_path):
    lines: list[str] = []
    stop = threading.Event()
    watcher = Service(world.settings, encoder=FakeEncoder())  # the indexer's own connection
    thread = threading.Thread(
        target=indexer.watch,
        args=(watcher,),
        kwargs={"batch": 3, "interval": 0.05, "stop": stop.is_set, "log": lines.append},
    )
    thread.start()
    try:
        add_advocates(world, tmp_path, 4)
        wait_for(lambda: indexer.pending(world) == 0, 120, "the watcher to index the new text", 0.05)
    finally:
        stop.set()
        thread.join(timeout=10)
    watcher.close()
    assert not thread.is_alive()
    assert lines and all(line.startswith("indexed in ") for line in lines)
    assert "B3" in names(world.match_account("P1", k=20))
    assert np.isin(["B0", "B1"], names(world.match_account("P1", k=20))).all()
