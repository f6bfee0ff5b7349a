"""A run's matches as CSV or JSON Lines, written whole or not at all.

Rows go to a temporary file beside the target, which is fsynced and renamed over it:
a reader sees the previous file or the complete new one, never a torn one. In CSV the
reasons are joined with `` | `` (they contain commas); in JSON Lines they are a list.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from refmatch.batch.params import EXPORT_SUFFIXES
from refmatch.domain.errors import InvalidInput

COLUMNS = ("run_id", "purpose", "seeker", "seeker_name", "rank", "advocate", "advocate_name", "score", "reasons")
REASON_SEPARATOR = " | "


def flat_rows(rows: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, Any]]:
    """Export rows as a table holds them: the reasons joined with `` | `` (as in the CSV export)."""
    for row in rows:
        yield {**row, "reasons": REASON_SEPARATOR.join(row["reasons"])}


def write_export(rows: Iterable[Mapping[str, Any]], path: str | Path) -> int:
    """Write ``rows`` (dicts with COLUMNS; reasons a list) to ``path`` atomically; return the row count."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise InvalidInput(f"out: must end in {' or '.join(EXPORT_SUFFIXES)}, got {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    count = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            if suffix == ".csv":
                writer = csv.writer(fh)
                writer.writerow(COLUMNS)
                for flat in flat_rows(rows):
                    writer.writerow([flat[c] for c in COLUMNS])
                    count += 1
            else:
                for row in rows:
                    fh.write(json.dumps({c: row[c] for c in COLUMNS}, ensure_ascii=False) + "\n")
                    count += 1
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; an export is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename durable where directories can be opened
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return count


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
