"""Writes and reads of the domain tables. Upserts are keyed by the CRM's external id.

Each ``upsert_*`` runs inside the caller's transaction (see ``db.transaction``) and
returns counts of inserted / updated / unchanged rows, so an import is all or nothing.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from refmatch.domain import clock
from refmatch.store.db import inserted_id

SIZE_BANDS = ((1, "1-9"), (10, "10-49"), (50, "50-249"), (250, "250-999"), (1000, "1000-4999"), (5000, "5000+"))


def now_iso() -> str:
    return clock.now().isoformat()


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def need_key(text: str) -> str:
    """Needs are upserted by (account, text) ignoring case and spacing."""
    return " ".join(text.split()).casefold()


def size_band(employees: int | None) -> str | None:
    if employees is None:
        return None
    band = "0"
    for low, name in SIZE_BANDS:
        if employees >= low:
            band = name
    return band


@dataclass
class UpsertCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged}


def _j(value: Iterable[str] | None) -> str:
    return json.dumps(list(value or []), ensure_ascii=False)


def account_ids_by_external(conn: sqlite3.Connection, external_ids: Iterable[str] | None = None) -> dict[str, int]:
    if external_ids is None:
        return dict(conn.execute("SELECT external_id, id FROM accounts"))
    wanted = list(dict.fromkeys(external_ids))
    out: dict[str, int] = {}
    for i in range(0, len(wanted), 500):
        chunk = wanted[i : i + 500]
        marks = ",".join("?" * len(chunk))
        out.update(conn.execute(f"SELECT external_id, id FROM accounts WHERE external_id IN ({marks})", chunk))
    return out


_ACCOUNT_COLUMNS = (
    "name", "industry", "employees", "size_band", "country", "region", "products", "stage",
    "stage_since", "health", "arr", "renewal_date", "owner", "profile", "do_not_match",
)  # fmt: skip


def upsert_accounts(conn: sqlite3.Connection, records: Iterable[Mapping[str, Any]]) -> UpsertCounts:
    counts = UpsertCounts()
    stamp = now_iso()
    for rec in records:
        values = {
            "name": rec["name"],
            "industry": rec.get("industry"),
            "employees": rec.get("employees"),
            "size_band": size_band(rec.get("employees")),
            "country": rec.get("country"),
            "region": rec.get("region"),
            "products": _j(rec.get("products")),
            "stage": rec["stage"],
            "stage_since": rec.get("stage_since"),
            "health": rec.get("health"),
            "arr": rec.get("arr"),
            "renewal_date": rec.get("renewal_date"),
            "owner": rec.get("owner"),
            "profile": rec.get("profile"),
            "do_not_match": _j(rec.get("do_not_match")),
        }
        cols = ", ".join(_ACCOUNT_COLUMNS)
        row = conn.execute(f"SELECT id, {cols} FROM accounts WHERE external_id = ?", (rec["external_id"],)).fetchone()
        if row is None:
            cur = conn.execute(
                f"INSERT INTO accounts (external_id, {cols}, created_at, updated_at) "
                f"VALUES (?, {', '.join('?' * len(_ACCOUNT_COLUMNS))}, ?, ?)",
                (rec["external_id"], *values.values(), stamp, stamp),
            )
            account_id = inserted_id(cur)
            counts.inserted += 1
            _record_stage(conn, account_id, values["stage"], values["stage_since"], stamp)
            continue
        account_id, old = row[0], dict(zip(_ACCOUNT_COLUMNS, row[1:]))
        if old == values:
            counts.unchanged += 1
            continue
        sets = ", ".join(f"{c} = ?" for c in _ACCOUNT_COLUMNS)
        conn.execute(f"UPDATE accounts SET {sets}, updated_at = ? WHERE id = ?", (*values.values(), stamp, account_id))
        if old["stage"] != values["stage"]:
            _record_stage(conn, account_id, values["stage"], values["stage_since"], stamp)
        counts.updated += 1
    return counts


def _record_stage(conn: sqlite3.Connection, account_id: int, stage: str, since: str | None, stamp: str) -> None:
    conn.execute(
        "INSERT INTO stage_history (account_id, stage, entered_on, recorded_at) VALUES (?, ?, ?, ?)",
        (account_id, stage, since or stamp[:10], stamp),
    )


def upsert_needs(conn: sqlite3.Connection, records: Iterable[Mapping[str, Any]]) -> UpsertCounts:
    records = list(records)
    ids = account_ids_by_external(conn, (r["account_external_id"] for r in records))
    counts = UpsertCounts()
    stamp = now_iso()
    for rec in records:
        account_id = ids[rec["account_external_id"]]
        key = need_key(rec["need"])
        values = (rec["need"], rec["status"], rec.get("met_on"), rec.get("product"))
        row = conn.execute(
            "SELECT id, text, status, met_on, product FROM needs WHERE account_id = ? AND text_key = ?",
            (account_id, key),
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO needs (account_id, text, text_key, status, met_on, product, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (account_id, *values[:1], key, *values[1:], stamp),
            )
            counts.inserted += 1
        elif tuple(row[1:]) == values:
            counts.unchanged += 1
        else:
            conn.execute(
                "UPDATE needs SET text = ?, status = ?, met_on = ?, product = ?, updated_at = ? WHERE id = ?",
                (*values, stamp, row[0]),
            )
            counts.updated += 1
    return counts


_ADVOCATE_COLUMNS = (
    "consent", "reference_types", "capacity_per_quarter", "contact_name", "contact_title",
    "contact_email", "blackout_until", "topics",
)  # fmt: skip


def upsert_advocates(conn: sqlite3.Connection, records: Iterable[Mapping[str, Any]]) -> UpsertCounts:
    records = list(records)
    ids = account_ids_by_external(conn, (r["account_external_id"] for r in records))
    counts = UpsertCounts()
    stamp = now_iso()
    cols = ", ".join(_ADVOCATE_COLUMNS)
    for rec in records:
        account_id = ids[rec["account_external_id"]]
        values = (
            int(bool(rec["consent"])),
            _j(rec.get("reference_types")),
            rec.get("capacity_per_quarter"),
            rec.get("contact_name"),
            rec.get("contact_title"),
            rec.get("contact_email"),
            rec.get("blackout_until"),
            rec.get("topics"),
        )
        row = conn.execute(f"SELECT {cols} FROM advocates WHERE account_id = ?", (account_id,)).fetchone()
        if row is None:
            conn.execute(
                f"INSERT INTO advocates (account_id, {cols}, updated_at) VALUES (?, {', '.join('?' * len(values))}, ?)",
                (account_id, *values, stamp),
            )
            counts.inserted += 1
        elif tuple(row) == values:
            counts.unchanged += 1
        else:
            sets = ", ".join(f"{c} = ?" for c in _ADVOCATE_COLUMNS)
            conn.execute(
                f"UPDATE advocates SET {sets}, updated_at = ? WHERE account_id = ?", (*values, stamp, account_id)
            )
            counts.updated += 1
    return counts


def upsert_keyed_value(
    conn: sqlite3.Connection,
    records: Iterable[Mapping[str, Any]],
    *,
    table: str,
    keys: tuple[str, ...],
    value: str,
) -> UpsertCounts:
    """Upsert rows identified by (account, *keys) that carry one value (signals, churn events)."""
    records = list(records)
    ids = account_ids_by_external(conn, (r["account_external_id"] for r in records))
    counts = UpsertCounts()
    where = " AND ".join(f"{k} = ?" for k in ("account_id", *keys))
    columns = ", ".join(("account_id", *keys, value))
    marks = ", ".join("?" * (len(keys) + 2))
    for rec in records:
        key = (ids[rec["account_external_id"]], *(rec[k] for k in keys))
        row = conn.execute(f"SELECT id, {value} FROM {table} WHERE {where}", key).fetchone()
        if row is None:
            conn.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", (*key, rec[value]))
            counts.inserted += 1
        elif row[1] == rec[value]:
            counts.unchanged += 1
        else:
            conn.execute(f"UPDATE {table} SET {value} = ? WHERE id = ?", (rec[value], row[0]))
            counts.updated += 1
    return counts


def upsert_signals(conn: sqlite3.Connection, records: Iterable[Mapping[str, Any]]) -> UpsertCounts:
    return upsert_keyed_value(conn, records, table="signals", keys=("observed_on", "kind"), value="value")


UPSERTS = {
    "accounts": upsert_accounts,
    "needs": upsert_needs,
    "advocates": upsert_advocates,
    "signals": upsert_signals,
}


def account_row(conn: sqlite3.Connection, external_id: str) -> dict[str, Any] | None:
    conn.row_factory = sqlite3.Row
    try:
        row = conn.execute("SELECT * FROM accounts WHERE external_id = ?", (external_id,)).fetchone()
    finally:
        conn.row_factory = None
    if row is None:
        return None
    out = dict(row)
    out["products"] = json.loads(out["products"])
    out["do_not_match"] = json.loads(out["do_not_match"])
    return out


def profile_text(name: str, industry: str | None, profile: str | None) -> str:
    """The text embedded for an account: its profile, or its name and industry when it has none."""
    if profile and profile.strip():
        return profile.strip()
    return f"{name}. {industry}." if industry else f"{name}."


def indexed_texts(conn: sqlite3.Connection, kind: str) -> tuple[list[int], list[str]]:
    """(ids, texts) of everything the ``profiles`` or ``needs`` index should hold."""
    if kind == "profiles":
        rows = conn.execute("SELECT id, name, industry, profile FROM accounts ORDER BY id").fetchall()
        return [r[0] for r in rows], [profile_text(r[1], r[2], r[3]) for r in rows]
    if kind == "needs":
        rows = conn.execute("SELECT id, text FROM needs ORDER BY id").fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]
    raise ValueError(f"unknown index kind: {kind}")


def weights_in_use(conn: sqlite3.Connection) -> dict[str, float] | None:
    """The match weights of the fit in use (``refmatch weights use``), or None for the hand-set settings."""
    row = conn.execute("SELECT weights FROM weight_fits WHERE in_use = 1").fetchone()
    return json.loads(row[0]) if row else None
