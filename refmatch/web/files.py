"""A list as a file to save: the one response the UI's ``?format=`` downloads and the API's exports give."""

from __future__ import annotations

from flask import Response

from refmatch.app import tables


def file_response(t: tables.Table, fmt: str, label: str | None = None) -> Response:
    """The table as CSV or XLSX, with its media type and a name saying what it is and when."""
    return Response(
        tables.encode(t, fmt),
        mimetype=tables.MEDIA[tables.check_format(fmt)],
        headers={"Content-Disposition": f'attachment; filename="{tables.filename(label or t.name, fmt)}"'},
    )
