import json

import click
import pytest
from click.testing import CliRunner

from refmatch.cli import cli
from refmatch.embed.fake import FakeEncoder
from tests.conftest import account, advocate, write_csv


def all_commands(group=cli, prefix=()):
    for name, command in group.commands.items():
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [p for p, _ in all_commands()], ids=" ".join)
def test_every_command_has_help(path):
    command = dict(all_commands())[path]
    assert command.help and command.help.strip(), f"{' '.join(path)} has no help text"
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    if not isinstance(command, click.Group):
        assert "--db FILE" in result.output and "--index-dir DIR" in result.output


@pytest.fixture
def run(tmp_path):
    encoder = FakeEncoder()
    base = ["--db", str(tmp_path / "r.db"), "--index-dir", str(tmp_path / "idx")]

    def invoke(*args):
        # options go after the subcommand path; click accepts them anywhere after it
        return CliRunner().invoke(cli, [*args, *base], obj={"encoder": encoder}, catch_exceptions=False)

    return invoke


def test_import_build_status_match_flow(run, tmp_path):
    accounts = write_csv(
        tmp_path / "accounts.csv", [account("P1", stage="prospect"), account("A1"), account("A2", stage="expansion")]
    )
    needs = write_csv(
        tmp_path / "needs.csv",
        [
            {"account_external_id": "P1", "need": "sso with azure ad", "status": "open"},
            {"account_external_id": "A1", "need": "sso with azure ad", "status": "met"},
        ],
    )
    advocates = write_csv(tmp_path / "advocates.csv", [advocate("A1"), advocate("A2")])
    out = run("import", "accounts", str(accounts))
    assert out.exit_code == 0, out.output
    assert (
        "accounts: imported 3 rows from" in out.output
        and "3 inserted, 0 updated, 0 unchanged, 0 rejected" in out.output
    )
    assert run("import", "needs", str(needs)).exit_code == 0
    assert run("import", "advocates", str(advocates)).exit_code == 0

    status = run("index", "status")
    assert status.exit_code == 1 and "profiles: missing" in status.output

    built = run("index", "build", "-q")
    assert built.exit_code == 0, built.output
    assert "profiles: rebuilt, 3 vectors (flat); 3 added, 0 removed, 3 embedded" in built.output

    status = run("index", "status")
    assert status.exit_code == 0 and "profiles: up to date (3 vectors, flat" in status.output
    assert run("index", "verify").output.strip() == "indexes verified: every vector matches its text"

    table = run("match", "P1")
    assert table.exit_code == 0
    assert "1. Company A1 (A1)" in table.output and "met 1 of your 1 open needs" in table.output

    data = json.loads(run("match", "P1", "--format", "json", "-k", "1").output)
    assert data["seeker"] == {"external_id": "P1", "name": "Company P1"}
    assert [m["advocate"]["external_id"] for m in data["matches"]] == ["A1"]

    adhoc = json.loads(
        run(
            "match",
            "--text",
            "regional distribution centres",
            "--need",
            "sso with azure ad",
            "--products",
            "Flow WMS",
            "--format",
            "json",
        ).output
    )
    assert adhoc["seeker"]["external_id"] is None and adhoc["matches"][0]["advocate"]["external_id"] == "A1"


def test_errors_are_one_line_with_exit_codes(run, tmp_path):
    bad = write_csv(tmp_path / "accounts.csv", [account("X", health=140)])
    out = run("import", "accounts", str(bad))
    assert out.exit_code == 2
    assert out.output.startswith("Error: ")
    assert "row 2, column 'health'" in out.output

    assert run("import", "accounts", str(write_csv(tmp_path / "ok.csv", [account("X")]))).exit_code == 0
    stale = run("match", "X")
    assert stale.exit_code == 2 and "Error: profiles index" in stale.output and "refmatch index build" in stale.output
    run("index", "build", "-q")
    missing = run("match", "NOPE")
    assert (missing.exit_code, missing.output) == (1, "Error: unknown account: 'NOPE'\n")
    empty = run("match", "--text", "  ")
    assert (empty.exit_code, empty.output) == (2, "Error: text: must not be empty: describe the prospect\n")
    neither = run("match")
    assert neither.exit_code == 2 and "give an EXTERNAL_ID or --text" in neither.output


def test_incremental_build_reembeds_only_changed_text(run, tmp_path):
    rows = [account(f"A{i}", profile=f"profile number {i}") for i in range(5)]
    run("import", "accounts", str(write_csv(tmp_path / "a.csv", rows)))
    assert "5 embedded" in run("index", "build", "-q").output
    rows[2]["profile"] = "a completely new profile"
    run("import", "accounts", str(write_csv(tmp_path / "b.csv", rows)))
    status = run("index", "status")
    assert "profiles: stale: 1 changed" in status.output
    out = run("index", "build", "-q").output
    assert "profiles: updated, 5 vectors (flat); 1 added, 1 removed, 1 embedded" in out


@pytest.mark.parametrize(
    "args", [("match", "X1"), ("index", "status"), ("risk",), ("user", "list"), ("runs", "list"), ("serve",)]
)
def test_a_mistyped_database_is_never_created(tmp_path, args):
    """A typo in --db (or the wrong folder) used to make an empty database and then answer 'unknown account'."""
    missing = tmp_path / "tpyo.db"
    out = CliRunner().invoke(cli, [*args, "--db", str(missing)], obj={"encoder": FakeEncoder()})
    assert out.exit_code == 1
    assert out.output.startswith(f"Error: database not found: {missing} (check --db or REFMATCH_DB")
    assert not missing.exists()


def test_init_import_and_demo_may_create_it(tmp_path):
    created = tmp_path / "new.db"
    assert CliRunner().invoke(cli, ["init", "--db", str(created)]).exit_code == 0
    assert created.exists()
