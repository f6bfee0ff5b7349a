"""The batch job end to end on small worlds whose answers are known (FakeEncoder, temporary files)."""

import csv
import json
import os
from datetime import date, timedelta

import numpy as np
import pytest

from refmatch.app.service import Service
from refmatch.batch import BatchParams, Hooks, RunLocked, diff_runs, get_run, list_runs, resume_batch, run_batch
from refmatch.batch.exports import write_export
from refmatch.batch.lock import run_lock
from refmatch.batch.partitions import PartitionCandidates, search_partition
from refmatch.batch.seekers import at_risk_account_ids, plan, seeker_accounts
from refmatch.domain.errors import ConfigError, Conflict, InvalidInput, NotFound, StaleIndex
from refmatch.embed.fake import FakeEncoder
from refmatch.index.sync import INDEX_NAMES, load_fresh
from refmatch.match import Indexes, load_catalog
from refmatch.match.batch_retrieval import RetrievalContext
from tests.conftest import account, advocate, write_csv

TODAY = date.today().isoformat()


def params(**values):
    values.setdefault("as_of", TODAY)
    return BatchParams.create(values.pop("purpose", "all"), **values)


def results(conn, run_id):
    """A run's matches without what differs between runs by construction (ids, run id, time)."""
    return conn.execute(
        "SELECT m.purpose, s.external_id, m.rank, a.external_id, m.score, m.components, m.reasons, m.model, "
        "m.data_version FROM matches m JOIN accounts s ON s.id = m.seeker_account_id "
        "JOIN accounts a ON a.id = m.advocate_account_id WHERE m.run_id = ? ORDER BY 1, 2, 3",
        (run_id,),
    ).fetchall()


def proposals(conn, run_id):
    out = {}
    for purpose, seeker, _, adv, *_ in results(conn, run_id):
        out.setdefault((purpose, seeker), []).append(adv)
    return out


def loads(conn, run_id):
    return dict(
        conn.execute(
            "SELECT a.external_id, count(*) FROM matches m JOIN accounts a ON a.id = m.advocate_account_id "
            "WHERE run_id = ? GROUP BY 1",
            (run_id,),
        ).fetchall()
    )


def context(service):
    """What the partition steps read: the catalog and both indexes."""
    indexes = Indexes(*(load_fresh(service.conn, service.settings.index_path, n, "fake-bow")[0] for n in INDEX_NAMES))
    catalog = load_catalog(service.conn, service.settings.stages)
    return RetrievalContext.build(catalog, indexes, service.settings.default_capacity)


def add_requests(conn, external_id, n):
    advocate_id = conn.execute("SELECT id FROM accounts WHERE external_id = ?", (external_id,)).fetchone()[0]
    for _ in range(n):
        conn.execute(
            "INSERT INTO reference_requests (advocate_account_id, purpose, status, created_at, updated_at, "
            "approved_at) VALUES (?, 'reference', 'approved', ?, ?, ?)",
            (advocate_id, TODAY, TODAY, TODAY),
        )


# --------------------------------------------------------------------------- who is matched, and how


def flag_at_risk(world, tmp_path, external_id="A9"):
    """Give an account recent signals the risk rules call high risk (as the demo's at-risk customers have)."""
    recent = (date.today() - timedelta(days=5)).isoformat()
    earlier = (date.today() - timedelta(days=60)).isoformat()
    signals = [
        {"account_external_id": external_id, "observed_on": earlier, "kind": "health", "value": 80},
        {"account_external_id": external_id, "observed_on": recent, "kind": "health", "value": 30},
        {"account_external_id": external_id, "observed_on": recent, "kind": "escalation", "value": 1},
        {"account_external_id": external_id, "observed_on": recent, "kind": "nps", "value": 2},
    ]
    world.import_file("signals", write_csv(tmp_path / f"risk-{external_id}.csv", signals))


def test_seekers_per_purpose(world, tmp_path):
    flag_at_risk(world, tmp_path)
    catalog = load_catalog(world.conn, world.settings.stages)
    refs = plan(world.conn, catalog, world.settings, ("reference", "mentor", "retention"), 2)
    ext = dict(world.conn.execute("SELECT id, external_id FROM accounts").fetchall())
    # prospects with an open need or a profile; accounts in onboarding; unhealthy customers
    assert [(r.purpose, ext[r.account_id], r.part) for r in refs] == [
        ("reference", "P1", 0), ("reference", "A7", 0), ("mentor", "C1", 1), ("retention", "A9", 1),
    ]  # fmt: skip


def test_retention_seekers_are_the_risk_modules_at_risk_accounts(world, tmp_path):
    flag_at_risk(world, tmp_path, "A1")
    ext = dict(world.conn.execute("SELECT id, external_id FROM accounts").fetchall())
    assert [ext[i] for i in at_risk_account_ids(world.conn, world.settings)] == ["A1"]


def test_retention_seekers_without_risk_scores_follow_the_latest_health_signal(world, tmp_path):
    signals = [
        {"account_external_id": "A1", "observed_on": "2025-01-01", "kind": "health", "value": 90},
        {"account_external_id": "A1", "observed_on": "2025-03-01", "kind": "health", "value": 30},  # latest: low
        {"account_external_id": "A9", "observed_on": "2025-03-01", "kind": "health", "value": 80},  # latest: fine
    ]
    world.import_file("signals", write_csv(tmp_path / "signals.csv", signals))
    world.conn.execute("DELETE FROM risk_scores")  # a database nobody has scored
    ext = dict(world.conn.execute("SELECT id, external_id FROM accounts").fetchall())
    assert [ext[i] for i in at_risk_account_ids(world.conn, world.settings)] == ["A1"]


def test_greedy_batch_gives_each_seeker_what_match_account_gives(world, tmp_path):
    flag_at_risk(world, tmp_path)
    run = run_batch(world, params(k=3, greedy=True, partition_size=1))
    assert run.status == "done" and run.seekers == 4 and run.partitions == 4
    plain = Service(world.settings.replace(diversity=0.0), encoder=world.encoder)  # score order, as the batch
    try:
        got = results(world.conn, run.id)
        for purpose, seeker in {(r[0], r[1]) for r in got}:
            want = plain.match_account(seeker, purpose=purpose, k=3).matches
            mine = [r for r in got if r[:2] == (purpose, seeker)]
            assert [r[3] for r in mine] == [m.external_id for m in want]
            assert [r[4] for r in mine] == pytest.approx([m.score for m in want], abs=1e-6)
            assert [json.loads(r[6]) for r in mine] == [m.reasons for m in want]
            assert [set(json.loads(r[5])) for r in mine] == [set(m.components) for m in want]
    finally:
        plain.close()
    # the known answer of the world: P1's best three, A8 (P1's competitor) never among them
    assert proposals(world.conn, run.id)[("reference", "P1")] == ["A1", "A2", "A3"]


@pytest.fixture
def paraphrases(tmp_path, service):
    """P1's need was met by six advocates in words more or less like its own; P2's by one only."""
    met = {
        "A1": "consolidate regional warehouses onto one wms",
        "A2": "consolidate regional warehouses onto one platform",
        "A3": "consolidate regional warehouses quickly",
        "A4": "regional warehouses audit",
        "A5": "warehouses audit tooling",
        "A6": "payroll for nurses",
    }
    accounts = [
        account("P1", stage="prospect", profile="cold chain food distribution"),
        account("P2", stage="prospect", profile="hospital supplies"),
    ]
    accounts += [account(a, profile=f"{a} {words} {'food' if a in ('A4', 'A6') else ''}") for a, words in met.items()]
    needs = [
        {"account_external_id": "P1", "need": "consolidate regional warehouses onto one wms", "status": "open"},
        {"account_external_id": "P2", "need": "single sign on with azure ad", "status": "open"},
        {"account_external_id": "A6", "need": "single sign on with azure ad", "status": "met"},
    ]
    needs += [{"account_external_id": a, "need": text, "status": "met"} for a, text in met.items()]
    service.import_file("accounts", write_csv(tmp_path / "accounts.csv", accounts))
    service.import_file("needs", write_csv(tmp_path / "needs.csv", needs))
    service.import_file("advocates", write_csv(tmp_path / "adv.csv", [advocate(a) for a in met]))
    service.build_indexes()
    return service


@pytest.mark.parametrize(
    "k,expected",
    [(1, ["_coverage_exact", "_coverage_from_hits"]), (2, ["_coverage_from_hits", "_coverage_from_hits"])],
)
def test_need_coverage_from_the_search_hits_equals_the_full_computation(paraphrases, k, expected, monkeypatch):
    """With a pool of 3 (k = 1), P1's last need hit still earns credit, so its coverage is computed
    in full; P2's does not, so its coverage comes from the hits. With a pool of 6 (k = 2) both
    come from the hits. Either way each seeker scores as match_account scores it."""
    from refmatch.match import batch_retrieval

    paths = []
    for name in ("_coverage_exact", "_coverage_from_hits"):
        real = getattr(batch_retrieval, name)
        monkeypatch.setattr(batch_retrieval, name, lambda *a, _f=real, _n=name: paths.append(_n) or _f(*a))
    settings = paraphrases.settings.replace(candidates=1, diversity=0.0)
    plain = Service(settings, encoder=paraphrases.encoder)
    try:
        run = run_batch(plain, params(purpose="reference", k=k, greedy=True))
        got = results(plain.conn, run.id)
        for seeker in ("P1", "P2"):
            want = plain.match_account(seeker, k=k).matches
            mine = [r for r in got if r[1] == seeker]
            assert [(r[3], r[4]) for r in mine] == [(m.external_id, pytest.approx(m.score, abs=1e-6)) for m in want]
            assert [json.loads(r[6]) for r in mine] == [m.reasons for m in want]
    finally:
        plain.close()
    assert paths == expected  # P1, then P2


def test_do_not_match_is_honoured_from_an_oversampled_pool(world):
    """With a pool of 3, P1's group hits include its own competitor (A8); P1 still gets 3 others."""
    small = world.settings.replace(candidates=1)
    ctx = context(world)
    catalog = ctx.catalog
    p1 = ctx.seekers(seeker_accounts(world.conn, [catalog.ids[catalog.row_by_external("P1")].item()]))
    found = search_partition(ctx, [(0, "reference", p1[0])], small, k=1, depth=3)
    names = [catalog.external_ids[catalog.row(a)] for a in found.advocate]
    assert "A8" not in names and "P1" not in names
    assert names == ["A1", "A2", "A3"]
    assert found.eligible.tolist() == [3]


# --------------------------------------------------------------------------- capacity


@pytest.fixture
def crowd(tmp_path, service):
    """Eight alike prospects who all want A1 most; four advocates with little room between them."""
    wms, sso = "consolidate regional warehouses onto one wms", "single sign on with azure ad"
    prospects = [f"P{i}" for i in range(1, 9)]
    accounts = [account(p, stage="prospect", profile="distribution centres retailers logistics") for p in prospects]
    accounts += [account("A1"), account("A2"), account("A3", industry="Retail"), account("A4", region="NA")]
    needs = [{"account_external_id": p, "need": n, "status": "open"} for p in prospects for n in (wms, sso)]
    needs += [
        {"account_external_id": "A1", "need": wms, "status": "met"},
        {"account_external_id": "A1", "need": sso, "status": "met"},
        {"account_external_id": "A2", "need": sso, "status": "met"},
    ]
    advocates = [
        advocate("A1", capacity_per_quarter=4),  # 2 of them already used this quarter: room 2
        advocate("A2", capacity_per_quarter=2),
        advocate("A3", capacity_per_quarter=3),
        advocate("A4", capacity_per_quarter=1),
    ]
    service.import_file("accounts", write_csv(tmp_path / "accounts.csv", accounts))
    service.import_file("needs", write_csv(tmp_path / "needs.csv", needs))
    service.import_file("advocates", write_csv(tmp_path / "advocates.csv", advocates))
    add_requests(service.conn, "A1", 2)
    service.build_indexes()
    return service


ROOM = {"A1": 2, "A2": 2, "A3": 3, "A4": 1}


def test_capacity_is_never_exceeded(crowd):
    run = run_batch(crowd, params(purpose="reference", k=2, partition_size=3))
    load = loads(crowd.conn, run.id)
    assert load == ROOM  # every slot used, none beyond
    assert run.report["advocates"]["over_capacity"] == 0
    assert run.report["matches"] == 8
    capped = run_batch(crowd, params(purpose="reference", k=2, per_advocate=1))
    assert loads(crowd.conn, capped.id) == {"A1": 1, "A2": 1, "A3": 1, "A4": 1}


@pytest.fixture
def duel(tmp_path, service):
    """P1 would do well with A1 or A2; P2 only with A1, whom P1 likes slightly more. One slot each."""
    wms, sso = "consolidate regional warehouses onto one wms", "single sign on with azure ad"
    accounts = [
        account("P1", stage="prospect", profile="distribution centres retailers logistics"),
        account("P2", stage="prospect", industry="Retail", profile="shoe shops online"),
        account("A1"),
        account("A2"),
    ]
    needs = [
        {"account_external_id": "P1", "need": wms, "status": "open"},
        {"account_external_id": "P1", "need": sso, "status": "open"},
        {"account_external_id": "P2", "need": sso, "status": "open"},
        {"account_external_id": "A1", "need": wms, "status": "met"},
        {"account_external_id": "A1", "need": sso, "status": "met"},
        {"account_external_id": "A2", "need": wms, "status": "met"},
    ]
    service.import_file("accounts", write_csv(tmp_path / "accounts.csv", accounts))
    service.import_file("needs", write_csv(tmp_path / "needs.csv", needs))
    advocates = [advocate("A1", capacity_per_quarter=1), advocate("A2", capacity_per_quarter=1)]
    service.import_file("advocates", write_csv(tmp_path / "adv.csv", advocates))
    service.build_indexes()
    return service


def test_assignment_beats_greedy_that_overloads_one_advocate(duel):
    greedy = run_batch(duel, params(purpose="reference", k=1, greedy=True))
    assert proposals(duel.conn, greedy.id) == {("reference", "P1"): ["A1"], ("reference", "P2"): ["A1"]}
    assert greedy.report["advocates"]["over_capacity"] == 1  # A1: two seekers, one slot
    best = run_batch(duel, params(purpose="reference", k=1))
    assert proposals(duel.conn, best.id) == {("reference", "P1"): ["A2"], ("reference", "P2"): ["A1"]}
    score = best.report["score"]
    # best pairs first (P1-A1, then P2 gets A2) scores less than sharing out (P1-A2, P2-A1)
    assert score["total"] > score["greedy_within_capacity_total"] + 0.1
    assert score["greedy_total"] == greedy.report["score"]["total"]  # the unconstrained upper bound
    assert score["lost"] == pytest.approx(score["greedy_total"] - score["total"])
    assert best.report["advocates"]["over_capacity"] == 0


# --------------------------------------------------------------------------- resume, determinism


def crash_after(phase, part):
    def hook(p, n):
        if (p, n) == (phase, part):
            raise RuntimeError(f"simulated crash after {phase} partition {part}")

    return Hooks(on_partition=hook)


@pytest.mark.parametrize("phase,part", [("search", 0), ("search", 2), ("assign", 0), ("write", 1)])
def test_kill_and_resume_equals_an_uninterrupted_run(crowd, phase, part):
    whole = run_batch(crowd, params(purpose="reference", k=2, partition_size=3))
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_batch(crowd, params(purpose="reference", k=2, partition_size=3), hooks=crash_after(phase, part))
    broken = list_runs(crowd.conn)[0]
    assert broken.status == "failed" and broken.error == f"simulated crash after {phase} partition {part}"
    crowd.conn.execute("UPDATE batch_runs SET status = 'running' WHERE id = ?", (broken.id,))  # as if killed -9
    done = resume_batch(crowd, broken.id)
    assert done.status == "done" and done.resumes == 1
    assert results(crowd.conn, done.id) == results(crowd.conn, whole.id)
    assert done.report == whole.report
    # every seeker is in the run once, with its counts
    counts = crowd.conn.execute("SELECT count(*), sum(matched) FROM batch_seekers WHERE run_id = ?", (done.id,))
    assert counts.fetchone() == (8, 8)
    assert crowd.conn.execute(
        "SELECT count(*) FROM batch_partitions WHERE run_id = ? AND data IS NOT NULL", (done.id,)
    ).fetchone() == (0,)  # checkpoint data dropped once done


def test_same_inputs_same_output_whatever_the_partitioning(world, tmp_path):
    a = run_batch(world, params(partition_size=1000, out=str(tmp_path / "a.jsonl")))
    b = run_batch(world, params(partition_size=1000, out=str(tmp_path / "b.jsonl")))
    c = run_batch(world, params(partition_size=1))
    assert results(world.conn, a.id) == results(world.conn, b.id)
    assert a.report == b.report == c.report
    assert [r[:4] for r in results(world.conn, c.id)] == [r[:4] for r in results(world.conn, a.id)]
    assert [r[4] for r in results(world.conn, c.id)] == pytest.approx([r[4] for r in results(world.conn, a.id)])

    def without_run_id(path):
        return [
            {k: v for k, v in json.loads(line).items() if k != "run_id"}
            for line in path.read_text(encoding="utf-8").splitlines()
        ]

    assert without_run_id(tmp_path / "a.jsonl") == without_run_id(tmp_path / "b.jsonl")


def test_partition_step_is_pure(world):
    ctx = context(world)
    refs = plan(world.conn, ctx.catalog, world.settings, ("reference", "mentor", "retention"), 10)
    seekers = ctx.seekers(seeker_accounts(world.conn, [r.account_id for r in refs]))
    batch = [(r.seq, r.purpose, s) for r, s in zip(refs, seekers)]
    one = search_partition(ctx, batch, world.settings, k=3, depth=5)
    two = search_partition(ctx, batch, world.settings, k=3, depth=5)
    assert one.to_bytes() == two.to_bytes()
    back = PartitionCandidates.from_bytes(one.to_bytes())
    assert back.component_names == one.component_names and np.array_equal(back.advocate, one.advocate)


def test_resume_is_refused_when_it_cannot_give_the_same_result(crowd, tmp_path):
    with pytest.raises(RuntimeError):
        run_batch(crowd, params(purpose="reference", k=2, partition_size=3), hooks=crash_after("search", 0))
    broken = list_runs(crowd.conn)[0]
    crowd.import_file("accounts", write_csv(tmp_path / "new.csv", [account("P9", stage="prospect")]))
    with pytest.raises(Conflict, match=rf"run {broken.id} cannot resume: the data changed since it started"):
        resume_batch(crowd, broken.id)
    done = run_batch(crowd, params(purpose="reference", k=2))
    with pytest.raises(Conflict, match=rf"run {done.id} is already done"):
        resume_batch(crowd, done.id)
    with pytest.raises(NotFound, match="unknown run: 999"):
        resume_batch(crowd, 999)


def test_two_runs_never_overlap(world):
    with run_lock(world.settings.db_path):
        with pytest.raises(RunLocked, match=r"another batch run is in progress \(lock .*\.batch\.lock held by pid"):
            run_batch(world, params())
    assert run_batch(world, params()).status == "done"  # released


def test_stale_indexes_are_brought_up_to_date_or_refused(world, tmp_path):
    world.import_file("accounts", write_csv(tmp_path / "new.csv", [account("P2", stage="prospect")]))
    with pytest.raises(StaleIndex, match="profiles: stale: 1 new"):
        run_batch(world, params(), build=False)
    stages = []
    run = run_batch(world, params(), hooks=Hooks(on_stage=stages.append))
    assert stages[0].stage == "embed" and stages[0].info == {"embedded": 1}
    assert [s.stage for s in stages] == ["embed", "plan", "search", "assign", "write"]
    assert ("reference", "P2") in proposals(world.conn, run.id)


def test_bad_parameters_name_the_field():
    with pytest.raises(InvalidInput, match="purpose: must be one of reference, mentor, retention, all; got 'x'"):
        BatchParams.create("x")
    with pytest.raises(InvalidInput, match="k: must be between 1 and 100, got 0"):
        BatchParams.create(k=0)
    with pytest.raises(InvalidInput, match="as_of: must be a date YYYY-MM-DD, got '2025-13-01'"):
        BatchParams.create(as_of="2025-13-01")
    with pytest.raises(InvalidInput, match="out: must end in .csv or .jsonl, got 'x.txt'"):
        BatchParams.create(out="x.txt")
    with pytest.raises(InvalidInput, match=r"depth: must be at least k \(5\), got 2"):
        BatchParams.create(k=5, depth=2)
    with pytest.raises(InvalidInput, match="per_advocate: must be at least 1, got 0"):
        BatchParams.create(per_advocate=0)


# --------------------------------------------------------------------------- diff and exports


def test_diff_says_what_changed_for_whom(world, tmp_path):
    before = run_batch(world, params(purpose="reference", k=2))
    assert proposals(world.conn, before.id) == {("reference", "P1"): ["A1", "A2"], ("reference", "A7"): ["A8", "A1"]}
    # A2 withdraws consent; P2 arrives; A7 goes live, so it is no longer a seeker but an advocate
    world.import_file("advocates", write_csv(tmp_path / "adv.csv", [advocate("A2", consent="false")]))
    world.import_file(
        "accounts",
        write_csv(tmp_path / "acc.csv", [account("P2", stage="prospect"), account("A7", stage="adoption")]),
    )
    world.build_indexes()
    after = run_batch(world, params(purpose="reference", k=2))
    diff = diff_runs(world.conn, before.id, after.id)
    assert diff.counts == {"unchanged": 0, "changed": 1, "reranked": 0, "new": 1, "gone": 1}
    assert [c.as_dict() for c in diff.changes] == [
        {"purpose": "reference", "seeker": "A7", "name": "Company A7", "status": "gone", "before": ["A8", "A1"],
         "after": [], "added": [], "removed": ["A8", "A1"]},
        {"purpose": "reference", "seeker": "P1", "name": "Company P1", "status": "changed", "before": ["A1", "A2"],
         "after": ["A1", "A7"], "added": ["A7"], "removed": ["A2"]},
        {"purpose": "reference", "seeker": "P2", "name": "Company P2", "status": "new", "before": [],
         "after": ["A8", "A1"], "added": ["A8", "A1"], "removed": []},
    ]  # fmt: skip
    assert diff_runs(world.conn, after.id, after.id).counts["unchanged"] == 2


def test_exports_csv_and_jsonl(world, tmp_path):
    run = run_batch(world, params(purpose="reference", k=2, out=str(tmp_path / "out" / "run-{run_id}.csv")))
    path = tmp_path / "out" / f"run-{run.id}.csv"
    assert run.export_path == str(path) and get_run(world.conn, run.id).export_path == str(path)
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's private one
    rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
    assert list(rows[0]) == ["run_id", "purpose", "seeker", "seeker_name", "rank", "advocate", "advocate_name",
                             "score", "reasons"]  # fmt: skip
    assert [(r["seeker"], r["rank"], r["advocate"]) for r in rows] == [
        ("A7", "1", "A8"), ("A7", "2", "A1"), ("P1", "1", "A1"), ("P1", "2", "A2"),
    ]  # fmt: skip
    assert rows[2]["reasons"].startswith("met 2 of your 2 open needs: ") and " | same industry: Logistics" in rows[2][
        "reasons"]  # fmt: skip
    jsonl = tmp_path / "run.jsonl"
    from refmatch.batch import result_rows

    assert write_export(result_rows(world.conn, run.id), jsonl) == 4
    first = json.loads(jsonl.read_text(encoding="utf-8").splitlines()[2])
    assert first["seeker"] == "P1" and first["advocate"] == "A1" and first["purpose"] == "reference"
    assert first["score"] == float(rows[2]["score"]) and "same industry: Logistics" in first["reasons"]


def test_an_export_is_whole_or_absent(tmp_path):
    target = tmp_path / "x.csv"
    target.write_text("previous\n")

    def rows():
        yield {"run_id": 1, "purpose": "reference", "seeker": "P1", "seeker_name": "P", "rank": 1, "advocate": "A1",
               "advocate_name": "A", "score": 0.5, "reasons": ["r"]}  # fmt: skip
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_export(rows(), target)
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]  # no temporary file left behind


def test_a_run_with_no_seeker_is_done_and_says_so(duel):
    run = run_batch(duel, params(purpose="mentor"))
    assert (run.status, run.seekers, run.partitions) == ("done", 0, 0)
    assert run.report["coverage"] == {"full": 0, "fewer": 0, "none": 0, "none_without_candidates": 0}
    assert run.report["matches"] == 0


def test_a_run_reads_one_snapshot_whatever_is_written_while_it_runs(world, tmp_path):
    """Data written during the run (another process's import, say) reaches the next run, not this one."""
    before = data_version_of(world)

    def on_stage(event):
        if event.stage == "plan":  # planned, not yet searched: P1 now names A1 a competitor
            world.import_file("accounts", write_csv(tmp_path / "p.csv", [account(
                "P1", stage="prospect", do_not_match=["A8", "A1"], profile="P1 distribution centres retailers logistics"
            )]))  # fmt: skip

    run = run_batch(world, params(purpose="reference"), hooks=Hooks(on_stage=on_stage))
    assert run.data_version == before
    assert "A1" in proposals(world.conn, run.id)[("reference", "P1")]  # as the data was when the run began
    later = run_batch(world, params(purpose="reference"))
    assert "A1" not in proposals(world.conn, later.id).get(("reference", "P1"), [])


def test_seekers_whose_text_the_indexes_lack_wait_for_the_next_run(world, tmp_path, monkeypatch):
    world.import_file("accounts", write_csv(tmp_path / "p.csv", [account("P2", stage="prospect")]))
    monkeypatch.setattr(Service, "build_indexes", lambda self, **kw: [])  # the build has not caught up (a race)
    stages = []
    run = run_batch(world, params(purpose="reference"), hooks=Hooks(on_stage=stages.append))
    assert next(s for s in stages if s.stage == "plan").info["not_indexed_yet"] == 1
    assert ("reference", "P2") not in proposals(world.conn, run.id)
    assert ("reference", "P1") in proposals(world.conn, run.id)


def data_version_of(svc):
    from refmatch.store import data_version

    return data_version(svc.conn)


# -- executors: the same run in process and on Ray ---------------------------------------------


@pytest.fixture(scope="module")
def ray_executor():
    """A local Ray of two CPUs (as CI's machine has), started once for these tests."""
    pytest.importorskip("ray")
    from refmatch.batch.executors import RayExecutor

    executor = RayExecutor(workers=2)
    yield executor
    executor.close()


@pytest.mark.parametrize(
    "options",
    [
        {},  # the coverage-first assignment
        {"greedy": True, "k": 2},  # each seeker's own top k
        {"objective": "score"},  # the assignment for the best total score
        {"k": 1, "depth": 3},  # few candidates a seeker
    ],
    ids=["coverage", "greedy", "score", "k1-depth3"],
)
def test_a_run_on_ray_exports_the_same_bytes_as_in_process(world, tmp_path, ray_executor, options):
    here = run_batch(world, params(partition_size=1, out=str(tmp_path / "here.csv"), **options))
    there = run_batch(
        world, params(partition_size=1, out=str(tmp_path / "there.csv"), **options), executor=ray_executor
    )
    assert there.status == "done" and there.partitions > 2  # several partitions, spread over two actors
    here_rows, there_rows = ((tmp_path / f).read_bytes().split(b"\r\n") for f in ("here.csv", "there.csv"))
    assert [r.split(b",", 1)[-1] for r in there_rows] == [r.split(b",", 1)[-1] for r in here_rows]  # all but run_id
    assert len(here_rows) > 4 and there_rows[1].startswith(f"{there.id},".encode())
    assert results(world.conn, there.id) == results(world.conn, here.id) and there.report == here.report


def test_a_run_that_failed_on_ray_resumes_in_process_to_the_same_end(crowd, ray_executor):
    whole = run_batch(crowd, params(purpose="reference", k=2, partition_size=3))
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_batch(
            crowd,
            params(purpose="reference", k=2, partition_size=3),
            hooks=crash_after("search", 1),
            executor=ray_executor,
        )
    broken = list_runs(crowd.conn)[0]
    assert broken.status == "failed"
    saved = crowd.conn.execute(
        "SELECT count(*) FROM batch_partitions WHERE run_id = ? AND phase = 'search'", (broken.id,)
    ).fetchone()[0]
    assert saved >= 1  # what finished before the crash is kept: the resume does only the rest
    done = resume_batch(crowd, broken.id)
    assert results(crowd.conn, done.id) == results(crowd.conn, whole.id) and done.report == whole.report


def embeddings(conn):
    return conn.execute("SELECT model, content_hash, dim, vector FROM embeddings ORDER BY 1, 2").fetchall()


def test_index_builds_embed_on_ray_actors_to_the_same_vectors(world, ray_executor):
    expected = embeddings(world.conn)
    world.conn.execute("DELETE FROM embeddings")  # nothing cached: every text is embedded again
    before = world.encoder.texts_encoded
    with ray_executor.embedding(world.encoder) as pool:
        reports = world.build_indexes(full=True, encoder=pool)
    assert sum(r.embedded for r in reports) == len(expected) > 5
    assert world.encoder.texts_encoded == before  # the actors' copies did the work, not this process
    assert embeddings(world.conn) == expected  # byte for byte what the driver's own encoder writes
    assert all(report.total > 0 for report in reports)


@pytest.mark.e2e
def test_the_real_model_gives_the_same_bytes_on_ray_actors(ray_executor):
    import csv
    from importlib import resources

    from refmatch.embed.st import SentenceTransformerEncoder

    with (resources.files("refmatch") / "demo_data" / "needs.csv").open(encoding="utf-8") as f:
        texts = [r["need"] for r in csv.DictReader(f)][:600]
    encoder = SentenceTransformerEncoder()
    with ray_executor.embedding(encoder) as pool:
        assert (pool.chunk, pool.texts_per_call) == (256, 256 * 2 * 2)  # two calls in hand per actor
        got = pool.encode(texts)  # three pieces over two actors
    assert encoder._model is None  # the actors loaded their own copies; this process none
    want = np.concatenate([encoder.encode(texts[i : i + 256]) for i in range(0, 600, 256)])  # as embed_texts calls
    assert got.shape == want.shape and got.tobytes() == want.tobytes()  # the same batches, the same padding


def test_a_run_on_ray_builds_its_stale_indexes_on_the_actors(world, tmp_path, ray_executor):
    extra = account("P7", stage="prospect", profile="cold chain pharmaceutical distribution")
    world.import_file("accounts", write_csv(tmp_path / "p7.csv", [extra]))
    before = world.encoder.texts_encoded
    stages = []
    run = run_batch(world, params(purpose="reference"), executor=ray_executor, hooks=Hooks(on_stage=stages.append))
    assert next(s for s in stages if s.stage == "embed").info["embedded"] == 1
    assert world.encoder.texts_encoded == before and ("reference", "P7") in proposals(world.conn, run.id)


def test_ray_encoders_are_checked(world, ray_executor):
    from refmatch.batch.executors import RayExecutor

    with pytest.raises(ConfigError, match="cannot build with model 'other'"):
        with ray_executor.embedding(FakeEncoder(name="other")) as pool:
            world.build_indexes(encoder=pool)
    on_gpus = RayExecutor(workers=1, gpus_per_worker=1)  # joins the running local Ray
    with pytest.raises(ConfigError, match="the actors would hold GPUs but embed on 'cpu'; set REFMATCH_DEVICE=cuda"):
        with on_gpus.embedding(world.encoder):
            pass


def test_ray_refuses_an_index_rebuilt_since_the_run_started(world):
    from refmatch.batch.job import _Loaded, _RunIndexes

    run = run_batch(world, params())
    run.index_versions["needs"]["sha256"] = "0" * 64  # as if the file had been rebuilt since
    with pytest.raises(StaleIndex, match="changed since this run started"):
        _RunIndexes(world, run, _Loaded(None)).blobs()


def test_what_travels_to_workers_carries_no_secret(world):
    from dataclasses import replace

    from refmatch.batch.executors import without_secrets

    secret = replace(world.settings, smtp_password="hunter2", webhook_secret="whsec", slack_bot_token="xoxb")
    clean = without_secrets(secret)
    assert "hunter2" not in repr(vars(clean)) and clean.smtp_password == "" and clean.slack_bot_token == ""
    assert clean.w_need == secret.w_need and clean.db_path == secret.db_path


def test_executor_choice_is_checked():
    from refmatch.batch.executors import InProcess, executor_for

    assert isinstance(executor_for("in-process"), InProcess)
    with pytest.raises(InvalidInput, match="executor: must be one of in-process, ray"):
        executor_for("spark")
    with pytest.raises(InvalidInput, match="need --executor ray"):
        executor_for("in-process", address="ray://head:10001")
    with pytest.raises(ConfigError, match="the actors would hold GPUs but embed on 'cpu'; set REFMATCH_DEVICE=cuda"):
        executor_for("ray", gpus=1, device="cpu")  # refused before Ray starts (this test may run without Ray)
