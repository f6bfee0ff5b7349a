"""Open the SQLite database: WAL, foreign keys, numbered migrations applied on open.

The database is the source of truth. ``data_version`` in ``meta`` goes up with every
committed write, so an index manifest can say which state of the data it describes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from refmatch.domain.errors import StorageError
from refmatch.store import search

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def _load_migrations() -> tuple[str, ...]:
    """``migrations/NNNN_name.sql``, numbered 1, 2, 3... without gaps."""
    files = sorted(MIGRATIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.sql"))
    numbers = [int(f.name[:4]) for f in files]
    if numbers != list(range(1, len(files) + 1)):
        raise RuntimeError(f"migrations must be numbered 1..n without gaps, found {numbers}")
    return tuple(f.read_text(encoding="utf-8") for f in files)


MIGRATIONS: tuple[str, ...] = _load_migrations()


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations the database has not seen; each in its own transaction."""
    current = schema_version(conn)
    if current > len(MIGRATIONS):
        from refmatch.domain.errors import ConfigError

        raise ConfigError(
            f"database schema version {current} is newer than this refmatch ({len(MIGRATIONS)}): upgrade refmatch"
        )
    for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
        conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    return schema_version(conn)


def open_db(path: str | Path, *, create: bool = True) -> sqlite_utils.Database:
    """Open (and migrate) the database. ``create=False`` refuses a file that does not exist."""
    path = Path(path)
    if str(path) != ":memory:":
        if not path.exists() and not create:
            from refmatch.domain.errors import NotFound

            raise NotFound(f"database not found: {path} (run 'refmatch init' or 'refmatch demo' first)")
        path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn)
    db = sqlite_utils.Database(conn)
    ensure_search(db)
    return db


# what a reset reports it removed: the tables people would miss
RESET_COUNTED = {"accounts": "accounts", "reference_requests": "requests", "users": "users",
                 "batch_runs": "batch runs", "outbox": "notifications"}  # fmt: skip


def reset_keeping_embeddings(path: str | Path) -> tuple[dict[str, int], int]:
    """Start the database at ``path`` afresh but for its embedding cache, so nothing is embedded again.

    Returns (rows removed, by what people call them; cached embeddings kept). The new file is
    built beside the old one and swapped in whole, so a crash leaves one or the other.
    """
    path = Path(path)
    if not path.exists():
        return {}, 0
    fresh = path.with_name(path.name + ".reset")
    for suffix in ("", "-wal", "-shm"):
        Path(str(fresh) + suffix).unlink(missing_ok=True)
    db = open_db(fresh)
    conn = db.conn
    try:
        conn.execute("ATTACH DATABASE ? AS old", (str(path),))
        have = {r[0] for r in conn.execute("SELECT name FROM old.sqlite_master WHERE type = 'table'")}
        removed = {
            label: conn.execute(f"SELECT COUNT(*) FROM old.{table}").fetchone()[0]
            for table, label in RESET_COUNTED.items()
            if table in have
        }
        kept = 0
        if "embeddings" in have:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO main.embeddings SELECT * FROM old.embeddings")
            conn.execute("COMMIT")
            kept = conn.execute("SELECT COUNT(*) FROM main.embeddings").fetchone()[0]
        conn.execute("DETACH DATABASE old")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
        Path(str(fresh) + suffix).unlink(missing_ok=True)
    os.replace(fresh, path)
    return removed, kept


@contextmanager
def transaction(db: sqlite_utils.Database | sqlite3.Connection, *, bump: bool = True) -> Iterator[sqlite3.Connection]:
    """One write transaction, everything or nothing; the one way anything writes.

    ``bump`` (the default) raises data_version, telling every process that the data
    changed. Bookkeeping that matching never reads (batch checkpoints, failed sign-ins)
    passes ``bump=False`` so that it does not make the servers reload.
    """
    conn = db.conn if isinstance(db, sqlite_utils.Database) else db
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        raise storage_error(exc, conn) or exc from None
    try:
        yield conn
        if bump:
            conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'data_version'")
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:  # SQLite rolls back by itself on some errors (a full disk): do not hide the cause
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError) and (known := storage_error(exc, conn)):
            raise known from None
        raise


# SQLite's error name -> what it means for whoever has to act on it
_STORAGE = {
    "SQLITE_READONLY": "is read-only: nothing can be written (check the file's and its folder's permissions, "
    "and the mount)",
    "SQLITE_FULL": "could not be written: the disk is full (free some space and try again)",
    "SQLITE_BUSY": "is busy: another process held its write lock for too long (try again)",
    "SQLITE_IOERR": "could not be written or read: an I/O error (check the disk)",
    "SQLITE_CANTOPEN": "could not be opened (check that its folder exists and can be written)",
}


def storage_error(exc: sqlite3.Error, conn: sqlite3.Connection | None = None) -> StorageError | None:
    """The StorageError an SQLite error means (read-only, disk full, busy, I/O), or None for any other error."""
    name = (getattr(exc, "sqlite_errorname", "") or "").split("_")[:2]
    meaning = _STORAGE.get("_".join(name))
    if meaning is None:
        return None
    where = "the database"
    try:
        if conn is not None and (row := conn.execute("PRAGMA database_list").fetchone()) and row[2]:
            where = f"the database {row[2]}"
    except sqlite3.Error:
        pass
    return StorageError(f"{where} {meaning}; nothing was changed ({exc})")


def inserted_id(cursor: sqlite3.Cursor) -> int:
    """The row id an INSERT just made (sqlite3 types it as optional; after an INSERT it is set)."""
    if cursor.lastrowid is None:
        raise RuntimeError("no row was inserted")
    return int(cursor.lastrowid)


def connection(db: sqlite_utils.Database | sqlite3.Connection) -> sqlite3.Connection:
    """The sqlite3 connection behind ``db``, which may already be one."""
    return db.conn if isinstance(db, sqlite_utils.Database) else db


def data_version(db: sqlite_utils.Database | sqlite3.Connection) -> int:
    conn = connection(db)
    return int(conn.execute("SELECT value FROM meta WHERE key = 'data_version'").fetchone()[0])


def ensure_search(db: sqlite_utils.Database) -> None:
    """Create (or rebuild, after SEARCHED changed) the FTS tables and their triggers; once per database."""
    conn = db.conn
    if _search_config(conn) == search.CONFIG:
        return
    with transaction(db, bump=False):  # bookkeeping: the data matching reads does not change
        if _search_config(conn) == search.CONFIG:  # another process did it meanwhile
            return
        for table, columns in search.SEARCHED.items():
            db.table(table).enable_fts(columns, create_triggers=True, tokenize=search.TOKENIZE, replace=True)
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('search_config', ?)", (search.CONFIG,))


def _search_config(conn: sqlite3.Connection) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = 'search_config'").fetchone()
    return row[0] if row else None
