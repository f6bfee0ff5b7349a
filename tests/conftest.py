import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from refmatch.app.service import Service
from refmatch.config import load_settings
from refmatch.embed.fake import FakeEncoder
from tests.e2e_demo import demo_build, demo_dir, demo_server  # noqa: F401 - session fixtures, defined once

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_SHM = Path("/dev/shm")


def pytest_configure(config):
    """Temporary folders in memory (tmpfs) where the machine has one: SQLite's fsyncs then cost nothing,
    which on a busy shared disk was most of the suite's wall time. REFMATCH_TEST_DISK=1, or
    --basetemp, keeps them on disk (and after the run, to look at)."""
    if config.option.basetemp or os.environ.get("REFMATCH_TEST_DISK") or not os.access(_SHM, os.W_OK):
        return
    config.option.basetemp = tempfile.mkdtemp(prefix="refmatch-tests-", dir=_SHM)
    config._refmatch_shm = config.option.basetemp


def pytest_unconfigure(config):
    folder = getattr(config, "_refmatch_shm", None)
    if folder:  # memory, not disk: give it back
        shutil.rmtree(folder, ignore_errors=True)


def write_csv(path: Path, rows: list[dict]) -> Path:
    columns: list[str] = []
    for row in rows:
        for key in row:
            if key not in columns:
                columns.append(key)
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ";".join(v) if isinstance(v, list) else v for k, v in row.items()})
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def settings(tmp_path):
    return load_settings({"db": str(tmp_path / "refmatch.db"), "index_dir": str(tmp_path / "indexes")}, env={})


@pytest.fixture
def encoder():
    return FakeEncoder()


@pytest.fixture
def service(settings, encoder):
    svc = Service(settings, encoder=encoder)
    yield svc
    svc.close()


def account(external_id, stage="value", **extra):
    row = {
        "external_id": external_id,
        "name": extra.pop("name", f"Company {external_id}"),
        "industry": "Logistics",
        "employees": 500,
        "country": "Ireland",
        "region": "EMEA",
        "products": ["Flow WMS"],
        "stage": stage,
        "stage_since": "2024-01-15",
        "health": 85,
        "profile": f"{external_id} runs regional distribution centres for retailers",
    }
    row.update(extra)
    return row


def advocate(external_id, **extra):
    row = {
        "account_external_id": external_id,
        "consent": "true",
        "reference_types": ["call", "mentoring", "peer_call"],
        "capacity_per_quarter": 3,
        "contact_name": "Pat Murphy",
    }
    row.update(extra)
    return row


def build_world(service: Service, folder: Path) -> Service:
    """A small, hand-built world where the right answers are known.

    P1 (a logistics prospect evaluating Flow WMS) has two open needs. A1 met both, A2
    one, A3 none; every other advocate is ineligible for exactly one reason.
    """

    warehouse = "consolidate regional warehouses onto one wms"
    sso = "single sign on with azure ad"
    accounts = [
        account("P1", stage="prospect", do_not_match=["A8"], profile="P1 distribution centres retailers logistics"),
        account("A1", employees=600),
        account("A2", stage="expansion", employees=5000),
        account("A3", stage="adoption", industry="Retail", region="NA", profile="A3 sells shoes online"),
        account("A4"),  # no consent
        account("A5"),  # at capacity
        account("A6"),  # blackout
        account("A7", stage="prospect"),  # not further along
        account("A8"),  # excluded by the seeker (competitor)
        account("A9", health=40),  # unhealthy
        account("A10", products=["Ledger"]),  # other product
        account("A11"),  # offers only logos
        account("C1", stage="onboarding"),  # a customer, no advocate row
    ]
    needs = [
        {"account_external_id": "P1", "need": warehouse, "status": "open"},
        {"account_external_id": "P1", "need": sso, "status": "in_progress"},
        {"account_external_id": "A1", "need": warehouse, "status": "met", "met_on": "2024-06-01"},
        {"account_external_id": "A1", "need": sso, "status": "met", "met_on": "2024-07-01"},
        {"account_external_id": "A2", "need": sso, "status": "met", "met_on": "2024-07-01"},
        {"account_external_id": "A3", "need": "faster month end close", "status": "met"},
    ]
    for other in ("A4", "A5", "A6", "A7", "A8", "A9", "A10", "A11"):
        needs.append({"account_external_id": other, "need": warehouse, "status": "met"})
        needs.append({"account_external_id": other, "need": sso, "status": "met"})
    advocates = [
        advocate("A1"),
        advocate("A2"),
        advocate("A3"),
        advocate("A4", consent="false"),
        advocate("A5", capacity_per_quarter=0),
        advocate("A6", blackout_until="2999-01-01"),
        advocate("A7"),
        advocate("A8"),
        advocate("A9"),
        advocate("A10"),
        advocate("A11", reference_types=["logo"]),
    ]
    service.import_file("accounts", write_csv(folder / "accounts.csv", accounts))
    service.import_file("needs", write_csv(folder / "needs.csv", needs))
    service.import_file("advocates", write_csv(folder / "advocates.csv", advocates))
    service.build_indexes()
    return service


@pytest.fixture(scope="session")
def world_template(tmp_path_factory) -> Path:
    """The world built once per session (database and indexes); each test gets a copy."""
    folder = tmp_path_factory.mktemp("world")
    settings = load_settings({"db": str(folder / "refmatch.db"), "index_dir": str(folder / "indexes")}, env={})
    svc = Service(settings, encoder=FakeEncoder())
    build_world(svc, folder)
    svc.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    svc.close()
    return folder


@pytest.fixture
def world(world_template, service):
    """A private copy of the world (see build_world): copying two files beats rebuilding it in every test."""
    shutil.copyfile(world_template / "refmatch.db", service.settings.db_path)
    shutil.copytree(world_template / "indexes", service.settings.index_path)
    secret = world_template / "refmatch.db.secret"
    if secret.exists():
        shutil.copyfile(secret, str(service.settings.db_path) + ".secret")
    return service
