"""refmatch.importing: CSV / JSON Lines -> validated records, every problem reported."""

from __future__ import annotations

import ast
import csv
import json
from pathlib import Path
from typing import Any

import pytest

from refmatch.domain.errors import InvalidInput
from refmatch.importing import (
    KINDS,
    ParseResult,
    RowError,
    parse_file,
    parse_rows,
    write_rejects,
)

ACCOUNT = {"external_id": "A1", "name": "Acme", "stage": "adoption"}
NEED = {"account_external_id": "A1", "need": "SSO with Azure AD", "status": "open"}
ADVOCATE = {"account_external_id": "A1", "consent": "true"}
SIGNAL = {"account_external_id": "A1", "observed_on": "2024-05-01", "kind": "health", "value": "70"}
MINIMAL = {"accounts": ACCOUNT, "needs": NEED, "advocates": ADVOCATE, "signals": SIGNAL}


def write_csv(path: Path, rows: list[dict[str, Any]], header: list[str] | None = None) -> Path:
    header = header or list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, restval="")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def errors_of(result: ParseResult) -> list[tuple[int, str | None, str]]:
    return [(e.row, e.column, e.message) for e in result.errors]


def one_error(kind: str, row: dict[str, Any], tmp_path: Path, **options: Any) -> tuple[str | None, str]:
    result = parse_file(write_csv(tmp_path / f"{kind}.csv", [row]), kind, **options)
    assert result.records == []
    assert len(result.errors) == 1, result.errors
    assert result.errors[0].row == 2
    return result.errors[0].column, result.errors[0].message


# -- valid rows, normalised


def test_accounts_csv_is_normalised(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text(
        "external_id,name,industry,employees,country,region,products,stage,stage_since,health,arr,"
        "renewal_date,owner,profile,do_not_match\n"
        " A1 , Acme Logistics ,logistics,1200,DE,EMEA,WMS; TMS;;WMS,Value,2023-02-01,81.5,250000,"
        '2025-01-31,ann@example.com,"Six warehouses, one WMS.",B7;C9\n'
        "A2,Beta,,,,,,prospect,,,,,,,\n",
        encoding="utf-8",
    )
    result = parse_file(path, "accounts")
    assert result.errors == [] and result.rejected_rows == []
    assert result.rows_read == 2
    assert result.records == [
        {
            "external_id": "A1",
            "name": "Acme Logistics",
            "industry": "logistics",
            "employees": 1200,
            "country": "DE",
            "region": "EMEA",
            "products": ["WMS", "TMS"],
            "stage": "value",
            "stage_since": "2023-02-01",
            "health": 81.5,
            "arr": 250000.0,
            "renewal_date": "2025-01-31",
            "owner": "ann@example.com",
            "profile": "Six warehouses, one WMS.",
            "do_not_match": ["B7", "C9"],
            "_row": 2,
        },
        {
            "external_id": "A2",
            "name": "Beta",
            "industry": None,
            "employees": None,
            "country": None,
            "region": None,
            "products": [],
            "stage": "prospect",
            "stage_since": None,
            "health": None,
            "arr": None,
            "renewal_date": None,
            "owner": None,
            "profile": None,
            "do_not_match": [],
            "_row": 3,
        },
    ]


def test_needs_advocates_signals_shapes(tmp_path: Path) -> None:
    needs = parse_file(
        write_csv(tmp_path / "needs.csv", [{**NEED, "status": "met", "met_on": "2024-03-01", "product": "WMS"}]),
        "needs",
    )
    assert needs.records == [
        {
            "account_external_id": "A1",
            "need": "SSO with Azure AD",
            "status": "met",
            "met_on": "2024-03-01",
            "product": "WMS",
            "_row": 2,
        }
    ]
    advocates = parse_file(
        write_csv(
            tmp_path / "advocates.csv",
            [
                {
                    **ADVOCATE,
                    "reference_types": "call;Site_Visit;call",
                    "capacity_per_quarter": "3",
                    "contact_name": "Ann",
                    "contact_title": "CIO",
                    "contact_email": "ann@example.com",
                    "blackout_until": "2024-12-31",
                    "topics": "SSO",
                }
            ],
        ),
        "advocates",
    )
    assert advocates.records == [
        {
            "account_external_id": "A1",
            "consent": True,
            "reference_types": ["call", "site_visit"],
            "capacity_per_quarter": 3,
            "contact_name": "Ann",
            "contact_title": "CIO",
            "contact_email": "ann@example.com",
            "blackout_until": "2024-12-31",
            "topics": "SSO",
            "_row": 2,
        }
    ]
    signals = parse_file(write_csv(tmp_path / "signals.csv", [SIGNAL]), "signals")
    assert signals.records == [
        {"account_external_id": "A1", "observed_on": "2024-05-01", "kind": "health", "value": 70.0, "_row": 2}
    ]


FULL = {
    "accounts": [
        {
            "external_id": "A1",
            "name": "Acme",
            "industry": "logistics",
            "employees": "50",
            "country": "DE",
            "region": "EMEA",
            "products": "WMS;TMS",
            "stage": "value",
            "stage_since": "2023-01-01",
            "health": "90",
            "arr": "1000.5",
            "renewal_date": "2025-01-01",
            "owner": "o@x.io",
            "profile": "p",
            "do_not_match": "B1",
        },
        {"external_id": "B1", "name": "Beta", "stage": "prospect"},
    ],
    "needs": [NEED, {**NEED, "need": "WMS", "status": "met", "met_on": "2024-01-01", "product": "WMS"}],
    "advocates": [{**ADVOCATE, "reference_types": "call;logo", "capacity_per_quarter": "2"}],
    "signals": [SIGNAL, {**SIGNAL, "kind": "champion_left", "value": "true"}],
    "churn": [{"account_external_id": "A1", "churned_on": "2025-06-30", "reason": "budget cut"}],
}
LISTS = {"products", "do_not_match", "reference_types"}


def as_json(row: dict[str, str]) -> dict[str, Any]:
    """The same row as a JSON Lines writer would produce it: typed values, arrays for lists."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key in LISTS:
            out[key] = value.split(";")
        elif key in {"employees", "capacity_per_quarter"}:
            out[key] = int(value)
        elif key in {"health", "arr", "value"} and value != "true":
            out[key] = float(value)
        elif key == "consent" or value == "true":
            out[key] = value == "true"
        else:
            out[key] = value
    return out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("suffix", [".jsonl", ".ndjson"])
def test_csv_and_jsonl_give_the_same_records(kind: str, suffix: str, tmp_path: Path) -> None:
    from_csv = parse_file(write_csv(tmp_path / f"{kind}.csv", FULL[kind]), kind)
    from_jsonl = parse_file(write_jsonl(tmp_path / f"{kind}{suffix}", [as_json(r) for r in FULL[kind]]), kind)
    # the JSONL file has no empty cells: records match once the CSV's blanks are "not known"
    assert from_csv.errors == [] and from_jsonl.errors == []
    assert [{**r, "_row": 0} for r in from_jsonl.records] == [{**r, "_row": 0} for r in from_csv.records]
    assert [r["_row"] for r in from_csv.records] == [2, 3][: len(FULL[kind])]
    assert [r["_row"] for r in from_jsonl.records] == [1, 2][: len(FULL[kind])]


def test_jsonl_strings_are_accepted_for_every_type(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{**ACCOUNT, "employees": "12", "health": "5", "products": "x; y"}])
    [record] = parse_file(path, "accounts").records
    assert (record["employees"], record["health"], record["products"]) == (12, 5.0, ["x", "y"])


# -- lists


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("WMS", ["WMS"]),
        (" WMS ; TMS ", ["WMS", "TMS"]),
        ("WMS;;TMS;", ["WMS", "TMS"]),
        ("b;a;b;a", ["b", "a"]),
        (" ; ", []),
        ("", []),
    ],
)
def test_csv_lists(cell: str, expected: list[str], tmp_path: Path) -> None:
    [record] = parse_file(write_csv(tmp_path / "a.csv", [{**ACCOUNT, "products": cell}]), "accounts").records
    assert record["products"] == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["WMS", " TMS ", "", "WMS"], ["WMS", "TMS"]),
        ([], []),
        ("WMS; TMS", ["WMS", "TMS"]),
        (None, []),
    ],
)
def test_jsonl_lists(value: Any, expected: list[str], tmp_path: Path) -> None:
    [record] = parse_file(write_jsonl(tmp_path / "a.jsonl", [{**ACCOUNT, "products": value}]), "accounts").records
    assert record["products"] == expected


def test_jsonl_list_of_non_strings_is_an_error(tmp_path: Path) -> None:
    result = parse_file(write_jsonl(tmp_path / "a.jsonl", [{**ACCOUNT, "products": ["WMS", 3]}]), "accounts")
    assert errors_of(result) == [(1, "products", "must be a list of strings, got ['WMS', 3]")]


# -- bad rows: one problem each, exact message

BAD_ROWS = [
    ("accounts", {**ACCOUNT, "name": "  "}, "name", "a value is required"),
    ("accounts", {**ACCOUNT, "employees": "many"}, "employees", "must be an integer >= 0, got 'many'"),
    ("accounts", {**ACCOUNT, "employees": "-1"}, "employees", "must be an integer >= 0, got '-1'"),
    ("accounts", {**ACCOUNT, "employees": "1.5"}, "employees", "must be an integer >= 0, got '1.5'"),
    ("accounts", {**ACCOUNT, "health": "101"}, "health", "must be a number between 0 and 100, got '101'"),
    ("accounts", {**ACCOUNT, "health": "good"}, "health", "must be a number between 0 and 100, got 'good'"),
    ("accounts", {**ACCOUNT, "health": "nan"}, "health", "must be a number between 0 and 100, got 'nan'"),
    ("accounts", {**ACCOUNT, "arr": "-5"}, "arr", "must be a number >= 0, got '-5'"),
    ("accounts", {**ACCOUNT, "arr": "1_000"}, "arr", "must be a number >= 0, got '1_000'"),
    (
        "accounts",
        {**ACCOUNT, "stage": "lead"},
        "stage",
        "unknown stage 'lead' (allowed: prospect, onboarding, adoption, value, expansion)",
    ),
    (
        "accounts",
        {**ACCOUNT, "stage_since": "2024-13-01"},
        "stage_since",
        "not a valid date (expected YYYY-MM-DD): '2024-13-01'",
    ),
    (
        "accounts",
        {**ACCOUNT, "renewal_date": "2024-1-5"},
        "renewal_date",
        "not a valid date (expected YYYY-MM-DD): '2024-1-5'",
    ),
    (
        "accounts",
        {**ACCOUNT, "renewal_date": "20240105"},
        "renewal_date",
        "not a valid date (expected YYYY-MM-DD): '20240105'",
    ),
    (
        "accounts",
        {**ACCOUNT, "renewal_date": "2023-02-29"},
        "renewal_date",
        "not a valid date (expected YYYY-MM-DD): '2023-02-29'",
    ),
    (
        "accounts",
        {**ACCOUNT, "do_not_match": "B1;A1"},
        "do_not_match",
        "must not contain the account's own external_id 'A1'",
    ),
    ("accounts", {**ACCOUNT, "profile": "x" * 10_001}, "profile", "too long: 10,001 characters (max 10,000)"),
    ("needs", {**NEED, "need": ""}, "need", "a value is required"),
    ("needs", {**NEED, "status": "done"}, "status", "unknown status 'done' (allowed: open, in_progress, met)"),
    (
        "needs",
        {**NEED, "status": "open", "met_on": "2024-01-01"},
        "met_on",
        "only allowed when status is 'met' (status is 'open')",
    ),
    ("needs", {**NEED, "need": "n" * 10_001}, "need", "too long: 10,001 characters (max 10,000)"),
    (
        "advocates",
        {**ADVOCATE, "consent": "maybe"},
        "consent",
        "must be true or false (or yes/no, 1/0), got 'maybe'",
    ),
    ("advocates", {**ADVOCATE, "consent": ""}, "consent", "a value is required"),
    (
        "advocates",
        {**ADVOCATE, "reference_types": "call;webinar"},
        "reference_types",
        "unknown reference type 'webinar' (allowed: call, site_visit, case_study, logo, mentoring, peer_call)",
    ),
    (
        "advocates",
        {**ADVOCATE, "capacity_per_quarter": "-2"},
        "capacity_per_quarter",
        "must be an integer >= 0, got '-2'",
    ),
    ("advocates", {**ADVOCATE, "contact_email": "ann at x"}, "contact_email", "not a valid e-mail address: 'ann at x'"),
    (
        "advocates",
        {**ADVOCATE, "blackout_until": "soon"},
        "blackout_until",
        "not a valid date (expected YYYY-MM-DD): 'soon'",
    ),
    ("advocates", {**ADVOCATE, "topics": "t" * 10_001}, "topics", "too long: 10,001 characters (max 10,000)"),
    (
        "signals",
        {**SIGNAL, "kind": "mood"},
        "kind",
        "unknown signal kind 'mood' (allowed: health, usage, open_tickets, escalation, nps, champion_left)",
    ),
    ("signals", {**SIGNAL, "value": "high"}, "value", "must be a number (or true/false), got 'high'"),
    ("signals", {**SIGNAL, "value": ""}, "value", "a value is required"),
    ("signals", {**SIGNAL, "observed_on": ""}, "observed_on", "a value is required"),
]


@pytest.mark.parametrize(("kind", "row", "column", "message"), BAD_ROWS)
def test_bad_row_gives_exact_error(kind: str, row: dict[str, str], column: str, message: str, tmp_path: Path) -> None:
    assert one_error(kind, row, tmp_path) == (column, message)


@pytest.mark.parametrize(
    ("row", "column", "message"),
    [
        ({**ACCOUNT, "name": ["x"]}, "name", "must be a string, got ['x']"),
        ({**ACCOUNT, "name": None}, "name", "a value is required"),
        ({**ACCOUNT, "employees": True}, "employees", "must be an integer >= 0, got True"),
        ({**ACCOUNT, "employees": 2.5}, "employees", "must be an integer >= 0, got 2.5"),
        ({**ACCOUNT, "health": "1e400"}, "health", "must be a number between 0 and 100, got '1e400'"),
        ({**ACCOUNT, "stage_since": 20240101}, "stage_since", "not a valid date (expected YYYY-MM-DD): 20240101"),
        ({**ACCOUNT, "profile": {"a": 1}}, "profile", "must be a string, got {'a': 1}"),
    ],
)
def test_jsonl_type_errors(row: dict[str, Any], column: str, message: str, tmp_path: Path) -> None:
    result = parse_file(write_jsonl(tmp_path / "accounts.jsonl", [row]), "accounts")
    assert errors_of(result) == [(1, column, message)]


def test_row_error_text_names_file_row_and_column(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_csv(tmp_path / "accounts.csv", [ACCOUNT, {**ACCOUNT, "external_id": "A2", "employees": "many"}])
    result = parse_file("accounts.csv", "accounts")
    assert [str(e) for e in result.errors] == [
        "accounts.csv row 3, column 'employees': must be an integer >= 0, got 'many'"
    ]
    assert str(RowError("x.jsonl", 4, None, "not a JSON object: [1]")) == "x.jsonl row 4: not a JSON object: [1]"


def test_file_name_is_kept_as_given(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "accounts.csv", [{**ACCOUNT, "stage": "x"}])
    assert parse_file(path, "accounts").errors[0].file == str(path)
    assert parse_file(str(path), "accounts").errors[0].file == str(path)


def test_all_errors_of_all_rows_are_collected(tmp_path: Path) -> None:
    rows = [
        {**ACCOUNT, "name": "", "employees": "x", "health": "-1"},
        {**ACCOUNT, "external_id": "A2"},
        {"external_id": "", "name": "C", "stage": "nope", "stage_since": "2024-02-30"},
    ]
    result = parse_file(write_csv(tmp_path / "accounts.csv", rows), "accounts")
    assert errors_of(result) == [
        (2, "name", "a value is required"),
        (2, "employees", "must be an integer >= 0, got 'x'"),
        (2, "health", "must be a number between 0 and 100, got '-1'"),
        (4, "external_id", "a value is required"),
        (4, "stage", "unknown stage 'nope' (allowed: prospect, onboarding, adoption, value, expansion)"),
        (4, "stage_since", "not a valid date (expected YYYY-MM-DD): '2024-02-30'"),
    ]
    assert [r["external_id"] for r in result.records] == ["A2"]
    assert result.rows_read == 3
    assert [(r["_row"], len(r["_errors"])) for r in result.rejected_rows] == [(2, 3), (4, 3)]
    assert result.rejected_rows[0]["employees"] == "x"  # raw, as read


def test_rejected_rows_keep_raw_cells_and_messages(tmp_path: Path) -> None:
    result = parse_file(write_csv(tmp_path / "a.csv", [{**ACCOUNT, "name": " Acme ", "employees": " x "}]), "accounts")
    assert result.rejected_rows == [
        {
            "external_id": "A1",
            "name": " Acme ",
            "stage": "adoption",
            "employees": " x ",
            "_row": 2,
            "_errors": ["column 'employees': must be an integer >= 0, got 'x'"],
        }
    ]


# -- values: booleans, numbers, enums, options


@pytest.mark.parametrize(
    ("cell", "expected"),
    [("true", True), ("TRUE", True), ("Yes", True), ("1", True), ("false", False), ("no", False), ("0", False)],
)
def test_booleans(cell: str, expected: bool, tmp_path: Path) -> None:
    [record] = parse_file(write_csv(tmp_path / "v.csv", [{**ADVOCATE, "consent": cell}]), "advocates").records
    assert record["consent"] is expected


@pytest.mark.parametrize(
    ("value", "expected"), [("true", 1.0), ("no", 0.0), (True, 1.0), (False, 0.0), (-3, -3.0), ("2.5e1", 25.0)]
)
def test_signal_values_take_booleans_as_0_1(value: Any, expected: float, tmp_path: Path) -> None:
    [record] = parse_file(write_jsonl(tmp_path / "s.jsonl", [{**SIGNAL, "value": value}]), "signals").records
    assert record["value"] == expected


def test_enums_are_case_insensitive_and_canonical(tmp_path: Path) -> None:
    rows = [{**NEED, "status": "In_Progress"}]
    assert parse_file(write_csv(tmp_path / "n.csv", rows), "needs").records[0]["status"] == "in_progress"


def test_configured_stages_and_signal_kinds(tmp_path: Path) -> None:
    accounts = write_csv(tmp_path / "a.csv", [{**ACCOUNT, "stage": "pilot"}, {**ACCOUNT, "external_id": "A2"}])
    result = parse_file(accounts, "accounts", stages=("pilot", "live"))
    assert [r["stage"] for r in result.records] == ["pilot"]
    assert errors_of(result) == [(3, "stage", "unknown stage 'adoption' (allowed: pilot, live)")]
    signals = write_csv(tmp_path / "s.csv", [{**SIGNAL, "kind": "logins"}])
    assert parse_file(signals, "signals", signal_kinds=("logins",)).records[0]["kind"] == "logins"


def test_default_capacity_fills_blank_cells_only(tmp_path: Path) -> None:
    rows = [ADVOCATE, {**ADVOCATE, "account_external_id": "A2", "capacity_per_quarter": "0"}]
    path = write_csv(tmp_path / "v.csv", rows)
    assert [r["capacity_per_quarter"] for r in parse_file(path, "advocates").records] == [None, 0]
    assert [r["capacity_per_quarter"] for r in parse_file(path, "advocates", default_capacity=4).records] == [4, 0]


def test_met_on_is_fine_with_met_and_not_checked_when_status_is_bad(tmp_path: Path) -> None:
    met = {**NEED, "status": "met", "met_on": "2024-01-01"}
    rows = [met, {**met, "need": "b", "status": "?"}]
    result = parse_file(write_csv(tmp_path / "n.csv", rows), "needs")
    assert errors_of(result) == [(3, "status", "unknown status '?' (allowed: open, in_progress, met)")]


# -- duplicates within one file


@pytest.mark.parametrize(
    ("kind", "first", "later", "column", "message"),
    [
        (
            "accounts",
            ACCOUNT,
            {**ACCOUNT, "name": "Other"},
            "external_id",
            "duplicate external_id 'A1' (first seen in row 2; the rows disagree on name)",
        ),
        (
            "advocates",
            ADVOCATE,
            {**ADVOCATE, "consent": "no"},
            "account_external_id",
            "duplicate advocate for account 'A1' (first seen in row 2; the rows disagree on consent)",
        ),
        (
            "needs",
            NEED,
            {**NEED, "need": " sso  WITH azure ad ", "status": "met"},
            "need",
            "duplicate need for account 'A1' (first seen in row 2; the rows disagree on status)",
        ),
        (
            "signals",
            SIGNAL,
            {**SIGNAL, "value": "10"},
            None,
            "duplicate 'health' signal on 2024-05-01 for account 'A1' "
            "(first seen in row 2; the rows disagree on value)",
        ),
        (
            "accounts",
            ACCOUNT,
            dict(ACCOUNT),
            "external_id",
            "duplicate external_id 'A1' (first seen in row 2; the same values again)",
        ),
    ],
)
def test_duplicate_keys_name_the_first_row(
    kind: str, first: dict[str, str], later: dict[str, str], column: str | None, message: str, tmp_path: Path
) -> None:
    other = {**first, "account_external_id": "B1"} if kind != "accounts" else {**first, "external_id": "B1"}
    result = parse_file(write_csv(tmp_path / f"{kind}.csv", [first, other, later]), kind)
    assert errors_of(result) == [(4, column, message)]
    assert [r["_row"] for r in result.records] == [2, 3]


def test_not_duplicates_when_keys_differ(tmp_path: Path) -> None:
    signals = [SIGNAL, {**SIGNAL, "kind": "usage"}, {**SIGNAL, "observed_on": "2024-05-02"}]
    assert parse_file(write_csv(tmp_path / "s.csv", signals), "signals").errors == []
    needs = [NEED, {**NEED, "need": "SSO with Okta"}, {**NEED, "account_external_id": "B1"}]
    assert parse_file(write_csv(tmp_path / "n.csv", needs), "needs").errors == []


# -- known accounts


@pytest.mark.parametrize("kind", ["needs", "advocates", "signals"])
def test_known_accounts(kind: str, tmp_path: Path) -> None:
    rows = [MINIMAL[kind], {**MINIMAL[kind], "account_external_id": "ZZ"}]
    path = write_csv(tmp_path / f"{kind}.csv", rows)
    result = parse_file(path, kind, known_accounts={"A1"})
    assert errors_of(result) == [(3, "account_external_id", "unknown account 'ZZ' (import accounts first)")]
    assert parse_file(path, kind).errors == []  # not checked without known_accounts


def test_known_accounts_does_not_apply_to_accounts(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [{**ACCOUNT, "do_not_match": "NOPE"}])
    assert parse_file(path, "accounts", known_accounts=set()).errors == []


# -- header problems


def test_header_problems_are_listed_together(tmp_path: Path) -> None:
    path = tmp_path / "accounts.csv"
    path.write_text("external_id,name,colour,name,size\nA1,Acme,red,Acme,big\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        parse_file(path, "accounts")
    assert info.value.message == (
        f"{path}: missing required column 'stage'; unknown column 'colour'; duplicate column 'name'; "
        "unknown column 'size' (expected columns: external_id, name, industry, employees, country, region, "
        "products, stage, stage_since, health, arr, renewal_date, owner, profile, do_not_match)"
    )
    assert info.value.details == [
        {"file": str(path), "column": "stage", "message": "missing required column 'stage'"},
        {"file": str(path), "column": "colour", "message": "unknown column 'colour'"},
        {"file": str(path), "column": "name", "message": "duplicate column 'name'"},
        {"file": str(path), "column": "size", "message": "unknown column 'size'"},
    ]


def test_ignore_unknown_drops_unknown_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", [{**ACCOUNT, "colour": "red", "": "x"}])
    with pytest.raises(InvalidInput, match="unknown column 'colour' "):
        parse_file(path, "accounts")
    [record] = parse_file(path, "accounts", ignore_unknown=True).records
    assert "colour" not in record and "" not in record and record["name"] == "Acme"
    # an untitled last column: empty, as exporters leave it, it is no error; a value in it is one
    write_csv(path, [{**ACCOUNT, "": "x"}])
    [error] = parse_file(path, "accounts").errors
    assert error.row == 2 and error.message == "column 4 has no name, but this row has a value in it"
    write_csv(path, [{**ACCOUNT, "": ""}])
    assert parse_file(path, "accounts").records[0]["name"] == "Acme"


def test_ignore_unknown_still_needs_required_and_distinct_columns(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("external_id,name,name,colour\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        parse_file(path, "accounts", ignore_unknown=True)
    assert [d["message"] for d in info.value.details] == ["missing required column 'stage'", "duplicate column 'name'"]


def test_header_names_are_stripped_and_bom_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes("\ufeff external_id , name ,stage\r\nA1,Acme,value\r\n".encode())
    assert [r["external_id"] for r in parse_file(path, "accounts").records] == ["A1"]


# -- file problems


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "accounts.xls"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(InvalidInput) as info:
        parse_file(path, "accounts")
    assert info.value.message == f"{path}: unsupported file type (expected .csv, .tsv, .xlsx, .jsonl or .ndjson)"
    path = tmp_path / "accounts.xlsx"
    path.write_text("x", encoding="utf-8")
    with pytest.raises(InvalidInput, match=r"accounts.xlsx: not a readable .xlsx workbook \(BadZipFile"):
        parse_file(path, "accounts")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_file(tmp_path / "nope.csv", "accounts")
    assert info.value.message == f"file not found: {tmp_path / 'nope.csv'}"


def test_unknown_kind(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=r"unknown import kind 'people' \(expected one of: accounts, needs"):
        parse_file(write_csv(tmp_path / "a.csv", [ACCOUNT]), "people")


@pytest.mark.parametrize(("name", "text"), [("a.csv", ""), ("a.jsonl", ""), ("a.jsonl", "\n  \n")])
def test_empty_file(name: str, text: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InvalidInput, match="file is empty"):
        parse_file(path, "accounts")


def test_header_only_csv_has_no_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("external_id,name,stage\n", encoding="utf-8")
    result = parse_file(path, "accounts")
    assert (result.records, result.errors, result.rows_read) == ([], [], 0)


def test_undecodable_utf8_names_file_offset_and_line(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"external_id,name,stage\nA1,Caf\xe9,value\n")
    with pytest.raises(InvalidInput) as info:
        parse_file(path, "accounts")
    assert info.value.message == f"{path}: not valid UTF-8 (byte offset 29, line 2); save the file as UTF-8"
    assert info.value.details == [{"file": str(path), "byte_offset": 29, "line": 2}]


def test_undecodable_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"a": 1}\n{"b": "\xff"}\n')
    with pytest.raises(InvalidInput, match=r"not valid UTF-8 \(byte offset 16, line 2\)"):
        parse_file(path, "accounts")


# -- CSV and JSONL specifics


def test_csv_rows_are_numbered_by_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        'external_id,name,stage,profile\nA1,Acme,value,"two\nlines"\n\nA2,Beta,bad,\n,,,\nA3,Gamma,value\n',
        encoding="utf-8",
    )
    result = parse_file(path, "accounts")
    assert [r["_row"] for r in result.records] == [2, 7]
    assert result.records[0]["profile"] == "two\nlines"
    assert errors_of(result) == [
        (5, "stage", "unknown stage 'bad' (allowed: prospect, onboarding, adoption, value, expansion)")
    ]
    assert result.rows_read == 3  # blank lines and rows of empty cells are skipped


def test_csv_row_with_too_many_cells(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("external_id,name,stage\nA1,Acme,value,extra\n", encoding="utf-8")
    assert errors_of(parse_file(path, "accounts")) == [(2, None, "row has 4 cells but the header has 3")]


def test_a_huge_csv_cell_names_its_row_and_column(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        'external_id,name,stage,profile\nA1,Acme,value,\nA2,Beta,value,"' + "x" * 200_000 + '"\n', encoding="utf-8"
    )
    assert errors_of(parse_file(path, "accounts")) == [(3, "profile", "too long: 200,000 characters (max 10,000)")]


def test_unreadable_csv_names_the_line(tmp_path: Path) -> None:
    from refmatch.importing import MAX_CELL

    path = tmp_path / "a.csv"
    path.write_text(
        'external_id,name,stage\nA1,Acme,value\nA2,"' + "x" * (MAX_CELL + 1) + '",value\n', encoding="utf-8"
    )
    with pytest.raises(InvalidInput, match=r"a\.csv line 3: a cell is over 16,777,216 characters"):
        parse_file(path, "accounts")


def test_an_unterminated_quote_names_the_line_it_opens_on(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('external_id,name,stage\nA1,"Acme,value\nA2,Beta,value\nA3,Gamma,value\n', encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        parse_file(path, "accounts")
    assert caught.value.message.endswith(
        'a.csv line 2: a quoted cell that starts on this line is never closed (an unmatched " runs to the end '
        "of the file, line 4)"
    )


def test_jsonl_line_problems(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(
        "\n".join(
            [
                json.dumps(ACCOUNT),
                "",
                "[1, 2]",
                "{not json",
                '{"external_id": "A2", "name": "B", "stage": "value", "name": "C"}',
                json.dumps({**ACCOUNT, "external_id": "A3", "colour": "red"}),
            ]
        ),
        encoding="utf-8",
    )
    result = parse_file(path, "accounts")
    assert [r["_row"] for r in result.records] == [1]
    assert errors_of(result) == [
        (3, None, "not a JSON object: [1, 2]"),
        (4, None, "not valid JSON: Expecting property name enclosed in double quotes (at character 2)"),
        (5, "name", "key appears twice in this object"),
        (
            6,
            "colour",
            "unknown column (allowed: external_id, name, industry, employees, country, region, products, "
            "stage, stage_since, health, arr, renewal_date, owner, profile, do_not_match)",
        ),
    ]
    assert result.rows_read == 5
    assert result.rejected_rows[0] == {"_raw": "[1, 2]", "_row": 3, "_errors": ["not a JSON object: [1, 2]"]}
    assert len(parse_file(path, "accounts", ignore_unknown=True).records) == 2


def test_jsonl_missing_required_keys(tmp_path: Path) -> None:
    result = parse_file(write_jsonl(tmp_path / "n.jsonl", [{"need": "x", "status": "open"}]), "needs")
    assert errors_of(result) == [(1, "account_external_id", "a value is required")]


# -- parse_rows (API bodies)


def test_parse_rows(tmp_path: Path) -> None:
    result = parse_rows(
        [{**NEED, "status": "met"}, "oops", {**NEED, "need": "other", "status": "later"}],
        "needs",
        source="request body",
        known_accounts={"A1"},
    )
    assert [r["_row"] for r in result.records] == [1]
    assert [str(e) for e in result.errors] == [
        "request body row 2: not a JSON object: 'oops'",
        "request body row 3, column 'status': unknown status 'later' (allowed: open, in_progress, met)",
    ]
    assert result.kind == "needs" and result.rows_read == 3


# -- reject files


def test_write_rejects_csv(tmp_path: Path) -> None:
    rows = [ACCOUNT, {**ACCOUNT, "external_id": "A2", "employees": "x", "health": "200"}, {**ACCOUNT, "name": "Again"}]
    result = parse_file(write_csv(tmp_path / "a.csv", rows), "accounts")
    write_rejects(result, tmp_path / "rejects.csv")
    assert (tmp_path / "rejects.csv").read_text(encoding="utf-8").splitlines() == [
        "external_id,name,stage,employees,health,row,errors",
        "A2,Acme,adoption,x,200,3,\"column 'employees': must be an integer >= 0, got 'x'; "
        "column 'health': must be a number between 0 and 100, got '200'\"",
        "A1,Again,adoption,,,4,column 'external_id': duplicate external_id 'A1' (first seen in row 2; "
        "the rows disagree on name)",
    ]


NEGATIVE = "must be an integer >= 0, got -1"


def test_write_rejects_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({**ACCOUNT, "products": ["x"], "employees": -1}) + "\nnull\n", encoding="utf-8")
    write_rejects(parse_file(path, "accounts"), tmp_path / "rejects.jsonl")
    lines = (tmp_path / "rejects.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {**ACCOUNT, "products": ["x"], "employees": -1, "row": 1, "errors": [f"column 'employees': {NEGATIVE}"]},
        {"_raw": "null", "row": 2, "errors": ["not a JSON object: None"]},
    ]


def test_rejects_of_a_corrected_csv_reimport(tmp_path: Path) -> None:
    result = parse_file(write_csv(tmp_path / "a.csv", [{**ACCOUNT, "products": "a;b", "stage": "x"}]), "accounts")
    write_rejects(result, tmp_path / "rejects.csv")
    fixed = (tmp_path / "rejects.csv").read_text(encoding="utf-8").replace(",x,", ",value,")
    (tmp_path / "fixed.csv").write_text(fixed, encoding="utf-8")
    [record] = parse_file(tmp_path / "fixed.csv", "accounts", ignore_unknown=True).records
    assert (record["stage"], record["products"]) == ("value", ["a", "b"])


# -- scale and layering


def test_ten_thousand_rows(tmp_path: Path) -> None:
    rows = [
        {**ACCOUNT, "external_id": f"A{i}", "products": "WMS;TMS", "employees": str(i), "profile": "p" * 200}
        for i in range(10_000)
    ]
    rows += [{**ACCOUNT, "external_id": "A5"}, {**ACCOUNT, "external_id": "B", "health": "x"}]
    result = parse_file(write_csv(tmp_path / "big.csv", rows), "accounts")
    assert len(result.records) == 10_000 and result.rows_read == 10_002
    assert errors_of(result)[0] == (
        10_002,
        "external_id",
        "duplicate external_id 'A5' (first seen in row 7; the rows disagree on employees, products, profile)",
    )
    assert len(result.errors) == 2


def test_importing_writes_nothing_and_imports_no_shell() -> None:
    source = Path(__file__).parents[1] / "refmatch" / "importing.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & {"flask", "click", "sqlite3", "sqlite_utils"}


def test_a_long_import_reports_its_progress(tmp_path: Path, service) -> None:
    rows = [{**ACCOUNT, "external_id": f"X{i}", "profile": "x" * 300} for i in range(2500)]
    path = write_csv(tmp_path / "big.csv", rows)
    seen: dict[str, list[int]] = {}

    def factory(name: str, total: int):
        seen[name] = [total, 0]

        def advance(n: int) -> None:
            seen[name][1] += n

        return advance

    report = service.import_file("accounts", path, progress=factory)
    assert report.inserted == 2500
    size = path.stat().st_size
    assert seen["reading big.csv"] == [size, size]  # every byte read was told
    assert seen["writing accounts"] == [2500, 2500]
