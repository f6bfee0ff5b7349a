"""The committed demo dataset (refmatch/demo_data) is what scripts/make_demo_data.py makes,
is documented and well-formed, and its planted evaluation cases hold."""

import csv
import importlib.util
import io
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "make_demo_data.py"
DATA = REPO / "refmatch" / "demo_data"
TODAY = "2026-11-27"


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_demo_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _rows(name):
    return list(csv.DictReader(io.StringIO((DATA / name).read_text(encoding="utf-8"))))


@pytest.fixture(scope="module")
def data():
    accounts = _rows("accounts.csv")
    return {
        "accounts": accounts,
        "by_id": {a["external_id"]: a for a in accounts},
        "needs": _rows("needs.csv"),
        "advocates": _rows("advocates.csv"),
        "signals": _rows("signals.csv"),
        "known": json.loads((DATA / "known_matches.json").read_text(encoding="utf-8")),
    }


def _source_or_skip():
    for folder in gen.SOURCE_DIRS:
        if (folder / gen.SOURCE_NAME).exists():
            return folder / gen.SOURCE_NAME
    pytest.skip(f"{gen.SOURCE_NAME} not available (shared/data missing)")


def test_committed_files_equal_a_fresh_run(tmp_path):
    source = _source_or_skip()
    subprocess.run(
        [sys.executable, str(SCRIPT), "--seed", "7", "--out", str(tmp_path), "--source", str(source)],
        check=True,
        capture_output=True,
    )
    for name in gen.FILES:
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), f"{name} is stale: regenerate"


def test_generator_is_deterministic_and_seed_matters():
    source = _source_or_skip()
    first = gen.generate(7, source)
    assert first == gen.generate(7, source)
    assert gen.generate(8, source)["accounts.csv"] != first["accounts.csv"]


def test_committed_files_pass_the_generators_validation():
    gen.validate({name: (DATA / name).read_text(encoding="utf-8") for name in gen.FILES})


def test_readme_states_real_or_generated_for_every_column():
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    for name in ["accounts.csv", "needs.csv", "advocates.csv", "signals.csv"]:
        header = (DATA / name).read_text(encoding="utf-8").splitlines()[0].split(",")
        for column in header:
            assert f"| {name} | `{column}` | REAL |" in readme or f"| {name} | `{column}` | GENERATED |" in readme, (
                name,
                column,
            )
    for real in ["name", "industry", "employees"]:
        assert f"| accounts.csv | `{real}` | REAL |" in readme
    assert "| accounts.csv | `profile` | GENERATED |" in readme and "No text of the source's `Description`" in readme
    for text in [
        "Irish Times Top 1000 companies spreadsheet by Alice Corona (github.com/ali-ce/datasets)",
        "CC BY-SA 4.0",
        "modified",
        "--seed 7",
        "python3 scripts/make_demo_data.py",
    ]:
        assert text in readme, text


def test_no_profile_reuses_the_source_descriptions(data):
    """The descriptions' publisher granted no licence: the profiles are written from facts, sharing no phrase."""
    source = _source_or_skip()
    with open(source, newline="", encoding="utf-8") as fh:
        descriptions = " ".join(gen.clean_text(r["Description"]).lower() for r in csv.DictReader(fh))
    for account in data["accounts"]:
        words = account["profile"].replace(account["name"], "(name)").lower().split()  # a long name is a fact
        runs = [" ".join(words[i : i + 8]) for i in range(len(words) - 7)]
        assert not [r for r in runs if r in descriptions], account["external_id"]
        assert account["name"] in account["profile"]


def test_licence_file_has_attribution_modification_and_licence():
    licence = (DATA / "LICENSE.txt").read_text(encoding="utf-8")
    for text in [
        "Irish Times Top 1000 companies spreadsheet by",
        "Alice Corona (github.com/ali-ce/datasets)",
        "MODIFIED",
        "CC BY-SA 4.0",
        "https://creativecommons.org/licenses/by-sa/4.0/legalcode",
    ]:
        assert text in licence, text
    for folder in gen.SOURCE_DIRS:
        original = folder / gen.SOURCE_NAME.replace(".csv", ".LICENSE.txt")
        if original.exists():
            assert original.read_text(encoding="utf-8").rstrip("\n") in licence


def test_columns_are_exactly_the_import_format():
    expected = {name: [c for c, _, _ in cols] for name, cols in gen.COLUMNS.items()}
    assert expected["accounts.csv"] == [
        "external_id",
        "name",
        "industry",
        "employees",
        "country",
        "region",
        "products",
        "stage",
        "stage_since",
        "health",
        "arr",
        "renewal_date",
        "owner",
        "profile",
        "do_not_match",
    ]
    for name, columns in expected.items():
        assert (DATA / name).read_text(encoding="utf-8").splitlines()[0] == ",".join(columns)


def test_counts_are_sane(data):
    accounts, needs, advocates = data["accounts"], data["needs"], data["advocates"]
    assert 900 <= len(accounts) <= 973
    stages = Counter(a["stage"] for a in accounts)
    for stage, share in gen.STAGE_SHARE.items():
        assert abs(stages[stage] / len(accounts) - share) < 0.02, stage
    churned = {c["account_external_id"] for c in _rows("churn.csv")}
    assert len(churned) == gen.CHURN_COUNT
    customers = [a for a in accounts if a["stage"] != "prospect" and a["external_id"] not in churned]
    assert all(a["arr"] and a["renewal_date"] > TODAY and a["health"] for a in customers)
    assert all(not data["by_id"][c]["renewal_date"] and data["by_id"][c]["stage"] != "prospect" for c in churned)
    assert all(not a["arr"] and not a["renewal_date"] for a in accounts if a["stage"] == "prospect")
    at_risk = [a for a in customers if int(a["health"]) < 50]
    assert 0.10 <= len(at_risk) / len(customers) <= 0.15
    pool = [a for a in customers if a["stage"] in ("adoption", "value", "expansion") and int(a["health"]) >= 60]
    assert 0.35 <= len(advocates) / len(pool) <= 0.48  # chosen from the pool before the former customers left
    assert {v["account_external_id"] for v in advocates} <= {a["external_id"] for a in pool}
    assert 0.7 <= Counter(v["consent"] for v in advocates)["true"] / len(advocates) < 1
    blackouts = [v["blackout_until"] for v in advocates if v["blackout_until"]]
    assert any(b > TODAY for b in blackouts) and any(b < TODAY for b in blackouts)
    assert len(gen.load_catalogue()) >= 60
    per_account = Counter(n["account_external_id"] for n in needs)
    for a in accounts:
        low, high = (2, 4) if a["stage"] == "prospect" else (2, 6)
        assert low <= per_account[a["external_id"]] <= high, a["external_id"]
    for n in needs:
        account = data["by_id"][n["account_external_id"]]
        assert n["product"] in account["products"].split(";"), n
        if account["stage"] == "prospect":
            assert n["status"] in ("open", "in_progress"), n
    dnm = [a for a in accounts if a["do_not_match"]]
    assert len(dnm) >= 6
    for a in dnm:
        for other in a["do_not_match"].split(";"):
            assert a["external_id"] in data["by_id"][other]["do_not_match"].split(";")
            assert data["by_id"][other]["industry"] == a["industry"]


def test_signals_cover_customers_only(data):
    churned = {c["account_external_id"]: c["churned_on"] for c in _rows("churn.csv")}
    by_account = {}
    for s in data["signals"]:
        by_account.setdefault(s["account_external_id"], []).append(s)
    for a in data["accounts"]:
        rows = by_account.get(a["external_id"], [])
        if a["stage"] == "prospect":
            assert not rows
            continue
        days = sorted({s["observed_on"] for s in rows})
        last = churned[a["external_id"]][:8] + "01" if a["external_id"] in churned else "2026-11-01"
        assert days[-1] == last and len(days) <= 9
        last_health = [s["value"] for s in rows if s["kind"] == "health" and s["observed_on"] == days[-1]]
        assert last_health == [a["health"]]
    kinds = Counter(s["kind"] for s in data["signals"])
    assert set(kinds) == {"health", "usage", "open_tickets", "escalation", "nps", "champion_left"}


def test_open_and_met_wordings_rarely_coincide(data):
    met = {n["need"] for n in data["needs"] if n["status"] == "met"}
    open_texts = [n["need"] for n in data["needs"] if n["status"] != "met"]
    assert sum(t in met for t in open_texts) / len(open_texts) < 0.2


def test_known_matches_hold(data):
    by_id, known = data["by_id"], data["known"]
    advocates = {v["account_external_id"]: v for v in data["advocates"]}
    key_of = {text: need["key"] for need in gen.load_catalogue() for text in need["variants"]}
    met_keys = {}
    for n in data["needs"]:
        if n["status"] == "met":
            met_keys.setdefault(n["account_external_id"], set()).add(key_of[n["need"]])
    assert len(known) >= 5
    assert len({k["seeker"] for k in known}) == len({k["advocate"] for k in known}) == len(known)
    for case in known:
        seeker, adv = by_id[case["seeker"]], by_id[case["advocate"]]
        row, product = advocates[case["advocate"]], case["product"]
        assert case["why"] and case["purpose"] == "reference"
        assert seeker["stage"] == "prospect" and product in seeker["products"].split(";")
        assert adv["stage"] in ("value", "expansion") and int(adv["health"]) >= 75
        assert adv["industry"] == seeker["industry"] and product in adv["products"].split(";")
        assert row["consent"] == "true" and "call" in row["reference_types"].split(";")
        assert int(row["capacity_per_quarter"]) >= 3 and row["blackout_until"] == ""
        assert case["advocate"] not in seeker["do_not_match"].split(";")
        seeker_needs = [n for n in data["needs"] if n["account_external_id"] == case["seeker"]]
        assert seeker_needs and all(n["status"] in ("open", "in_progress") for n in seeker_needs)
        open_keys = {key_of[n["need"]] for n in seeker_needs}
        assert open_keys <= met_keys[case["advocate"]], case
        adv_met_texts = {
            n["need"] for n in data["needs"] if n["account_external_id"] == case["advocate"] and n["status"] == "met"
        }
        assert not adv_met_texts & {n["need"] for n in seeker_needs}, "met needs must be paraphrases"
        for other in advocates:
            if other != case["advocate"]:
                assert len(open_keys & met_keys.get(other, set())) <= 1, (case, other)
        holders = {n["account_external_id"] for n in data["needs"] if key_of[n["need"]] in open_keys}
        assert holders == {case["seeker"], case["advocate"]}, "reserved needs are used elsewhere"


def test_the_demo_loads_its_history_once(tmp_path):
    from refmatch.app import demo
    from refmatch.app import requests as workflow
    from refmatch.app.service import Service
    from refmatch.app.users import User, ensure_demo_users
    from refmatch.config import load_settings
    from refmatch.embed.fake import FakeEncoder

    settings = load_settings({"db": str(tmp_path / "d.db"), "index_dir": str(tmp_path / "idx")}, env={})
    svc = Service(settings, encoder=FakeEncoder())
    said: list[str] = []
    demo.load(svc, echo=said.append)
    rows = list(csv.DictReader(io.StringIO((DATA / "requests.csv").read_text(encoding="utf-8"))))
    assert f"history: {len(rows)} past reference requests, with their events and outcomes" in said
    states = dict(svc.conn.execute("SELECT status, COUNT(*) FROM reference_requests GROUP BY status").fetchall())
    assert set(states) == {"requested", "approved", "scheduled", "completed", "declined", "cancelled"}
    won = svc.conn.execute("SELECT COUNT(*), SUM(influenced_arr) FROM reference_requests WHERE deal_outcome = 'won'")
    count, arr = won.fetchone()
    assert count > 10 and arr > 0
    trail = svc.conn.execute(
        "SELECT e.to_status FROM request_events e JOIN reference_requests r ON r.id = e.request_id "
        "WHERE r.status = 'completed' ORDER BY e.request_id, e.id LIMIT 4"
    ).fetchall()
    assert [t[0] for t in trail] == ["requested", "approved", "scheduled", "completed"]
    viewer = User(id=0, username="x", role="admin")
    overdue, total = workflow.list_requests(svc, viewer, overdue=True, limit=50)
    assert total >= 6 and {v.status for v in overdue} <= {"requested", "approved"}
    assert ensure_demo_users(svc)
    unlinked = svc.conn.execute("SELECT COUNT(*) FROM reference_requests WHERE requested_by_user_id IS NULL")
    assert unlinked.fetchone()[0] == 0
    from refmatch.store.history import load_request_history

    assert load_request_history(svc.db, DATA / "requests.csv", 72) == 0  # once
    svc.close()


def test_the_demo_has_churn_to_learn_from_and_advocates_who_recovered(tmp_path):
    """`risk fit` runs on a fresh demo, and many consenting advocates overcame a risk episode (peer saves)."""
    from refmatch.app import demo
    from refmatch.app import risk as risk_service
    from refmatch.app.service import Service
    from refmatch.config import load_settings
    from refmatch.embed.fake import FakeEncoder

    settings = load_settings({"db": str(tmp_path / "d.db"), "index_dir": str(tmp_path / "idx")}, env={})
    svc = Service(settings, encoder=FakeEncoder())
    said: list[str] = []
    demo.load(svc, echo=said.append)
    assert any(line.startswith(f"churn: imported {gen.CHURN_COUNT} rows") for line in said), said
    outcomes = dict(svc.conn.execute("SELECT outcome, COUNT(*) FROM risk_episodes GROUP BY outcome").fetchall())
    assert outcomes["churned"] >= gen.CHURN_COUNT // 2 and outcomes["resolved"] >= 30
    recovered = svc.conn.execute(
        "SELECT COUNT(DISTINCT e.account_id) FROM risk_episodes e JOIN advocates v ON v.account_id = e.account_id "
        "WHERE v.consent = 1 AND e.outcome = 'resolved'"
    ).fetchone()[0]
    assert recovered >= 30  # was 2 before recoveries were planted
    report = risk_service.fit(svc, as_of="2026-11-27")
    assert report.test["churned"] > 0 and report.train["churned"] > 0 and 0.5 < report.rules.auc <= 1
    svc.close()


def test_the_labelled_need_pairs_come_from_the_catalogue_and_the_hand_checked_file():
    spec = importlib.util.spec_from_file_location("eval_need_claims", REPO / "scripts" / "eval_need_claims.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    texts, pairs = module.labelled_pairs()
    needs = gen.load_catalogue()
    assert len({t for n in needs for t in n["variants"]}) <= len(texts)
    same = sum(s for _, _, s in pairs)
    index = {t: i for i, t in enumerate(texts)}
    with open(module.CHECKED, newline="", encoding="utf-8") as fh:
        checked = list(csv.DictReader(fh))
    labels = {tuple(sorted((index[r["a"]], index[r["b"]]))): r["same"] == "yes" for r in checked}
    assert all((i, j, labels[(i, j)]) in pairs for i, j in labels)  # a person's label is the one used
    assert same >= 3 * len(needs)  # each need's three wordings pair with each other
    chilled = index["Track temperature of chilled stock"]
    stock = index["Know the current stock on hand in each shop in real time"]
    assert (min(chilled, stock), max(chilled, stock), False) in pairs
