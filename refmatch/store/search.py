"""Full-text search over accounts and their needs: SQLite FTS5, set up and kept in step by sqlite-utils.

``accounts_fts`` indexes an account's name, external id, industry, products and profile;
``needs_fts`` each need's text. sqlite-utils creates each FTS5 table as an external-content
table with triggers, so every insert, update and delete of an account or need reaches
the search in the same transaction; nothing can drift. What is searched (SEARCHED and
TOKENIZE) is recorded in ``meta`` as CONFIG: change it and the next open rebuilds both
tables (``refmatch.store.db.ensure_search``).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

SEARCHED = {"accounts": ("name", "external_id", "industry", "products", "profile"), "needs": ("text",)}
TOKENIZE = "porter unicode61 remove_diacritics 2"  # 'warehouses' finds 'warehouse'; 'Sodexo' finds 'Sodéxo'
CONFIG = hashlib.sha256(json.dumps([SEARCHED, TOKENIZE]).encode()).hexdigest()[:16]
_WORD = re.compile(r"\w+", re.UNICODE)


def match_expression(q: str | None) -> str | None:
    """An FTS5 query for what a person typed: every word must appear, each also as a prefix
    ('ware' finds 'warehouse'). Quotes and FTS5 operators in the input are only words here,
    so no input is a syntax error. None when there is no word to search for."""
    words = _WORD.findall(q or "")
    if not words:
        return None
    return " ".join('"' + w.replace('"', "") + '"*' for w in words)


def matching_accounts_sql() -> str:
    """SQL selecting ``(account_id, source, rank)`` for accounts whose own text or any need matches
    the expression bound twice (``?``, ``?``). Order by source, then rank: an account whose own
    text matches (source 0) before one whose needs alone do (1), each by FTS5's bm25 (lower is better)."""
    return (
        "SELECT account_id, MIN(source) AS source, MIN(rank) AS rank FROM ("
        "SELECT rowid AS account_id, 0 AS source, bm25(accounts_fts) AS rank FROM accounts_fts "
        "WHERE accounts_fts MATCH ? "
        "UNION ALL "
        "SELECT n.account_id, 1, bm25(needs_fts) FROM needs_fts JOIN needs n ON n.id = needs_fts.rowid "
        "WHERE needs_fts MATCH ?"
        ") GROUP BY account_id"
    )


_STOP = frozenset("a an and the of to for in on with from by our we us at as is are be it its every each all".split())
LEXICAL_HITS = 200  # met needs read per open need, best first: beyond them the lexical score is 0


def lexical_need_scores(conn: Any, need_texts: list[str]) -> dict[int, float]:
    """Advocate account id -> how well its met needs share the words of these open needs, 0..1.

    For each open need, FTS5's bm25 over the met needs of advocates (any of the need's words,
    common words left out); each advocate's best, divided by the best of any advocate; then
    the mean over the open needs. Words matter where embeddings blur them (product names,
    regulations, systems): scripts/bench_quality.py measures what this adds."""
    total: dict[int, float] = {}
    for text in need_texts:
        words = [w for w in _WORD.findall(text.lower()) if w not in _STOP]
        if not words:
            continue
        found = conn.execute(
            "SELECT n.account_id, -bm25(needs_fts) AS score FROM needs_fts JOIN needs n ON n.id = needs_fts.rowid "
            "WHERE needs_fts MATCH ? AND n.status = 'met' AND n.account_id IN (SELECT account_id FROM advocates) "
            "ORDER BY bm25(needs_fts) LIMIT ?",
            (" OR ".join('"' + w.replace('"', "") + '"' for w in words), LEXICAL_HITS),
        ).fetchall()
        best: dict[int, float] = {}
        for account_id, score in found:
            best[account_id] = max(best.get(account_id, 0.0), score)
        top = max(best.values(), default=0.0)
        if top > 0:
            for account_id, score in best.items():
                total[account_id] = total.get(account_id, 0.0) + score / top
    return {a: v / len(need_texts) for a, v in total.items()} if need_texts else {}
