"""CRM and spreadsheet files as they come: column maps, presets for common exports, delimiters, .xlsx.

A file exported from a CRM has its own column names, its own words for a stage, numbers with
thousands separators and currency signs, dates in the exporter's locale, and dozens of
columns refmatch has no use for. A ``ColumnMap`` says how such a file becomes one of
refmatch's import kinds:

- ``columns``: the file's column (matched without regard to case, spacing or punctuation)
  -> refmatch's column; the file's other columns are ignored, and the import says which;
- ``values``: per refmatch column, the file's words -> refmatch's (``"Customer - Direct"``
  -> ``value``), matched without regard to case; a word not listed is left as it is, so
  the import's own check names it;
- ``defaults``: a value for a refmatch column the file does not have (or leaves blank);
- ``date_format``: how the file writes dates (``%m/%d/%Y``), turned into ISO dates;
- ``decimal_comma``: numbers written ``1.234,50`` rather than ``1,234.50``.

Presets exist for a Salesforce account export, a HubSpot companies export and a
customer-success health export (Gainsight / Totango style); each is found from the
file's header when no map is named. Anything else: a TOML file of the same shape (see
the README's "CRM files").

Without a map, a file's headers still match refmatch's columns without regard to case
(``Industry``, ``External ID``), and the delimiter of a CSV file is found from its header
line (``,`` ``;`` tab or ``|``), so a file saved by a European Excel reads as it is.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from refmatch.domain.errors import InvalidInput

DELIMITERS = (",", ";", "\t", "|")
NUMBER_COLUMNS = ("employees", "health", "arr", "capacity_per_quarter", "value")
DATE_COLUMNS = ("stage_since", "renewal_date", "met_on", "blackout_until", "observed_on", "churned_on")
_CURRENCY = re.compile(r"^(?:[$€£¥]|USD|EUR|GBP|CHF|AUD|CAD)\s*|\s*(?:[$€£¥]|USD|EUR|GBP|CHF|AUD|CAD)$", re.I)
_US_GROUPS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_EU_GROUPS = re.compile(r"^[+-]?\d{1,3}(?:[.\s\u00a0\u202f]\d{3})+(?:,\d+)?$")
_EU_DECIMAL = re.compile(r"^[+-]?\d+,\d+$")


def key(title: str) -> str:
    """A title as compared: lower case, each run of non-alphanumerics one space ("Account_ID" = "account id")."""
    return " ".join(re.sub(r"[^0-9a-z]+", " ", title.casefold()).split())


@dataclass(frozen=True)
class ColumnMap:
    name: str
    kind: str = "accounts"
    columns: Mapping[str, str] = field(default_factory=dict)  # key(file's title) -> refmatch column
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # column -> {casefolded word: value}
    defaults: Mapping[str, str] = field(default_factory=dict)
    date_format: str | None = None
    decimal_comma: bool = False
    signature: tuple[str, ...] = ()  # keys that, all present in a header, say it is this export

    def targets(self, header: list[str]) -> tuple[list[str | None], list[str]]:
        """For each header title, the refmatch column it fills (None: ignored), and the ignored titles."""
        out: list[str | None] = []
        ignored = []
        for title in header:
            target = self.columns.get(key(title))
            out.append(target)
            if target is None and title.strip():
                ignored.append(title)
        return out, ignored

    def apply(self, row: dict[str, Any]) -> dict[str, Any]:
        """One row with refmatch's column names: words mapped, numbers and dates cleaned, defaults filled."""
        for column, words in self.values.items():
            value = row.get(column)
            if isinstance(value, str) and value.strip():
                row[column] = words.get(value.strip().casefold(), value)
        for column in NUMBER_COLUMNS:
            if isinstance(row.get(column), str):
                row[column] = clean_number(row[column], decimal_comma=self.decimal_comma)
        if self.date_format:
            for column in DATE_COLUMNS:
                value = row.get(column)
                if isinstance(value, str) and value.strip():
                    row[column] = _date(value.strip(), self.date_format)
        for column, value in self.defaults.items():
            if row.get(column) in (None, ""):
                row[column] = value
        return row


def clean_number(text: str, *, decimal_comma: bool = False) -> str:
    """'$1,234,567.00' -> '1234567.00', '€ 1.234,5' -> '1234.5' (with decimal_comma), '85%' -> '85';
    anything else is returned as it is, for the column's own check to refuse with its value."""
    value = text.strip()
    value = _CURRENCY.sub("", value).strip().removesuffix("%").strip()
    if decimal_comma and (_EU_GROUPS.match(value) or _EU_DECIMAL.match(value)):
        return re.sub(r"[.\s\u00a0\u202f]", "", value).replace(",", ".")
    if not decimal_comma and _US_GROUPS.match(value):
        return value.replace(",", "")
    return value if value else text.strip()


def _date(value: str, fmt: str) -> str:
    try:
        return datetime.strptime(value.split(" ")[0] if " " not in fmt else value, fmt).date().isoformat()
    except ValueError:
        return value  # the column's check names it: "not an ISO date (YYYY-MM-DD)"


def _words(table: Mapping[str, str]) -> dict[str, str]:
    return {word.casefold(): value for word, value in table.items()}


def _preset(name: str, columns: dict[str, tuple[str, ...]], signature: tuple[str, ...], **extra: Any) -> ColumnMap:
    flat = {key(title): target for target, titles in columns.items() for title in titles}
    values = {column: _words(table) for column, table in extra.pop("values", {}).items()}
    return ColumnMap(name=name, columns=flat, values=values, signature=tuple(key(s) for s in signature), **extra)


# Salesforce: the account report's labels and the Data Loader's API names; Type says how far along
SALESFORCE = _preset(
    "salesforce",
    {
        "external_id": ("Account ID", "Id", "Account ID (18)"),
        "name": ("Account Name", "Name"),
        "industry": ("Industry",),
        "employees": ("Employees", "NumberOfEmployees"),
        "country": ("Billing Country", "BillingCountry"),
        "region": ("Region", "Sales Region"),
        "stage": ("Type",),
        "owner": ("Account Owner", "Owner Email", "Account Owner Email"),
        "profile": ("Description", "Account Description"),
        "products": ("Products", "Products Owned"),
    },
    ("Account Name", "Type"),
    values={
        "stage": {
            "Prospect": "prospect",
            "Customer - Direct": "value",
            "Customer - Channel": "value",
            "Channel Partner / Reseller": "value",
            "Installation Partner": "value",
            "Technology Partner": "value",
            "Other": "prospect",
        }
    },
    defaults={"stage": "prospect"},
    date_format="%m/%d/%Y",
)

# HubSpot: a companies export (Record ID, Company name, Lifecycle Stage, Company owner, ...)
HUBSPOT = _preset(
    "hubspot",
    {
        "external_id": ("Record ID", "Company ID"),
        "name": ("Company name", "Name"),
        "industry": ("Industry",),
        "employees": ("Number of Employees",),
        "country": ("Country/Region", "Country"),
        "region": ("State/Region", "Region"),
        "stage": ("Lifecycle Stage",),
        "owner": ("Company owner", "Company Owner Email"),
        "profile": ("About Us", "Description", "Company Description"),
        "arr": ("Annual Recurring Revenue", "ARR"),
        "products": ("Products",),
    },
    ("Record ID", "Company name"),
    values={
        "stage": {
            "Subscriber": "prospect",
            "Lead": "prospect",
            "Marketing Qualified Lead": "prospect",
            "Sales Qualified Lead": "prospect",
            "Opportunity": "prospect",
            "Customer": "value",
            "Evangelist": "expansion",
            "Other": "prospect",
        }
    },
    defaults={"stage": "prospect"},
    date_format="%Y-%m-%d",
)

# A customer-success health export (Gainsight / Totango style): scores, ARR, renewal, lifecycle stage
CS_HEALTH = _preset(
    "cs-health",
    {
        "external_id": ("Company ID", "Account ID", "GSID", "Account Id"),
        "name": ("Company Name", "Account Name", "Company"),
        "health": ("Overall Score", "Health Score", "Overall Health Score", "Health"),
        "arr": ("ARR", "Annual Recurring Revenue", "Contract ARR"),
        "renewal_date": ("Renewal Date", "Next Renewal Date", "Contract Renewal Date"),
        "owner": ("CSM", "CSM Email", "Customer Success Manager", "Account Manager"),
        "stage": ("Lifecycle Stage", "Stage", "Lifecycle"),
        "industry": ("Industry",),
        "employees": ("Employees",),
        "country": ("Country",),
        "region": ("Region",),
    },
    ("Overall Score",),
    values={
        "stage": {
            "Kickoff": "onboarding",
            "Onboarding": "onboarding",
            "Implementation": "onboarding",
            "Adoption": "adoption",
            "Adopting": "adoption",
            "Nurture": "value",
            "Renewal": "value",
            "Mature": "value",
            "Value": "value",
            "Expansion": "expansion",
            "Growth": "expansion",
        }
    },
    defaults={"stage": "value"},
    date_format="%m/%d/%Y",
)

PRESETS = {m.name: m for m in (SALESFORCE, HUBSPOT, CS_HEALTH)}
_SIGNATURES = {  # more than the preset's own two titles, so that a plain file is never taken for an export
    "salesforce": ("Account Name", "Type", "Billing Country"),
    "hubspot": ("Record ID", "Company name", "Lifecycle Stage"),
    "cs-health": ("Overall Score", "Renewal Date"),
}


def detect(header: list[str]) -> ColumnMap | None:
    """The preset whose telling columns are all in ``header``, if exactly one is."""
    keys = {key(t) for t in header}
    found = [PRESETS[n] for n, sig in _SIGNATURES.items() if all(key(s) in keys for s in sig)]
    return found[0] if len(found) == 1 else None


def load_map(spec: str) -> ColumnMap:
    """A preset by name, or a TOML map file (``kind``, ``[columns]``, ``[values.COLUMN]``, ``[defaults]``,
    ``date_format``, ``decimal_comma``)."""
    if spec in PRESETS:
        return PRESETS[spec]
    path = Path(spec)
    if path.suffix.lower() != ".toml":
        raise InvalidInput(f"--map: {spec!r} is neither a preset ({', '.join(PRESETS)}) nor a .toml map file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"--map: file not found: {spec}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"--map: {spec} is not valid TOML: {exc}") from None
    problems = []
    known = {"kind", "columns", "values", "defaults", "date_format", "decimal_comma"}
    problems += [f"unknown key {k!r} (expected: {', '.join(sorted(known))})" for k in data if k not in known]
    columns = data.get("columns", {})
    if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
        problems.append("[columns] must map the file's column titles to refmatch column names (strings)")
        columns = {}
    values = data.get("values", {})
    if not isinstance(values, dict) or not all(
        isinstance(t, dict) and all(isinstance(v, str) for v in t.values()) for t in values.values()
    ):
        problems.append("[values.COLUMN] tables must map the file's words to refmatch values (strings)")
        values = {}
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        problems.append("[defaults] must map refmatch column names to values")
        defaults = {}
    fmt = data.get("date_format")
    if fmt is not None and (not isinstance(fmt, str) or "%" not in fmt):
        problems.append(f"date_format must be a strptime format such as '%d/%m/%Y', got {fmt!r}")
    if problems:
        raise InvalidInput(f"--map {spec}: " + "; ".join(problems))
    return ColumnMap(
        name=path.name,
        kind=str(data.get("kind", "accounts")),
        columns={key(title): target for title, target in columns.items()},
        values={column: _words(table) for column, table in values.items()},
        defaults={k: str(v) for k, v in defaults.items()},
        date_format=fmt,
        decimal_comma=bool(data.get("decimal_comma", False)),
    )


def canonical_header(header: list[str], names: list[str]) -> list[str | None]:
    """Without a map: each title as refmatch's column it names without regard to case or punctuation
    (``External ID`` -> ``external_id``), an unknown title as it is, trailing untitled columns None."""
    by_key = {key(n): n for n in names}
    out: list[str | None] = [by_key.get(key(t), t) if t.strip() else t for t in header]
    end = len(out)
    while end and not (out[end - 1] or "").strip():
        end -= 1  # an exporter's empty trailing columns
    return [*out[:end], *([None] * (len(out) - end))]


def sniff_delimiter(line: str) -> str:
    """The delimiter of a CSV header line: whichever of , ; tab | appears most outside quotes (, when none)."""
    outside = re.sub(r'"[^"]*"', "", line)
    counts = {d: outside.count(d) for d in DELIMITERS}
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def xlsx_rows(path: Path) -> Iterator[list[str]]:
    """The first sheet of an .xlsx workbook, row by row, every cell as text (dates as ISO, 12.0 as 12)."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises what zipfile and its XML parser raise
        raise InvalidInput(f"{path}: not a readable .xlsx workbook ({type(exc).__name__}: {exc})") from None
    try:
        sheet = book.worksheets[0]
        for cells in sheet.iter_rows(values_only=True):
            yield [_cell_text(c) for c in cells]
    finally:
        book.close()


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
