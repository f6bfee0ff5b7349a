import sqlite3

import pytest

from refmatch.domain.errors import InvalidInput
from refmatch.store import data_version, open_db
from refmatch.store.db import MIGRATIONS, schema_version
from refmatch.store.repo import size_band
from tests.conftest import account, write_csv


def test_open_applies_migrations_wal_and_foreign_keys(tmp_path):
    db = open_db(tmp_path / "x.db")
    assert schema_version(db.conn) == len(MIGRATIONS)
    assert db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    with pytest.raises(sqlite3.IntegrityError):
        db.conn.execute(
            "INSERT INTO needs (account_id, text, text_key, status, updated_at) VALUES (99, 'x', 'x', 'open', 'now')"
        )
    db.conn.close()
    # reopening is a no-op
    again = open_db(tmp_path / "x.db")
    assert schema_version(again.conn) == len(MIGRATIONS)


def test_upsert_counts_and_stage_history(service, tmp_path):
    first = service.import_file("accounts", write_csv(tmp_path / "a.csv", [account("A"), account("B")]))
    assert (first.inserted, first.updated, first.unchanged) == (2, 0, 0)
    again = service.import_file(
        "accounts",
        write_csv(tmp_path / "b.csv", [account("A"), account("B", stage="expansion", stage_since="2025-02-01")]),
    )
    assert (again.inserted, again.updated, again.unchanged) == (0, 1, 1)
    history = service.conn.execute(
        "SELECT stage_history.stage, entered_on FROM stage_history JOIN accounts ON accounts.id = account_id "
        "WHERE external_id = 'B' ORDER BY stage_history.id"
    ).fetchall()
    assert history == [("value", "2024-01-15"), ("expansion", "2025-02-01")]
    assert service.conn.execute("SELECT size_band FROM accounts WHERE external_id = 'A'").fetchone()[0] == "250-999"


def test_needs_upsert_by_account_and_text_ignoring_case(service, tmp_path):
    service.import_file("accounts", write_csv(tmp_path / "a.csv", [account("A")]))
    service.import_file(
        "needs",
        write_csv(tmp_path / "n.csv", [{"account_external_id": "A", "need": "SSO with Azure AD", "status": "open"}]),
    )
    report = service.import_file(
        "needs",
        write_csv(
            tmp_path / "n2.csv",
            [{"account_external_id": "A", "need": "sso  with azure ad", "status": "met", "met_on": "2025-01-01"}],
        ),
    )
    assert (report.inserted, report.updated) == (0, 1)
    assert service.conn.execute("SELECT status, met_on FROM needs").fetchall() == [("met", "2025-01-01")]


def test_bad_file_writes_nothing(service, tmp_path):
    rows = [account("A"), account("B", employees="many")]
    before = data_version(service.db)
    with pytest.raises(InvalidInput) as err:
        service.import_file("accounts", write_csv(tmp_path / "a.csv", rows))
    assert "1 of 2 rows are invalid; nothing was imported" in err.value.message
    assert "row 3, column 'employees'" in err.value.message
    assert service.conn.execute("SELECT count(*) FROM accounts").fetchone()[0] == 0
    assert data_version(service.db) == before


def test_skip_invalid_imports_good_rows_and_writes_rejects(service, tmp_path):
    rows = [account("A"), account("B", stage="legendary")]
    rejects = tmp_path / "rejects.csv"
    report = service.import_file(
        "accounts", write_csv(tmp_path / "a.csv", rows), skip_invalid=True, rejects_path=rejects
    )
    assert (report.inserted, report.rejected) == (1, 1)
    assert "legendary" in rejects.read_text()


def test_dry_run_counts_but_writes_nothing(service, tmp_path):
    report = service.import_file("accounts", write_csv(tmp_path / "a.csv", [account("A")]), dry_run=True)
    assert report.inserted == 1 and report.dry_run
    assert "would import" in report.summary()
    assert service.conn.execute("SELECT count(*) FROM accounts").fetchone()[0] == 0


def test_failure_mid_transaction_rolls_back(service, tmp_path, monkeypatch):
    from refmatch.store import repo

    service.import_file("accounts", write_csv(tmp_path / "a.csv", [account("A")]))
    original = repo._record_stage

    def explode(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(repo, "_record_stage", explode)
    with pytest.raises(RuntimeError):
        service.import_file("accounts", write_csv(tmp_path / "b.csv", [account("B"), account("C")]))
    monkeypatch.setattr(repo, "_record_stage", original)
    assert [r[0] for r in service.conn.execute("SELECT external_id FROM accounts")] == ["A"]


@pytest.mark.parametrize(
    ("employees", "band"), [(None, None), (0, "0"), (5, "1-9"), (49, "10-49"), (250, "250-999"), (10_000, "5000+")]
)
def test_size_band(employees, band):
    assert size_band(employees) == band


def test_starting_afresh_keeps_the_embedding_cache_and_says_what_it_reset(world, tmp_path):
    from refmatch.app import users
    from refmatch.app.service import Service, reset_files
    from refmatch.store import open_db

    users.add_user(world, "alice", "long enough password", "sales")
    cached = world.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
    accounts = world.conn.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
    assert cached > 0
    settings, encoder = world.settings, world.encoder
    world.close()
    said = reset_files(settings)
    assert f"{accounts:,} accounts" in said and "1 users" in said and f"kept {cached:,} cached embeddings" in said
    assert not list(settings.index_path.glob("profiles.*"))
    db = open_db(settings.db_path)
    assert db.conn.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == 0
    assert db.conn.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
    assert db.conn.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0] == cached
    db.conn.close()
    # the same data again: nothing is embedded
    from tests.conftest import build_world

    encoded: list[str] = []

    class Counting:  # the world's encoder, counting what it is asked to embed
        name, dim = encoder.name, encoder.dim

        def encode(self, texts):
            encoded.extend(texts)
            return encoder.encode(texts)

    again = Service(settings, encoder=Counting())
    (tmp_path / "again").mkdir()
    build_world(again, tmp_path / "again")  # imports and builds the indexes
    assert encoded == []
    again.close()
    assert reset_files(settings.replace(db=str(tmp_path / "none.db"))).startswith("new database:")
