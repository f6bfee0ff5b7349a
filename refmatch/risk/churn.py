"""Churn events: the labelled history that episodes end in and that ``risk fit`` learns from.

Read like the other imports (CSV or JSON Lines, every problem named by file, row and
column, nothing written if any row is bad) but kept here, beside the only code that uses it.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Container, Iterable, Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any

from refmatch.errors import InvalidInput
from refmatch.importing import RowError
from refmatch.store.repo import UpsertCounts, account_ids_by_external

COLUMNS = ("account_external_id", "churned_on", "reason")
REQUIRED = ("account_external_id", "churned_on")


def _rows(path: Path, name: str) -> Iterator[tuple[int, dict[str, Any]]]:
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in REQUIRED if c not in header]
            unknown = [c for c in header if c not in COLUMNS]
            if not header or missing or unknown:
                problem = f"missing column(s) {', '.join(missing)}" if missing or not header else ""
                problem += ("; " if problem else "") + (f"unknown column(s) {', '.join(unknown)}" if unknown else "")
                raise InvalidInput(f"{name}: {problem or 'no header'} (expected columns: {', '.join(COLUMNS)})")
            reader.fieldnames = header
            for raw in reader:
                yield reader.line_num, raw
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8-sig") as handle:
            for line_no, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        obj = {"_error": f"not valid JSON: {exc.msg}"}
                    yield line_no, obj if isinstance(obj, dict) else {"_error": "not a JSON object"}
    else:
        raise InvalidInput(f"{name}: unsupported file type (expected .csv, .jsonl or .ndjson)")


def parse_churn(path: str | Path, known_accounts: Container[str]) -> tuple[list[dict[str, Any]], list[RowError], int]:
    """(records, errors, rows read) of a churn file; each record has account_external_id, churned_on, reason."""
    name, file = str(path), Path(path)
    if not file.is_file():
        raise InvalidInput(f"file not found: {name}")
    records, errors, count = [], [], 0
    seen: dict[tuple[str, str], int] = {}
    try:
        rows = list(_rows(file, name))
    except UnicodeDecodeError:
        raise InvalidInput(f"{name}: not valid UTF-8; save the file as UTF-8") from None
    for row, raw in rows:
        count += 1
        if "_error" in raw:
            errors.append(RowError(name, row, None, raw["_error"]))
            continue
        problems = [(k, "unknown column") for k in raw if k not in COLUMNS]
        values = {k: str(raw.get(k) or "").strip() for k in COLUMNS}
        for column in REQUIRED:
            if not values[column]:
                problems.append((column, "a value is required"))
        if values["account_external_id"] and values["account_external_id"] not in known_accounts:
            problems.append(("account_external_id", f"unknown account {values['account_external_id']!r}"))
        if values["churned_on"]:
            try:
                date.fromisoformat(values["churned_on"])
                if len(values["churned_on"]) != 10:
                    raise ValueError
            except ValueError:
                problems.append(("churned_on", f"not a valid date (expected YYYY-MM-DD): {values['churned_on']!r}"))
        key = (values["account_external_id"], values["churned_on"])
        if not problems and seen.setdefault(key, row) != row:
            first = seen[key]
            problems.append(("churned_on", f"duplicate churn of {key[0]!r} on {key[1]} (first seen in row {first})"))
        errors += [RowError(name, row, column, message) for column, message in problems]
        if not problems:
            records.append({**values, "reason": values["reason"] or None})
    return records, errors, count


def upsert_churn(conn: sqlite3.Connection, records: Iterable[Mapping[str, Any]]) -> UpsertCounts:
    records = list(records)
    ids = account_ids_by_external(conn, (r["account_external_id"] for r in records))
    counts = UpsertCounts()
    for rec in records:
        account_id = ids[rec["account_external_id"]]
        row = conn.execute(
            "SELECT id, reason FROM churn_events WHERE account_id = ? AND churned_on = ?",
            (account_id, rec["churned_on"]),
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO churn_events (account_id, churned_on, reason) VALUES (?, ?, ?)",
                (account_id, rec["churned_on"], rec["reason"]),
            )
            counts.inserted += 1
        elif row[1] == rec["reason"]:
            counts.unchanged += 1
        else:
            conn.execute("UPDATE churn_events SET reason = ? WHERE id = ?", (rec["reason"], row[0]))
            counts.updated += 1
    return counts
