"""SQLite storage: open + migrations (``db``) and the domain tables (``repo``)."""

from refmatch.store.db import connection, data_version, inserted_id, open_db, transaction
from refmatch.store.repo import UPSERTS, UpsertCounts, indexed_texts, text_hash

__all__ = [
    "UPSERTS",
    "UpsertCounts",
    "connection",
    "data_version",
    "inserted_id",
    "indexed_texts",
    "open_db",
    "text_hash",
    "transaction",
]
