"""End to end with the real model, real FAISS indexes and a real SQLite file, through the CLI.

The demo dataset plants known answers (refmatch/demo_data/known_matches.json): a
prospect whose open needs were met, in other words, by one advocate. The real
model has to see through the paraphrases and rank that advocate in the top 3.
"""

import json
import os
import subprocess
import sys
from importlib import resources

import pytest

from tests import e2e_demo

pytestmark = pytest.mark.e2e

KNOWN = json.loads((resources.files("refmatch") / "demo_data" / "known_matches.json").read_text())


def refmatch(tmp, *args, check=True):
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "REFMATCH_DB": str(tmp / "demo.db"),
        "REFMATCH_INDEX_DIR": str(tmp / "idx"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "refmatch", *args], capture_output=True, text=True, env=env, timeout=900
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def demo(demo_build, tmp_path_factory):
    """A fresh copy of the session's demo, untouched by the web tests' requests and approvals."""
    return e2e_demo.demo_copy(demo_build, tmp_path_factory.mktemp("e2e"))


def test_demo_builds_fresh_indexes(demo):
    status = refmatch(demo, "index", "status", "--format", "json")
    data = json.loads(status.stdout)
    assert [d["name"] for d in data] == ["profiles", "needs"]
    assert all(d["fresh"] and d["count"] == d["expected_count"] > 0 for d in data)
    assert refmatch(demo, "index", "verify").stdout.strip() == "indexes verified: every vector matches its text"


@pytest.mark.parametrize("case", KNOWN, ids=[c["seeker"] for c in KNOWN])
def test_known_advocate_in_top_3(demo, case):
    out = json.loads(
        refmatch(
            demo, "match", case["seeker"], "--purpose", case.get("purpose", "reference"), "-k", "3", "--format", "json"
        ).stdout
    )
    top = [m["advocate"]["external_id"] for m in out["matches"]]
    assert case["advocate"] in top, f"{case['why']}\ngot {top}"
    assert out["model"] == "all-MiniLM-L6-v2"
    first = out["matches"][top.index(case["advocate"])]
    assert first["reasons"][0].startswith("met ")


def test_adhoc_text_finds_the_same_advocate(demo):
    case = KNOWN[0]
    db = str(demo / "demo.db")
    import sqlite3

    conn = sqlite3.connect(db)
    industry, profile, products = conn.execute(
        "SELECT industry, profile, products FROM accounts WHERE external_id = ?", (case["seeker"],)
    ).fetchone()
    needs = [r[0] for r in conn.execute(
        "SELECT text FROM needs JOIN accounts ON accounts.id = account_id WHERE external_id = ? AND status != 'met'",
        (case["seeker"],),
    )]  # fmt: skip
    conn.close()
    args = ["match", "--text", profile, "--industry", industry, "--products", ";".join(json.loads(products))]
    for need in needs:
        args += ["--need", need]
    out = json.loads(refmatch(demo, *args, "-k", "3", "--format", "json").stdout)
    assert out["seeker"]["external_id"] is None
    assert case["advocate"] in [m["advocate"]["external_id"] for m in out["matches"]]
