"""An in-memory, column-wise snapshot of what matching reads, rebuilt per data version.

Eligibility is a handful of NumPy comparisons over these arrays, so filtering 100k
accounts costs well under a millisecond; per-row Python is kept to the candidates.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

import numpy as np

from refmatch.domain import clock
from refmatch.match.lexical import LexicalIndex
from refmatch.match.risk_view import RiskView, load_risk_view
from refmatch.store.db import data_version
from refmatch.store.usage import slots_used


def _ordinal(value: str | None) -> int:
    return date.fromisoformat(value).toordinal() if value else 0


# Every value derived from a catalog and memoised on it (Catalog.memo), with what it reads: "accounts"
# (the full load), "usage" (the slot counts, which with_usage replaces), "index" (which rows the served
# index snapshot lacks, which with_unindexed replaces).
DERIVED: dict[str, frozenset[str]] = {
    "by_external": frozenset({"accounts"}),
    "offers": frozenset({"accounts"}),
    "product_columns": frozenset({"accounts"}),
    "log_size": frozenset({"accounts"}),
    "codes": frozenset({"accounts"}),
    "blocked": frozenset({"accounts"}),
    "lexical": frozenset({"accounts"}),  # match.lexical: BM25 postings over every met need
    "capacity": frozenset({"accounts"}),  # match.eligibility
    "standing": frozenset({"accounts", "index"}),  # match.eligibility
    "available": frozenset({"accounts", "usage", "index"}),  # match.eligibility: who has a slot left
}


@dataclass
class Catalog:
    data_version: int
    today: date
    stages: tuple[str, ...]
    live_rank: int
    # accounts, sorted by id
    ids: np.ndarray
    external_ids: list[str]
    names: list[str]
    industry: list[str | None]
    region: list[str | None]
    country: list[str | None]
    employees: np.ndarray
    stage_rank: np.ndarray
    health: np.ndarray
    live_since: list[str | None]
    products: list[frozenset[str]]
    product_vocab: dict[str, int]
    product_matrix: np.ndarray  # (accounts, products) bool
    do_not_match: dict[int, frozenset[str]]
    # advocates, aligned with accounts (row i = account ids[i])
    is_advocate: np.ndarray
    consent: np.ndarray
    reference_types: list[frozenset[str]]
    capacity: np.ndarray
    used_quarter: np.ndarray
    used_90d: np.ndarray
    blackout_until: np.ndarray  # ordinal, 0 = none
    # needs
    need_ids: np.ndarray
    need_account_row: np.ndarray
    need_status: np.ndarray  # 0 open, 1 in_progress, 2 met
    need_text: dict[int, str]
    met_need_order: np.ndarray  # indices into need arrays of met needs, grouped by account row
    met_need_start: np.ndarray  # CSR offsets per account row into met_need_order
    open_need_order: np.ndarray  # the same for open and in-progress needs
    open_need_start: np.ndarray
    risk: RiskView = field(default_factory=RiskView)  # at-risk rows, troubles now and overcome
    catalog_version: int | None = None  # meta's catalog_version when loaded (None: an older schema)
    base: object = field(default_factory=object)  # identity of the full load, kept by with_usage
    memos: dict[str, dict] = field(default_factory=dict, repr=False, compare=False)  # see memo()
    # rows whose profile or a met need the served index snapshot lacks (new or changed text since the
    # build): never proposed until the next build (with_unindexed); None: the snapshot holds every row
    unindexed: np.ndarray | None = None

    def memo(self, name: str, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()``, computed once per (``name``, ``key``) for this catalog.

        ``name`` must be declared in DERIVED with what it reads, so that ``with_usage``
        knows which results stay true when only the slot counts change.
        """
        if name not in DERIVED:
            raise KeyError(f"catalog memo {name!r} is not declared in DERIVED (say what it reads)")
        cache = self.memos.setdefault(name, {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]

    def row(self, account_id: int) -> int:
        pos = int(np.searchsorted(self.ids, account_id))
        if pos >= len(self.ids) or self.ids[pos] != account_id:
            raise KeyError(account_id)
        return pos

    def rows(self, account_ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.ids, account_ids)

    def row_by_external(self, external_id: str) -> int | None:
        index = self.memo("by_external", None, lambda: {e: i for i, e in enumerate(self.external_ids)})
        return index.get(external_id)

    def offers(self, reference_type: str) -> np.ndarray:
        """Boolean mask of the accounts whose advocate row offers ``reference_type`` (cached)."""
        return self.memo(
            "offers",
            reference_type,
            lambda: np.fromiter((reference_type in t for t in self.reference_types), dtype=bool, count=len(self.ids)),
        )

    def met_needs_of(self, row: int) -> np.ndarray:
        """Need ids the account at ``row`` has met."""
        return self.need_ids[self.met_need_order[self.met_need_start[row] : self.met_need_start[row + 1]]]

    def open_needs_of(self, account_id: int) -> list[int]:
        row = self.row(account_id)
        return self.need_ids[self.open_need_order[self.open_need_start[row] : self.open_need_start[row + 1]]].tolist()

    def product_columns(self) -> np.ndarray:
        """``product_matrix`` transposed and contiguous: one row of flags per product (cached)."""
        return self.memo("product_columns", None, lambda: np.ascontiguousarray(self.product_matrix.T))

    def log_size(self) -> np.ndarray:
        """log10(employees + 1) per row, NaN where unknown (cached)."""
        return self.memo("log_size", None, lambda: np.log10(self.employees + 1))

    def lexical(self) -> LexicalIndex:
        """BM25 posting lists over every met need (cached; match.lexical)."""

        def compute() -> LexicalIndex:
            order = self.met_need_order
            texts = [self.need_text[int(i)] for i in self.need_ids[order]]
            return LexicalIndex.build(texts, self.need_account_row[order])

        return self.memo("lexical", None, compute)

    def met_needs_of_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(need ids the accounts at ``rows`` have met, one run per row in order; each run's length)."""
        first = self.met_need_start[rows]
        counts = self.met_need_start[rows + 1] - first
        starts = np.cumsum(counts) - counts
        runs = np.arange(int(counts.sum()), dtype=np.int64) + np.repeat(first - starts, counts)
        return self.need_ids[self.met_need_order[runs]], counts

    def codes(self, column: str) -> tuple[np.ndarray, dict[str, int]]:
        """A text column (``industry``, ``region``) as integer codes of its casefolded values (-1: none), cached."""

        def compute() -> tuple[np.ndarray, dict[str, int]]:
            vocab: dict[str, int] = {}
            values = [(v or "").casefold() for v in getattr(self, column)]
            codes = np.fromiter(
                (vocab.setdefault(v, len(vocab)) if v else -1 for v in values), dtype=np.int64, count=len(values)
            )
            return codes, vocab

        return self.memo("codes", column, compute)

    def blocked_rows(self, external_id: str) -> list[int]:
        """Rows of the accounts whose do-not-match list names ``external_id`` (index built once)."""

        def compute() -> dict[str, list[int]]:
            index: dict[str, list[int]] = {}
            for account_id, blocked in self.do_not_match.items():
                for e in blocked:
                    index.setdefault(e, []).append(self.row(account_id))
            return index

        return self.memo("blocked", None, compute).get(external_id, [])


def catalog_version(conn: sqlite3.Connection) -> int | None:
    """meta's catalog_version, which triggers bump on any change the catalog reads but request use."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'catalog_version'").fetchone()
    return None if row is None else int(row[0])


def _usage(conn: sqlite3.Connection, ids: np.ndarray, today: date) -> tuple[np.ndarray, np.ndarray]:
    """Slots each account's advocate has used this quarter and in the last 90 days."""
    used_q = np.zeros(len(ids), dtype=np.int64)
    used_90 = np.zeros(len(ids), dtype=np.int64)
    used = slots_used(conn, today)
    if used:
        rows = np.searchsorted(ids, np.fromiter((u[0] for u in used), dtype=np.int64, count=len(used)))
        used_q[rows] = [u[1] for u in used]
        used_90[rows] = [u[2] for u in used]
    return used_q, used_90


def with_usage(catalog: Catalog, conn: sqlite3.Connection) -> Catalog:
    """The catalog with fresh slot counts: all that changes when requests are created or move on.

    Reading reference_requests is milliseconds where a full load is seconds at 100k accounts.
    """
    version = data_version(conn)  # before the read: a write in between makes the next check reload
    used_q, used_90 = _usage(conn, catalog.ids, catalog.today)
    kept = {name: cache for name, cache in catalog.memos.items() if "usage" not in DERIVED[name]}
    return replace(catalog, data_version=version, used_quarter=used_q, used_90d=used_90, memos=kept)


def with_unindexed(catalog: Catalog, profile_ids: np.ndarray, need_ids: np.ndarray) -> Catalog:
    """The catalog as matching must see it beside an index snapshot that lacks these profiles and needs.

    An account is left out of every advocate pool while its profile, or one of the needs
    it has met, is not in the snapshot with its current text: it could not be scored, or
    would be scored on text it no longer has. Nothing else changes, so matching answers
    from one consistent snapshot while new text waits for the next build.
    """
    rows = np.zeros(len(catalog.ids), dtype=bool)
    if len(profile_ids):
        at = np.searchsorted(catalog.ids, profile_ids)
        known = at < len(catalog.ids)
        known[known] &= catalog.ids[at[known]] == profile_ids[known]
        rows[at[known]] = True
    if len(need_ids):
        met = catalog.need_status == 2
        hit = np.isin(catalog.need_ids, need_ids) & met
        rows[catalog.need_account_row[hit]] = True
    if not rows.any() and catalog.unindexed is None:
        return catalog
    kept = {name: cache for name, cache in catalog.memos.items() if "index" not in DERIVED[name]}
    return replace(catalog, unindexed=rows if rows.any() else None, memos=kept)


def load_catalog(conn: sqlite3.Connection, stages: tuple[str, ...], today: date | None = None) -> Catalog:
    """Everything matching reads about accounts, from one snapshot of the database.

    The reads share one read transaction (unless the caller holds one): an import landing
    between them would otherwise leave stage history, advocates or needs naming an account
    the account list does not have.
    """
    if conn.in_transaction:
        return _load_catalog(conn, stages, today)
    conn.execute("BEGIN")
    try:
        catalog = _load_catalog(conn, stages, today)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return catalog


def _load_catalog(conn: sqlite3.Connection, stages: tuple[str, ...], today: date | None) -> Catalog:
    today = today or clock.today()
    version, base_version = data_version(conn), catalog_version(conn)  # before the reads, as with_usage
    rank = {s: i for i, s in enumerate(stages)}
    live_rank = stages.index("onboarding") + 1 if "onboarding" in stages else 1
    rows = conn.execute(
        "SELECT id, external_id, name, industry, region, country, employees, stage, health, products, do_not_match "
        "FROM accounts ORDER BY id"
    ).fetchall()
    n = len(rows)
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
    product_sets: dict[str, frozenset[str]] = {}  # few distinct lists: parse each once

    def product_set(text: str) -> frozenset[str]:
        found = product_sets.get(text)
        if found is None:
            found = product_sets[text] = frozenset(p.casefold() for p in json.loads(text))
        return found

    products = [product_set(r[9]) for r in rows]
    vocab: dict[str, int] = {}
    for ps in products:
        for p in sorted(ps):
            vocab.setdefault(p, len(vocab))
    pm = np.zeros((n, max(1, len(vocab))), dtype=bool)
    for i, ps in enumerate(products):
        for p in ps:
            pm[i, vocab[p]] = True
    stage_rank = np.fromiter((rank.get(r[7], -1) for r in rows), dtype=np.int64, count=n)

    live_since: list[str | None] = [None] * n
    live = [
        (account_id, entered)
        for account_id, stage, entered in conn.execute(
            "SELECT account_id, stage, entered_on FROM stage_history ORDER BY entered_on"
        )
        if rank.get(stage, -1) >= live_rank
    ]
    if live:  # the first live stage entered, per account
        live_rows = np.searchsorted(ids, np.fromiter((a for a, _ in live), dtype=np.int64, count=len(live)))
        for row, first in zip(*np.unique(live_rows, return_index=True)):
            live_since[int(row)] = live[int(first)][1]

    is_adv = np.zeros(n, dtype=bool)
    consent = np.zeros(n, dtype=bool)
    ref_types: list[frozenset[str]] = [frozenset()] * n
    capacity = np.zeros(n, dtype=np.int64)
    blackout = np.zeros(n, dtype=np.int64)
    advocates = conn.execute(
        "SELECT account_id, consent, reference_types, capacity_per_quarter, blackout_until FROM advocates"
    ).fetchall()
    type_sets: dict[str, frozenset[str]] = {}
    adv_rows = np.searchsorted(ids, np.fromiter((a[0] for a in advocates), dtype=np.int64, count=len(advocates)))
    for row, (_, c, types, cap, until) in zip(adv_rows.tolist(), advocates):
        is_adv[row] = True
        consent[row] = bool(c)
        if types not in type_sets:
            type_sets[types] = frozenset(json.loads(types))
        ref_types[row] = type_sets[types]
        capacity[row] = -1 if cap is None else cap  # -1: the default capacity applies
        blackout[row] = _ordinal(until)

    used_q, used_90 = _usage(conn, ids, today)

    needs = conn.execute("SELECT id, account_id, status, text FROM needs ORDER BY id").fetchall()
    status_code = {"open": 0, "in_progress": 1, "met": 2}
    need_ids = np.fromiter((r[0] for r in needs), dtype=np.int64, count=len(needs))
    need_rows = np.searchsorted(ids, np.fromiter((r[1] for r in needs), dtype=np.int64, count=len(needs)))
    need_status = np.fromiter((status_code[r[2]] for r in needs), dtype=np.int8, count=len(needs))
    met = np.flatnonzero(need_status == 2)
    met_order = met[np.argsort(need_rows[met], kind="stable")]
    met_start = np.searchsorted(need_rows[met_order], np.arange(n + 1))
    unmet = np.flatnonzero(need_status < 2)
    open_order = unmet[np.argsort(need_rows[unmet], kind="stable")]
    open_start = np.searchsorted(need_rows[open_order], np.arange(n + 1))

    return Catalog(
        data_version=version,
        today=today,
        stages=stages,
        live_rank=live_rank,
        ids=ids,
        external_ids=[r[1] for r in rows],
        names=[r[2] for r in rows],
        industry=[r[3] for r in rows],
        region=[r[4] for r in rows],
        country=[r[5] for r in rows],
        employees=np.array([np.nan if r[6] is None else r[6] for r in rows], dtype=np.float64),
        stage_rank=stage_rank,
        health=np.array([np.nan if r[8] is None else r[8] for r in rows], dtype=np.float64),
        live_since=live_since,
        products=products,
        product_vocab=vocab,
        product_matrix=pm,
        do_not_match={int(ids[i]): frozenset(json.loads(r[10])) for i, r in enumerate(rows) if r[10] != "[]"},
        is_advocate=is_adv,
        consent=consent,
        reference_types=ref_types,
        capacity=capacity,
        used_quarter=used_q,
        used_90d=used_90,
        blackout_until=blackout,
        need_ids=need_ids,
        need_account_row=need_rows,
        need_status=need_status,
        need_text={r[0]: r[3] for r in needs},
        met_need_order=met_order,
        met_need_start=met_start,
        open_need_order=open_order,
        open_need_start=open_start,
        risk=load_risk_view(conn, ids),
        catalog_version=base_version,
    )
