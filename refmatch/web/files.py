"""A list as a file to save: the one response the UI's ``?format=`` downloads and the API's exports give."""

from __future__ import annotations

import sqlite3

from flask import Response

from refmatch import batch
from refmatch.app import tables


def file_response(t: tables.Table, fmt: str, label: str | None = None) -> Response:
    """The table as CSV or XLSX, with its media type and a name saying what it is and when."""
    return Response(
        tables.encode(t, fmt),
        mimetype=tables.MEDIA[tables.check_format(fmt)],
        headers={"Content-Disposition": f'attachment; filename="{tables.filename(label or t.name, fmt)}"'},
    )


def run_table(conn: sqlite3.Connection, run_id: int) -> tables.Table:
    """A batch run's matches, as ``refmatch batch runs export`` writes them (the reasons joined the same way)."""
    batch.get_run(conn, run_id)
    rows = [[r[c] for c in batch.EXPORT_COLUMNS] for r in batch.export_rows(batch.result_rows(conn, run_id))]
    return tables.Table(f"run-{run_id}", batch.EXPORT_COLUMNS, rows)
