"""A database that cannot be written, a full disk, an index or export that cannot be saved: one
``Error:`` line with the cause (never a traceback, never "cannot rollback"), nothing half-written,
and over HTTP a 503 that says so (never a 500).

SQLite's own errors are real here: ``PRAGMA query_only`` makes SQLite answer SQLITE_READONLY
exactly as for a read-only file (which root, who runs these tests, cannot make), and
``PRAGMA max_page_count`` makes it answer SQLITE_FULL as on a full disk.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import refmatch.app.service
import refmatch.web.state
from refmatch.cli import cli
from refmatch.store import data_version
from tests import web_support
from tests.conftest import account, write_csv
from tests.web_support import PASSWORD, page_csrf

app = web_support.app
cheap_hashes = web_support.cheap_hashes
client = web_support.client
tokens = web_support.tokens


def read_only(monkeypatch):
    """Every database the app (CLI or server) opens from now on refuses writes as a read-only file does."""
    real = refmatch.app.service.open_db

    def opened(path, **kwargs):
        db = real(path, **kwargs)
        db.conn.execute("PRAGMA query_only = ON")
        return db

    monkeypatch.setattr(refmatch.app.service, "open_db", opened)
    monkeypatch.setattr(refmatch.web.state, "open_db", opened)


def disk_full_after(monkeypatch, pages: int):
    """Every database the app opens from now on may grow by ``pages`` pages, then the 'disk' is full."""
    real = refmatch.app.service.open_db

    def opened(path, **kwargs):
        db = real(path, **kwargs)
        count = db.conn.execute("PRAGMA page_count").fetchone()[0]
        db.conn.execute(f"PRAGMA max_page_count = {count + pages}")
        return db

    monkeypatch.setattr(refmatch.app.service, "open_db", opened)


@pytest.fixture
def cli_on(world):
    def invoke(*args, **kwargs):
        base = ["--db", str(world.settings.db_path), "--index-dir", str(world.settings.index_path)]
        return CliRunner().invoke(cli, [*args, *base], obj={"encoder": world.encoder}, **kwargs)

    return invoke


def one_error_line(out, *expected: str) -> str:
    assert out.exit_code == 1, (out.exit_code, out.output)
    assert "Traceback" not in out.output and out.exception is None or isinstance(out.exception, SystemExit)
    lines = out.output.strip().splitlines()
    assert lines[-1].startswith("Error: "), out.output
    for text in expected:
        assert text in lines[-1], lines[-1]
    return lines[-1]


def test_write_commands_on_a_read_only_database(world, cli_on, monkeypatch, tmp_path):
    accounts = write_csv(tmp_path / "accounts.csv", [account("N1", stage="prospect")])
    assert cli_on("user", "add", "nobody", "--role", "cs", "--password-stdin", input="long enough\n").exit_code == 0
    before = data_version(world.db)
    read_only(monkeypatch)
    commands = [
        ("import", "accounts", str(accounts)),
        ("user", "add", "alice", "--role", "sales", "--password-stdin"),
        ("token", "create", "nobody", "--name", "ci"),
        ("risk", "update"),
        ("user", "sign-out", "nobody"),
    ]
    for command in commands:
        out = cli_on(*command, input="long enough\n")
        line = one_error_line(out, "is read-only: nothing can be written", str(world.settings.db_path))
        assert "nothing was changed" in line
    monkeypatch.undo()
    assert data_version(world.db) == before


def test_a_full_disk_during_import_names_the_cause_and_writes_nothing(world, cli_on, monkeypatch, tmp_path):
    rows = [account(f"N{i}", stage="prospect", profile="p" * 2000) for i in range(400)]
    accounts = write_csv(tmp_path / "accounts.csv", rows)
    before = world.db.conn.execute("SELECT COUNT(*) FROM accounts").fetchone()[0]
    disk_full_after(monkeypatch, pages=20)
    out = cli_on("import", "accounts", str(accounts))
    line = one_error_line(out, "could not be written: the disk is full")
    assert "rollback" not in line
    monkeypatch.undo()
    assert world.db.conn.execute("SELECT COUNT(*) FROM accounts").fetchone()[0] == before


def test_an_index_that_cannot_be_written_leaves_the_one_in_use(world, cli_on, monkeypatch, tmp_path):
    import faiss

    index_dir = world.settings.index_path
    files = {p.name: p.read_bytes() for p in index_dir.iterdir() if p.is_file()}
    accounts = write_csv(tmp_path / "accounts.csv", [account("N1", stage="prospect", profile="new text")])
    assert cli_on("import", "accounts", str(accounts)).exit_code == 0

    def full(_index, path):  # what FAISS raises when the disk fills up under it
        with open(path, "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError(
            "Error in void faiss::FileIOWriter::operator()(...) at faiss/impl/io.cpp:98: "
            "Error: 'ret == nitems' failed: write error: No space left on device"
        )

    monkeypatch.setattr(faiss, "write_index", full)
    out = cli_on("index", "build")
    one_error_line(out, "could not write the profiles index in", "No space left on device", "unchanged")
    assert {p.name: p.read_bytes() for p in index_dir.iterdir() if p.is_file()} == files  # no .tmp left either


def test_an_export_that_cannot_be_written_is_refused_before_the_run(world, cli_on, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    runs_before = world.db.conn.execute("SELECT COUNT(*) FROM batch_runs").fetchone()[0]
    out = cli_on("batch", "--out", str(blocker / "sub" / "out.csv"), "-q")
    assert out.exit_code == 2 and "Traceback" not in out.output, out.output
    assert f"Error: out: cannot make the folder {blocker / 'sub'}: {blocker} is a file" in out.output
    assert world.db.conn.execute("SELECT COUNT(*) FROM batch_runs").fetchone()[0] == runs_before


def test_an_export_failing_at_the_end_is_one_error_line(world, cli_on, tmp_path, monkeypatch):
    import refmatch.batch.exports

    def full(*_args, **_kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "out.csv"))

    monkeypatch.setattr(refmatch.batch.job, "write_export", full)
    out = cli_on("batch", "--out", str(tmp_path / "out.csv"), "-q")
    one_error_line(out, f"cannot write or read {tmp_path / 'out.csv'}: No space left on device")
    assert refmatch.batch.exports  # the real writer is untouched


def test_the_server_on_a_read_only_database_answers_503_not_500(world, monkeypatch):
    from refmatch.app import users

    for username, role in web_support.ROLE_USERS.items():
        users.add_user(world, username, PASSWORD, role)
    token, _ = users.create_token(world, "manager", "t")  # made while the database could be written
    headers = {"Authorization": f"Bearer {token}"}
    read_only(monkeypatch)
    flask_app = web_support.make_app(world)
    browser = flask_app.test_client()
    page = browser.get("/login").get_data(as_text=True)
    signed = browser.post("/login", data={"username": "sales", "password": "wrong", "csrf_token": page_csrf(page)})
    assert signed.status_code == 503, signed.status_code
    assert "is read-only: nothing can be written" in signed.get_data(as_text=True)
    api = flask_app.test_client()
    response = api.post("/api/v1/requests", headers=headers, json={"advocate_external_id": "A1"})
    assert response.status_code == 503, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == "storage_unavailable" and "read-only" in error["message"]
    assert api.get("/api/v1/accounts", headers=headers).status_code == 200  # reads still work
    flask_app.extensions["refmatch"].service.close()
