"""Imports from the UI: a file uploaded, imported on a thread of its own, its progress and outcome on a page."""

import io
import json
import time

import pytest
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from refmatch.app import imports
from tests import web_support
from tests.web_support import csrf_of, login

app = web_support.app
cheap_hashes = web_support.cheap_hashes
client = web_support.client

HEADER = "external_id,name,industry,employees,country,region,products,stage,stage_since,health,profile\n"


def post(client, url: str, data: dict):
    """POST a multipart form with its CSRF token, encoded in memory (the test client would spool a large one to
    a temporary file that nothing closes when the app refuses the body)."""
    boundary, body = encode_multipart({"csrf_token": csrf_of(client), **data})
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


def upload(client, body: str, name: str = "accounts.csv", **form):
    file = FileStorage(io.BytesIO(body.encode()), filename=name)
    return post(client, "/import", {"kind": "accounts", "file": file, **form})


def finished(app, response) -> imports.Job:
    assert response.status_code == 302, response.get_data(as_text=True)
    job_id = response.headers["Location"].rsplit("/", 1)[1]
    settings = app.extensions["refmatch"].service.settings
    deadline = time.monotonic() + 60
    while (job := imports.get(settings, job_id)).status == "running":
        assert time.monotonic() < deadline, job
        time.sleep(0.05)
    return job


def test_a_manager_imports_a_file_and_follows_it_to_the_end(app, client, monkeypatch):
    phases = []
    real_write = imports._write
    monkeypatch.setattr(imports, "_write", lambda s, job: (phases.append(job.phase), real_write(s, job))[1])
    login(client, "manager")
    assert 'href="/import"' in client.get("/").get_data(as_text=True)
    rows = "".join(f"N{i},New {i},Logistics,{10 + i},Ireland,EMEA,Flow WMS,prospect,2026-01-0{i},,a new one\n"
                   for i in range(1, 4))  # fmt: skip
    response = upload(client, HEADER + rows)
    job = finished(app, response)
    assert job.status == "done" and job.report["inserted"] == 3 and job.filename == "accounts.csv"
    assert "reading" in " ".join(phases) and "writing accounts" in phases and phases[-1] == "finished"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Done: accounts: imported 3 rows from accounts.csv: 3 inserted" in page
    assert 'http-equiv="refresh"' not in page  # it stops refreshing once done
    account = client.get("/accounts/N2").get_data(as_text=True)
    assert "New 2" in account
    listing = client.get("/import").get_data(as_text=True)
    assert "accounts.csv" in listing and "done" in listing
    assert not list(imports.folder(app.extensions["refmatch"].service.settings).glob(".*.csv"))  # upload removed


def test_a_refused_file_names_each_row_and_column_and_writes_nothing(app, client):
    login(client, "manager")
    bad = HEADER + "Z1,Zed,Logistics,many,Ireland,EMEA,Flow WMS,prospect,2026-01-01,,x\n"
    job = finished(app, upload(client, bad, name="crm export.csv"))
    assert job.status == "failed" and "crm export.csv" in job.error and ".imports" not in job.error
    assert job.details[0]["row"] == 2 and job.details[0]["column"] == "employees"
    page = client.get(f"/imports/{job.id}").get_data(as_text=True)
    assert "Refused:" in page and "<td>employees</td>" in page
    assert client.get("/accounts/Z1").status_code == 404
    dry = finished(app, upload(client, HEADER.replace("\n", "") + "\nZ2,Zed,Logistics,5,Ireland,EMEA,,prospect,,,x\n",
                               dry_run="1"))  # fmt: skip
    assert dry.status == "done" and dry.report["dry_run"] and client.get("/accounts/Z2").status_code == 404


@pytest.mark.parametrize(
    ("form", "name", "field"),
    [({"kind": "nonsense"}, "a.csv", "kind"), ({}, "a.pdf", "file"), ({"map": "oracle"}, "a.csv", "map")],
)
def test_bad_choices_are_named_beside_their_fields(client, form, name, field):
    login(client, "manager")
    response = upload(client, HEADER, name=name, **form)
    assert response.status_code == 400
    assert f'id="{field}-error"' in response.get_data(as_text=True)


def test_only_managers_import(client):
    login(client, "sales")
    assert client.get("/import").status_code == 403
    assert upload(client, HEADER).status_code == 403
    assert 'href="/import"' not in client.get("/").get_data(as_text=True)


def test_a_large_upload_is_taken_and_the_limit_holds_elsewhere(app, client, monkeypatch):
    login(client, "manager")
    big = HEADER + "".join(f"B{i},Big {i},Retail,5,Ireland,EMEA,Insight,prospect,,,{'x' * 200}\n" for i in range(8000))
    assert len(big) > 1024 * 1024  # beyond the app's body limit for every other route
    job = finished(app, upload(client, big, name="big.csv"))
    assert job.status == "done" and job.report["inserted"] == 8000
    monkeypatch.setattr(imports, "MAX_UPLOAD_BYTES", 1000)
    refused = upload(client, big, name="big.csv")
    assert refused.status_code == 413 and "limit 1,000 bytes" in refused.get_data(as_text=True)
    assert post(client, "/notifications/mine", {"email": "x" * (2 * 1024 * 1024)}).status_code == 413
    monkeypatch.setattr(imports, "MAX_UPLOAD_BYTES", 100_000)
    assert upload(client, big[:20_000], name="big.csv").status_code == 302


def test_a_job_whose_server_died_reads_as_interrupted(app):
    settings = app.extensions["refmatch"].service.settings
    imports.folder(settings).mkdir(parents=True, exist_ok=True)
    job = imports.Job("abc123", "accounts", "a.csv", "manager", "2026-12-01T10:00:00+00:00", beat=time.time() - 600)
    imports._write(settings, job)
    assert json.loads((imports.folder(settings) / "abc123.json").read_text())["status"] == "running"
    assert imports.get(settings, "abc123").status == "interrupted"  # its heartbeat stopped ten minutes ago
    with pytest.raises(imports.NotFound):
        imports.get(settings, "../etc")
