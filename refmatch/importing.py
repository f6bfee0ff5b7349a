"""CSV / JSON Lines -> validated records, ready for the store (nothing is written here).

Every problem is reported, not just the first: a bad header raises ``InvalidInput``
at once (no row can be read without it), while row problems become ``RowError``s,
so a person can fix a whole file in one pass, or import the good rows and get the
rest back in a reject file (``write_rejects``).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import re
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, TextIO

from refmatch import crm
from refmatch.crm import ColumnMap
from refmatch.domain.errors import InvalidInput
from refmatch.domain.limits import (
    MAX_COUNT,
    MAX_DEPTH,
    MAX_ID,
    MAX_ITEMS,
    MAX_SHORT,
    MAX_TEXT,
    json_problem,
    unicode_problem,
)
from refmatch.domain.vocabulary import DEFAULT_STAGES, NEED_STATUSES, REFERENCE_TYPES, SIGNAL_KINDS

KINDS = ("accounts", "needs", "advocates", "signals", "churn")

_FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".xlsx": "xlsx"}
_DATE_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INT_RE = re.compile(r"[+-]?[0-9]{1,18}")
_NUM_RE = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_TRUE, _FALSE = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})


@dataclass(frozen=True)
class RowError:
    file: str
    row: int  # CSV: the line the record starts on (header = 1); JSONL: the line number
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f", column '{self.column}'" if self.column is not None else ""
        return f"{self.file} row {self.row}{where}: {self.message}"


@dataclass
class ParseResult:
    kind: str
    records: list[dict[str, Any]] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows_read: int = 0
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    mapping: str | None = None  # the column map the file was read with (named, or found from its header)
    ignored_columns: list[str] = field(default_factory=list)  # the file's columns the map has no use for


# -- value parsers: take a stripped, non-blank value (a CSV string or a JSON value),
#    return the normalised value or raise ValueError / TypeError with the message a person reads.

Parser = Callable[[Any], Any]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(max_len: int | None = None) -> Parser:
    def parse(value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise TypeError(f"must be a string, got {_show(value)}")
        text = str(value).strip()
        if max_len is not None and len(text) > max_len:
            raise ValueError(f"too long: {len(text):,} characters (max {max_len:,})")
        if problem := unicode_problem(text):
            raise ValueError(problem)
        return text

    return parse


def _count(value: Any) -> int:
    number = -1
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and _INT_RE.fullmatch(value):
        number = int(value) if len(value) <= 20 else MAX_COUNT + 1  # int() of 5,000 digits is refused
    if number < 0:
        raise ValueError(f"must be an integer >= 0, got {_show(value)}")
    if number > MAX_COUNT:
        raise ValueError(f"must be at most {MAX_COUNT:,}, got {_show(value)}")
    return number


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise ValueError(f"must be true or false (or yes/no, 1/0), got {_show(value)}")


def _number(low: float | None = None, high: float | None = None, *, bools: bool = False) -> Parser:
    if low is not None and high is not None:
        want = f"a number between {low} and {high}"
    elif low is not None:
        want = f"a number >= {low}"
    else:
        want = "a number (or true/false)" if bools else "a number"

    def parse(value: Any) -> float:
        if bools and (isinstance(value, bool) or str(value).lower() in _TRUE | _FALSE):
            return float(_bool(value))
        numeric = isinstance(value, int | float) and not isinstance(value, bool)
        number = float(value) if numeric or (isinstance(value, str) and _NUM_RE.fullmatch(value)) else math.nan
        too_low, too_high = low is not None and number < low, high is not None and number > high
        if not math.isfinite(number) or too_low or too_high:
            raise ValueError(f"must be {want}, got {_show(value)}")
        return number

    return parse


def _date(value: Any) -> str:
    if isinstance(value, str) and _DATE_RE.fullmatch(value):
        try:
            date.fromisoformat(value)
            return value
        except ValueError:
            pass
    raise ValueError(f"not a valid date (expected YYYY-MM-DD): {_show(value)}")


def is_email(text: str) -> bool:
    """An e-mail address, as imports, notifications and user contacts all take it (at most 254 characters)."""
    return len(text) <= 254 and _EMAIL_RE.fullmatch(text) is not None


def _email(value: Any) -> str:
    text = _text(254)(value)  # the longest address SMTP carries
    if not is_email(text):
        raise ValueError(f"not a valid e-mail address: {_show(text)}")
    return text


def _enum(allowed: Sequence[str], noun: str) -> Parser:
    canonical = {name.casefold(): name for name in allowed}

    def parse(value: Any) -> str:
        if isinstance(value, str) and value.casefold() in canonical:
            return canonical[value.casefold()]
        raise ValueError(f"unknown {noun} {_show(value)} (allowed: {', '.join(allowed)})")

    return parse


def _list(item: Parser | None = None) -> Parser:
    each = item or _text(MAX_SHORT)

    def parse(value: Any) -> list[str]:
        if isinstance(value, str):
            items = value.split(";")
        elif isinstance(value, list) and all(isinstance(x, str) for x in value):
            items = value
        else:
            raise TypeError(f"must be a list of strings, got {_show(value)}")
        stripped = [x.strip() for x in items if x.strip()]
        if len(stripped) > MAX_ITEMS:
            raise ValueError(f"too many items: {len(stripped):,} (max {MAX_ITEMS})")
        return list(dict.fromkeys(each(x) for x in stripped))

    return parse


# -- column specs, one table per kind


@dataclass(frozen=True)
class Column:
    name: str
    parse: Parser
    required: bool = False
    default: Callable[[], Any] = lambda: None  # the value of a blank optional cell


def columns_for(
    kind: str,
    *,
    stages: Sequence[str] = DEFAULT_STAGES,
    signal_kinds: Sequence[str] = SIGNAL_KINDS,
    default_capacity: int | None = None,
) -> tuple[Column, ...]:
    """The columns of one import kind, in record order."""
    text, free_text, key = _text(MAX_SHORT), _text(MAX_TEXT), _text(MAX_ID)
    account = Column("account_external_id", key, True)
    tables: dict[str, tuple[Column, ...]] = {
        "accounts": (
            Column("external_id", key, True),
            Column("name", text, True),
            Column("industry", text),
            Column("employees", _count),
            Column("country", text),
            Column("region", text),
            Column("products", _list(), default=list),
            Column("stage", _enum(stages, "stage"), True),
            Column("stage_since", _date),
            Column("health", _number(0, 100)),
            Column("arr", _number(0)),
            Column("renewal_date", _date),
            Column("owner", text),
            Column("profile", free_text),
            Column("do_not_match", _list(key), default=list),
        ),
        "needs": (
            account,
            Column("need", free_text, True),
            Column("status", _enum(NEED_STATUSES, "status"), True),
            Column("met_on", _date),
            Column("product", text),
        ),
        "advocates": (
            account,
            Column("consent", _bool, True),
            Column("reference_types", _list(_enum(REFERENCE_TYPES, "reference type")), default=list),
            Column("capacity_per_quarter", _count, default=lambda: default_capacity),
            Column("contact_name", text),
            Column("contact_title", text),
            Column("contact_email", _email),
            Column("blackout_until", _date),
            Column("topics", free_text),
        ),
        "signals": (
            account,
            Column("observed_on", _date, True),
            Column("kind", _enum(signal_kinds, "signal kind"), True),
            Column("value", _number(bools=True), True),
        ),
        "churn": (
            account,
            Column("churned_on", _date, True),
            Column("reason", free_text),
        ),
    }
    if kind not in tables:
        raise InvalidInput(f"unknown import kind {kind!r} (expected one of: {', '.join(KINDS)})")
    return tables[kind]


# kind -> (key columns, column the error is filed under, message naming the key); the later row is the error
_UNIQUE: dict[str, tuple[tuple[str, ...], str | None, str]] = {
    "accounts": (("external_id",), "external_id", "duplicate external_id {0!r}"),
    "needs": (("account_external_id", "need"), "need", "duplicate need for account {0!r}"),
    "advocates": (("account_external_id",), "account_external_id", "duplicate advocate for account {0!r}"),
    "signals": (
        ("account_external_id", "observed_on", "kind"),
        None,
        "duplicate {2!r} signal on {1} for account {0!r}",
    ),
    "churn": (("account_external_id", "churned_on"), "churned_on", "duplicate churn of {0!r} on {1}"),
}

Problem = tuple[str | None, str]  # (column, message)


class _Validator:
    """Turns raw rows into records or row errors, remembering keys seen for duplicates."""

    def __init__(self, kind: str, source: str, columns: tuple[Column, ...], known: Container[str] | None, ignore: bool):
        self.source, self.columns = source, columns
        self.by_name = {column.name: column for column in columns}
        self.known_accounts, self.ignore_unknown = known, ignore
        self.seen: dict[tuple[str, ...], tuple[int, dict[str, Any]]] = {}
        self.result = ParseResult(kind)

    def add(self, row: int, raw: dict[str, Any], problems: Sequence[Problem] = (), readable: bool = True) -> None:
        self.result.rows_read += 1
        problems = list(problems)
        record: dict[str, Any] = {}
        if readable:
            record, more = self._validate(row, raw)
            problems += more
        if problems:
            self.result.errors += [RowError(self.source, row, column, message) for column, message in problems]
            messages = [f"column '{c}': {m}" if c is not None else m for c, m in problems]
            self.result.rejected_rows.append({**raw, "_row": row, "_errors": messages})
        else:
            self.result.records.append({**record, "_row": row})

    def _validate(self, row: int, raw: dict[str, Any]) -> tuple[dict[str, Any], list[Problem]]:
        problems: list[Problem] = []
        if not self.ignore_unknown:
            allowed = ", ".join(self.by_name)
            problems += [(k, f"unknown column (allowed: {allowed})") for k in raw if k not in self.by_name]
        record: dict[str, Any] = {}  # a value that failed is None below, so checks skip it
        for column in self.columns:
            value = raw.get(column.name)
            if isinstance(value, str):
                value = value.strip()
            if value is None or value == "":
                record[column.name] = column.default()
                if column.required:
                    problems.append((column.name, "a value is required"))
                continue
            try:
                record[column.name] = column.parse(value)
            except (ValueError, TypeError) as exc:
                problems.append((column.name, str(exc)))
                record[column.name] = None
        return record, problems + self._cross_checks(record) + self._duplicates(row, record)

    def _cross_checks(self, record: dict[str, Any]) -> list[Problem]:
        problems: list[Problem] = []
        account = record.get("account_external_id")
        if account is not None and self.known_accounts is not None and account not in self.known_accounts:
            problems.append(("account_external_id", f"unknown account {account!r} (import accounts first)"))
        own = record.get("external_id")
        if own is not None and own in (record.get("do_not_match") or ()):
            problems.append(("do_not_match", f"must not contain the account's own external_id {own!r}"))
        if record.get("met_on") is not None and record["status"] not in (None, "met"):
            problems.append(("met_on", f"only allowed when status is 'met' (status is {record['status']!r})"))
        return problems

    def _duplicates(self, row: int, record: dict[str, Any]) -> list[Problem]:
        names, column, template = _UNIQUE[self.result.kind]
        if any(record[name] is None for name in names):
            return []
        values = [record[name] for name in names]
        # a need is the same need whatever its case and spacing ("SSO  with Azure AD" = "sso with azure ad")
        key = tuple(" ".join(v.split()).casefold() if n == "need" else v for n, v in zip(names, values, strict=True))
        first, earlier = self.seen.setdefault(key, (row, record))
        if first == row:
            return []
        differ = [c.name for c in self.columns if c.name not in names and earlier.get(c.name) != record.get(c.name)]
        how = f"the rows disagree on {', '.join(differ)}" if differ else "the same values again"
        return [(column, f"{template.format(*values)} (first seen in row {first}; {how})")]


# -- readers: yield (row number, raw row, problems found while reading, readable as a row)

Raw = Iterator[tuple[int, dict[str, Any], list[Problem], bool]]


def _check_header(name: str, header: list[str], by_name: dict[str, Column], ignore_unknown: bool) -> None:
    problems: list[dict[str, Any]] = []
    for column in by_name.values():
        if column.required and column.name not in header:
            problems.append({"column": column.name, "message": f"missing required column {column.name!r}"})
    for position, title in enumerate(header, 1):
        if title and title in header[: position - 1]:
            problems.append({"column": title, "message": f"duplicate column {title!r}"})
        elif not ignore_unknown and title not in by_name:
            label = f"unknown column {title!r}" if title else f"column {position} has no name"
            problems.append({"column": title, "message": label})
    if problems:
        listed = "; ".join(p["message"] for p in problems)
        raise InvalidInput(
            f"{name}: {listed} (expected columns: {', '.join(by_name)})",
            details=[{"file": name, **p} for p in problems],
        )


MAX_CELL = 16 * 1024 * 1024  # characters of a CSV cell the reader takes in before refusing the file


def _plan(
    name: str,
    header: list[str],
    by_name: dict[str, Column],
    ignore_unknown: bool,
    column_map: str | None,
    result: ParseResult,
) -> tuple[list[str | None], ColumnMap | None]:
    """The refmatch column under each of the file's titles (None: not read), and the map that says so.

    ``column_map``: a preset or a TOML file; None: found from the header when it is a known export's
    and does not already name refmatch's columns; "none": never."""
    names = list(by_name)
    plain = crm.canonical_header(header, names)
    cmap = None
    if column_map and column_map != "none":
        cmap = crm.load_map(column_map)
    elif column_map is None and any(t is not None and t not in by_name for t in plain):
        cmap = crm.detect(header)
    if cmap is None:
        _check_header(name, [t for t in plain if t is not None], by_name, ignore_unknown)
        return plain, None
    targets, ignored = cmap.targets(header)
    result.mapping, result.ignored_columns = cmap.name, ignored
    problems: list[dict[str, Any]] = []
    if cmap.kind != result.kind:
        problems.append({"column": None, "message": f"the {cmap.name} map is for {cmap.kind} files, not {result.kind}"})
    for column in by_name.values():
        if column.required and column.name not in targets and column.name not in cmap.defaults:
            sources = [t for t, target in cmap.columns.items() if target == column.name]
            hint = f" (the {cmap.name} map reads it from: {', '.join(sources)})" if sources else ""
            problems.append({"column": column.name, "message": f"missing required column {column.name!r}{hint}"})
    for target in {t for t in targets if t is not None}:
        if target not in by_name:
            problems.append({"column": target, "message": f"the map names an unknown column {target!r}"})
        elif targets.count(target) > 1:
            sources = [h for h, t in zip(header, targets, strict=True) if t == target]
            problems.append({"column": target, "message": f"{', '.join(map(repr, sources))} all map to {target!r}"})
    if problems:
        listed = "; ".join(p["message"] for p in problems)
        raise InvalidInput(f"{name}: {listed}", details=[{"file": name, **p} for p in problems])
    return targets, cmap


def _table_rows(
    lines: Iterator[tuple[int, list[str]]],
    name: str,
    by_name: dict[str, Column],
    ignore_unknown: bool,
    column_map: str | None,
    result: ParseResult,
) -> Raw:
    """Rows of a table (a CSV file's, a sheet's): (line the row starts on, cells), the header first."""
    try:
        _, first = next(lines)
    except StopIteration:
        raise InvalidInput(f"{name}: file is empty (expected a header row)", details=[{"file": name}]) from None
    header = [title.strip() for title in first]
    targets, cmap = _plan(name, header, by_name, ignore_unknown, column_map, result)
    width = len(targets)
    for row, cells in lines:
        if not any(cell.strip() for cell in cells):
            continue
        problems: list[Problem] = []
        if any(cell.strip() for cell in cells[width:]):
            problems.append((None, f"row has {len(cells)} cells but the header has {len(header)}"))
        elif cmap is None and not ignore_unknown:
            untitled = [i for i, (c, t) in enumerate(zip(cells, targets, strict=False), 1) if t is None and c.strip()]
            if untitled:
                problems.append((None, f"column {untitled[0]} has no name, but this row has a value in it"))
        raw = {t: cell for t, cell in zip(targets, cells, strict=False) if t is not None}
        raw.update({t: "" for t in targets[len(cells) :] if t is not None})
        yield row, cmap.apply(raw) if cmap else raw, problems, True


class _Counted(io.RawIOBase):
    """A binary file that reports how many bytes have been read from it (for a progress bar)."""

    def __init__(self, raw: io.BufferedReader, advance: Callable[[int], None]):
        self.raw, self.advance, self.high = raw, advance, 0  # high: the furthest byte read (a re-read after a seek
        # to the start, once the delimiter is found, is not counted twice)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def close(self) -> None:
        self.raw.close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        position = self.raw.tell()
        if position > self.high:
            self.advance(position - self.high)
            self.high = position
        return n or 0


def _csv_lines(handle: TextIO, name: str) -> Iterator[tuple[int, list[str]]]:
    # strict: a quote that is never closed is an error at the end of the file, not a cell that swallows every
    # row after it (which used to be reported as "stage: a value is required" on the row it started in)
    # a cell beyond csv's default 128 kB limit is read whole, so that the column's own check names it
    # ("column 'name': too long"); the limit (process-wide in the csv module) only guards memory
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CELL))
    delimiter = crm.sniff_delimiter(handle.readline(MAX_CELL))
    handle.seek(0)
    reader = csv.reader(handle, strict=True, delimiter=delimiter)
    line = 0
    try:
        for cells in reader:
            row, line = line + 1, reader.line_num  # a record may span lines: name its first
            yield row, cells
    except csv.Error as exc:
        start = line + 1  # the line the record being read began on
        if "unexpected end of data" in str(exc):
            message = (
                f'{name} line {start}: a quoted cell that starts on this line is never closed (an unmatched " '
                f"runs to the end of the file, line {reader.line_num})"
            )
        elif "field larger than field limit" in str(exc):
            message = f"{name} line {start}: a cell is over {csv.field_size_limit():,} characters (max {MAX_TEXT:,})"
        else:
            message = f"{name} line {reader.line_num}: unreadable CSV: {exc}"
        raise InvalidInput(message, details=[{"file": name, "row": start}]) from None


class _DuplicateKey(ValueError):
    pass


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _DuplicateKey(key)
        obj[key] = value
    return obj


def _jsonl_rows(handle: TextIO, name: str) -> Raw:
    empty = True
    for row, line in enumerate(handle, 1):
        if not line.strip():
            continue
        empty = False
        try:
            obj = json.loads(line, object_pairs_hook=_no_duplicate_keys)
        except RecursionError:
            yield (
                row,
                {"_raw": line[:200]},
                [(None, f"not valid JSON here: nested deeper than {MAX_DEPTH} levels")],
                False,
            )
            continue
        except _DuplicateKey as exc:
            yield row, {"_raw": line.rstrip("\r\n")}, [(str(exc), "key appears twice in this object")], False
            continue
        except json.JSONDecodeError as exc:
            problem = f"not valid JSON: {exc.msg} (at character {exc.colno})"
            yield row, {"_raw": line.rstrip("\r\n")}, [(None, problem)], False
            continue
        if isinstance(obj, dict) and (bad := json_problem(obj)):
            where, what = bad
            column = re.split(r"[.\[]", where, maxsplit=1)[0]
            yield row, {"_raw": line.rstrip("\r\n")[:200]}, [(column, what)], False
        elif isinstance(obj, dict):
            yield row, obj, [], True
        else:
            yield row, {"_raw": line.rstrip("\r\n")}, [(None, f"not a JSON object: {_show(obj)}")], False
    if empty:
        raise InvalidInput(f"{name}: file is empty", details=[{"file": name}])


def _decode_error(path: Path, name: str) -> InvalidInput:
    data = path.read_bytes()
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        data[skip:].decode("utf-8")
        offset = -1
    except UnicodeDecodeError as exc:
        offset = exc.start + skip
    line = data.count(b"\n", 0, offset) + 1
    return InvalidInput(
        f"{name}: not valid UTF-8 (byte offset {offset}, line {line}); save the file as UTF-8",
        details=[{"file": name, "byte_offset": offset, "line": line}],
    )


# -- public API


def parse_file(
    path: str | Path,
    kind: str,
    *,
    stages: Sequence[str] = DEFAULT_STAGES,
    signal_kinds: Sequence[str] = SIGNAL_KINDS,
    known_accounts: Container[str] | None = None,
    ignore_unknown: bool = False,
    default_capacity: int | None = None,
    column_map: str | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
) -> ParseResult:
    """Read and validate one CSV (``.csv``, ``.tsv``), spreadsheet (``.xlsx``, its first sheet) or JSON Lines
    (``.jsonl``/``.ndjson``) file. ``column_map``: a preset (``refmatch.crm.PRESETS``) or a TOML map file;
    None finds a preset from the header of a known export; "none" never maps. ``progress("reading FILE", bytes)``
    gives the function told of each chunk read."""
    name, path = str(path), Path(path)
    columns = columns_for(kind, stages=stages, signal_kinds=signal_kinds, default_capacity=default_capacity)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(
            f"{name}: unsupported file type (expected .csv, .tsv, .xlsx, .jsonl or .ndjson)", details=[{"file": name}]
        )
    if not path.exists():
        raise InvalidInput(f"file not found: {name}", details=[{"file": name}])
    if not path.is_file():
        raise InvalidInput(f"not a file: {name}", details=[{"file": name}])
    validator = _Validator(kind, name, columns, known_accounts, ignore_unknown)
    result = validator.result
    by_name = validator.by_name
    try:
        if fmt == "xlsx":
            lines = enumerate(crm.xlsx_rows(path), 1)
            rows = _table_rows(lines, name, by_name, ignore_unknown, column_map, result)
            for row, raw, problems, readable in rows:
                validator.add(row, raw, problems, readable)
            return result
        advance = progress(f"reading {path.name}", path.stat().st_size) if progress else (lambda _n: None)
        counted = io.BufferedReader(_Counted(path.open("rb"), advance))
        with io.TextIOWrapper(counted, encoding="utf-8-sig", newline="" if fmt == "csv" else None) as handle:
            if fmt == "csv":
                rows = _table_rows(_csv_lines(handle, name), name, by_name, ignore_unknown, column_map, result)
            else:
                rows = _jsonl_rows(handle, name)
            for row, raw, problems, readable in rows:
                validator.add(row, raw, problems, readable)
    except UnicodeDecodeError:
        raise _decode_error(path, name) from None
    return result


def parse_rows(
    rows: Iterable[dict[str, Any]],
    kind: str,
    *,
    source: str,
    stages: Sequence[str] = DEFAULT_STAGES,
    signal_kinds: Sequence[str] = SIGNAL_KINDS,
    known_accounts: Container[str] | None = None,
    ignore_unknown: bool = False,
    default_capacity: int | None = None,
) -> ParseResult:
    """Validate rows already decoded from JSON (an API body); rows are numbered from 1."""
    columns = columns_for(kind, stages=stages, signal_kinds=signal_kinds, default_capacity=default_capacity)
    validator = _Validator(kind, source, columns, known_accounts, ignore_unknown)
    for row, raw in enumerate(rows, 1):
        if isinstance(raw, dict):
            validator.add(row, raw)
        else:
            validator.add(row, {"_raw": raw}, [(None, f"not a JSON object: {_show(raw)}")], readable=False)
    return validator.result


def _cell(value: Any) -> str:
    if value is None or isinstance(value, str):
        return value or ""
    if isinstance(value, list) and all(isinstance(x, str) for x in value):
        return ";".join(value)
    return json.dumps(value, ensure_ascii=False)


def write_rejects(result: ParseResult, path: str | Path) -> None:
    """Write the rejected rows as read, plus ``row`` and ``errors``: CSV for ``.csv``, else JSON Lines."""
    path = Path(path)
    extra = ("_row", "_errors", "row", "errors")
    rows = [
        {**{k: v for k, v in r.items() if k not in extra}, "row": r["_row"], "errors": r["_errors"]}
        for r in result.rejected_rows
    ]
    with path.open("w", encoding="utf-8", newline="") as handle:
        if path.suffix.lower() != ".csv":
            handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
            return
        names = list(dict.fromkeys(k for r in rows for k in r if k not in ("row", "errors")))
        writer = csv.DictWriter(handle, fieldnames=[*names, "row", "errors"], restval="")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _cell(v) for k, v in r.items()} | {"errors": "; ".join(r["errors"])})
