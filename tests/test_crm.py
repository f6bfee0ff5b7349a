"""CRM and spreadsheet files: presets for Salesforce, HubSpot and customer-success exports (from files shaped
like the real exports, with their usual mess), TOML maps, case-insensitive headers, delimiters, .xlsx."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from refmatch import crm
from refmatch.cli import cli
from refmatch.domain.errors import InvalidInput
from refmatch.importing import parse_file


def write(path: Path, header: list[str], rows: list[list[str]], delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding="utf-8-sig") as f:  # Excel writes a BOM
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# the columns of a Salesforce "Accounts" report exported as CSV, in its order, with a trailing empty column
SALESFORCE_HEADER = ["Account Owner", "Account Name", "Type", "Industry", "Billing Country", "Employees",
                     "Annual Revenue", "Account ID", "Created Date", "Description", ""]  # fmt: skip
# a HubSpot companies export ("All properties" off)
HUBSPOT_HEADER = ["Record ID", "Company name", "Company Domain Name", "Create Date", "Company owner", "Industry",
                  "Number of Employees", "Country/Region", "Lifecycle Stage", "Annual Revenue",
                  "Last Activity Date"]  # fmt: skip
# a Gainsight company health export
GAINSIGHT_HEADER = ["Company ID", "Company Name", "Overall Score", "ARR", "Renewal Date", "CSM", "Lifecycle Stage",
                    "Scorecard Trend", "Industry"]  # fmt: skip


def test_a_salesforce_account_export_is_recognised_and_read(tmp_path):
    path = write(
        tmp_path / "report1700000000000.csv",
        SALESFORCE_HEADER,
        [
            [
                "jane.doe@example.com",
                "Acme Logistics",
                "Customer - Direct",
                "Transportation",
                "Ireland",
                "1,200",
                "$12,500,000.00",
                "0015g00000AbCdEAAV",
                "3/14/2021",
                "Runs 40 depots on our WMS.",
                "",
            ],
            [
                "sam.lee@example.com",
                "Borealis Foods",
                "Prospect",
                "Food & Beverage",
                "Germany",
                "85",
                "",
                "0015g00000XyZwQAAV",
                "11/2/2024",
                "",
                "",
            ],
        ],  # fmt: skip
    )
    result = parse_file(path, "accounts")
    assert not result.errors, result.errors
    assert result.mapping == "salesforce"
    assert result.ignored_columns == ["Annual Revenue", "Created Date"]
    acme, borealis = result.records
    assert acme["external_id"] == "0015g00000AbCdEAAV" and acme["name"] == "Acme Logistics"
    assert acme["stage"] == "value" and acme["employees"] == 1200 and acme["owner"] == "jane.doe@example.com"
    assert acme["profile"] == "Runs 40 depots on our WMS." and acme["country"] == "Ireland"
    assert borealis["stage"] == "prospect" and borealis["employees"] == 85


def test_a_hubspot_companies_export_maps_lifecycle_stages(tmp_path):
    path = write(
        tmp_path / "hubspot-crm-exports-all-companies-2026-12-04.csv",
        HUBSPOT_HEADER,
        [
            [
                "9876543210",
                "Cobalt Pharma",
                "cobalt.example.com",
                "2023-05-01 10:12",
                "Ana Ruiz",
                "PHARMACEUTICALS",
                "2,500",
                "Spain",
                "Customer",
                "40000000",
                "2026-11-30 16:00",
            ],
            [
                "9876543211",
                "Delta Retail",
                "delta.example.com",
                "2024-02-11 09:00",
                "Ana Ruiz",
                "RETAIL",
                "",
                "France",
                "Evangelist",
                "",
                "",
            ],
            ["9876543212", "Echo Labs", "echo.example.com", "2026-10-01 08:00", "", "", "12", "", "Lead", "", ""],
        ],  # fmt: skip
    )
    result = parse_file(path, "accounts")
    assert not result.errors, result.errors
    assert result.mapping == "hubspot"
    assert [r["stage"] for r in result.records] == ["value", "expansion", "prospect"]
    assert result.records[0]["employees"] == 2500 and result.records[0]["industry"] == "PHARMACEUTICALS"
    assert "Company Domain Name" in result.ignored_columns


def test_a_health_export_with_currency_signs_us_dates_and_semicolons(tmp_path):
    rows = [
        ["GS-1001", "Acme Logistics", "82", "$1,250,000.00", "12/31/2026", "csm.one@example.com", "Adoption", "Up",
         "Transportation"],
        ["GS-1002", "Borealis Foods", "41", "USD 310,000", "3/1/2027", "csm.two@example.com", "Renewal", "Down", ""],
    ]  # fmt: skip
    for delimiter in (",", ";"):
        path = write(tmp_path / f"health{ord(delimiter)}.csv", GAINSIGHT_HEADER, rows, delimiter)
        result = parse_file(path, "accounts")
        assert not result.errors, result.errors
        assert result.mapping == "cs-health"
        acme, borealis = result.records
        assert (acme["health"], acme["arr"], acme["renewal_date"]) == (82.0, 1250000.0, "2026-12-31")
        assert acme["stage"] == "adoption" and borealis["stage"] == "value" and borealis["arr"] == 310000.0
        assert borealis["renewal_date"] == "2027-03-01" and borealis["owner"] == "csm.two@example.com"


def test_a_map_of_ones_own_in_toml(tmp_path):
    spec = tmp_path / "erp.toml"
    spec.write_text(
        """
kind = "accounts"
date_format = "%d/%m/%Y"
decimal_comma = true
[columns]
"Kundennummer" = "external_id"
"Firma" = "name"
"Phase" = "stage"
"Umsatz (ARR)" = "arr"
"Verlängerung" = "renewal_date"
[values.stage]
"Einführung" = "onboarding"
"Produktiv" = "value"
[defaults]
country = "Germany"
""",
        encoding="utf-8",
    )
    path = write(
        tmp_path / "kunden.csv",
        ["Kundennummer", "Firma", "Phase", "Umsatz (ARR)", "Verlängerung", "Bemerkung"],
        [["K-1", "Gamma GmbH", "Produktiv", "1.234.567,50 €", "31/12/2026", "x"],
         ["K-2", "Delta AG", "einführung", "980,5", "", ""]],
        ";",
    )  # fmt: skip
    result = parse_file(path, "accounts", column_map=str(spec))
    assert not result.errors, result.errors
    gamma, delta = result.records
    assert gamma["arr"] == 1234567.5 and gamma["renewal_date"] == "2026-12-31" and gamma["stage"] == "value"
    assert delta["stage"] == "onboarding" and delta["arr"] == 980.5 and delta["country"] == "Germany"
    assert result.mapping == "erp.toml" and result.ignored_columns == ["Bemerkung"]
    with pytest.raises(InvalidInput, match="the erp.toml map is for accounts files, not needs"):
        parse_file(path, "needs", column_map=str(spec))


def test_map_problems_are_named(tmp_path):
    path = write(tmp_path / "a.csv", ["Id", "Industry"], [["1", "x"]])
    with pytest.raises(InvalidInput, match=r"missing required column 'name' \(the salesforce map reads it from: "):
        parse_file(path, "accounts", column_map="salesforce")
    with pytest.raises(InvalidInput, match="neither a preset \\(salesforce, hubspot, cs-health\\) nor a .toml"):
        parse_file(path, "accounts", column_map="zoho")
    bad = tmp_path / "bad.toml"
    bad.write_text("[columns\n", encoding="utf-8")
    with pytest.raises(InvalidInput, match="bad.toml is not valid TOML"):
        parse_file(path, "accounts", column_map=str(bad))
    bad.write_text('colour = "red"\n[columns]\nId = 3\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="unknown key 'colour'.*\\[columns\\] must map"):
        parse_file(path, "accounts", column_map=str(bad))
    twice = tmp_path / "twice.toml"
    twice.write_text('[columns]\nId = "external_id"\nIndustry = "external_id"\n', encoding="utf-8")
    with pytest.raises(InvalidInput, match="'Id', 'Industry' all map to 'external_id'"):
        parse_file(path, "accounts", column_map=str(twice))


def test_plain_files_read_headers_without_regard_to_case_and_any_delimiter(tmp_path):
    for delimiter in (",", ";", "\t", "|"):
        path = write(tmp_path / "a.csv", ["External ID", "NAME", "Stage", "Industry"], [["A1", "Acme", "value", "x;y"]],
                     delimiter)  # fmt: skip
        [record] = parse_file(path, "accounts").records
        assert record["external_id"] == "A1" and record["industry"] == "x;y" and record["stage"] == "value"
    path = write(tmp_path / "b.csv", ["external_id;name;stage"], [["A1;Acme;value"]], ",")  # one quoted-free column
    assert parse_file(path, "accounts").records[0]["name"] == "Acme"


def test_a_plain_file_is_never_taken_for_an_export(tmp_path):
    path = write(tmp_path / "a.csv", ["external_id", "name", "stage", "colour"], [["A1", "Acme", "value", "red"]])
    with pytest.raises(InvalidInput, match="unknown column 'colour'"):
        parse_file(path, "accounts")
    assert crm.detect(["Account Name", "Type"]) is None  # two titles are not enough to say Salesforce


def test_an_xlsx_workbook_reads_its_first_sheet(tmp_path):
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Company ID", "Company Name", "Overall Score", "ARR", "Renewal Date", "Lifecycle Stage"])
    sheet.append(["GS-1", "Acme", 82, 1250000.0, datetime(2026, 12, 31), "Adoption"])
    sheet.append([None, None, None, None, None, None])  # an empty row Excel keeps
    sheet.append(["GS-2", "Borealis", 41.5, 310000, date(2027, 3, 1), "Kickoff"])
    path = tmp_path / "health.xlsx"
    book.save(path)
    result = parse_file(path, "accounts")
    assert not result.errors, result.errors
    assert result.mapping == "cs-health"
    acme, borealis = result.records
    assert (acme["health"], acme["arr"], acme["renewal_date"], acme["stage"]) == (
        82.0,
        1250000.0,
        "2026-12-31",
        "adoption",
    )
    assert borealis["health"] == 41.5 and borealis["stage"] == "onboarding" and borealis["_row"] == 4


def test_the_import_command_says_which_map_read_the_file(tmp_path):
    path = write(tmp_path / "sf.csv", SALESFORCE_HEADER,
                 [["a@example.com", "Acme", "Prospect", "", "", "", "", "001A", "", "", ""]])  # fmt: skip
    db = str(tmp_path / "r.db")
    result = CliRunner().invoke(cli, ["import", "accounts", str(path), "--db", db, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "would import 1 rows" in result.output
    assert "columns mapped by salesforce; ignored: Annual Revenue, Created Date" in result.output
    result = CliRunner().invoke(cli, ["import", "accounts", str(path), "--db", db, "--map", "none"])
    assert result.exit_code == 2 and "unknown column 'Account Owner'" in result.output


@pytest.mark.parametrize(
    ("text", "decimal_comma", "expected"),
    [("$1,234,567.00", False, "1234567.00"), ("1,200", False, "1200"), ("85%", False, "85"), ("€ 980", False, "980"),
     ("1.234,5", True, "1234.5"), ("12,5", True, "12.5"), ("1 234 567,00", True, "1234567.00"),
     ("1,2,3", False, "1,2,3"), ("abc", False, "abc")],
)  # fmt: skip
def test_clean_number(text, decimal_comma, expected):
    assert crm.clean_number(text, decimal_comma=decimal_comma) == expected
