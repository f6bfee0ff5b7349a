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
