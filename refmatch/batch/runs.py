"""Batch runs in SQLite: the run row, its plan, partition checkpoints, results, listing and diff.

A run's own writes do not bump ``data_version``: they are records of matching, not
its input, so they neither make indexes look stale nor stop a run from resuming.
Each checkpoint is one transaction, so a run killed at any point has either
finished a partition completely or not at all.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from refmatch.batch.params import BatchParams
from refmatch.batch.partitions import PartitionCandidates, ResultRow
from refmatch.batch.seekers import SeekerRef
from refmatch.domain.errors import NotFound
from refmatch.domain.limits import is_row_id
from refmatch.store.db import inserted_id, transaction
from refmatch.store.repo import now_iso

_RUN_COLUMNS = (
    "id", "status", "stage", "params", "model", "data_version", "index_versions", "seekers", "partitions",
    "report", "error", "export_path", "started_at", "finished_at", "resumes",
)  # fmt: skip


@dataclass
class RunInfo:
    id: int
    status: str
    stage: str
    params: BatchParams
    model: str
    data_version: int
    index_versions: dict[str, Any]
    seekers: int
    partitions: int
    report: dict[str, Any] | None
    error: str | None
    export_path: str | None
    started_at: str
    finished_at: str | None
    resumes: int

    def as_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["params"] = self.params.as_dict()
        return out


def write(conn: sqlite3.Connection) -> AbstractContextManager[sqlite3.Connection]:
    """One transaction that leaves ``data_version`` alone (see the module docstring)."""
    return transaction(conn, bump=False)


def create_run(
    conn: sqlite3.Connection,
    params: BatchParams,
    *,
    model: str,
    data_version: int,
    index_versions: dict[str, Any],
    plan: Sequence[SeekerRef],
    started_at: str,
) -> int:
    """The run row and its plan, in one transaction."""
    parts = (plan[-1].part + 1) if plan else 0
    with write(conn):
        cur = conn.execute(
            "INSERT INTO batch_runs (status, stage, params, model, data_version, index_versions, seekers, partitions, "
            "started_at) VALUES ('running', 'plan', ?, ?, ?, ?, ?, ?, ?)",
            (json.dumps(params.as_dict()), model, data_version, json.dumps(index_versions), len(plan), parts,
             started_at),
        )  # fmt: skip
        run_id = inserted_id(cur)
        conn.executemany(
            "INSERT INTO batch_seekers (run_id, seq, part, purpose, account_id) VALUES (?, ?, ?, ?, ?)",
            ((run_id, r.seq, r.part, r.purpose, r.account_id) for r in plan),
        )
    return run_id


def _run(row: tuple) -> RunInfo:
    values = dict(zip(_RUN_COLUMNS, row))
    values["params"] = BatchParams.from_dict(json.loads(values["params"]))
    values["index_versions"] = json.loads(values["index_versions"])
    values["report"] = json.loads(values["report"]) if values["report"] else None
    return RunInfo(**values)


def get_run(conn: sqlite3.Connection, run_id: int) -> RunInfo:
    if not is_row_id(run_id):
        raise NotFound(f"unknown run: {run_id}")
    row = conn.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM batch_runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        raise NotFound(f"unknown run: {run_id}")
    return _run(row)


def list_runs(conn: sqlite3.Connection, limit: int = 20) -> list[RunInfo]:
    """The latest runs first."""
    rows = conn.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM batch_runs ORDER BY id DESC LIMIT ?", (limit,))
    return [_run(r) for r in rows.fetchall()]


def set_state(conn: sqlite3.Connection, run_id: int, **values: Any) -> None:
    """Update columns of the run row (``report`` as a dict) in a transaction of its own."""
    if "report" in values and values["report"] is not None:
        values["report"] = json.dumps(values["report"])
    sets = ", ".join(f"{name} = ?" for name in values)
    with write(conn):
        conn.execute(f"UPDATE batch_runs SET {sets} WHERE id = ?", (*values.values(), run_id))


def done_parts(conn: sqlite3.Connection, run_id: int, phase: str) -> set[int]:
    rows = conn.execute("SELECT part FROM batch_partitions WHERE run_id = ? AND phase = ?", (run_id, phase))
    return {r[0] for r in rows}


def part_refs(conn: sqlite3.Connection, run_id: int, part: int) -> list[SeekerRef]:
    rows = conn.execute(
        "SELECT seq, purpose, account_id FROM batch_seekers WHERE run_id = ? AND part = ? ORDER BY seq",
        (run_id, part),
    )
    return [SeekerRef(seq, purpose, account_id, part) for seq, purpose, account_id in rows]


def part_data(conn: sqlite3.Connection, run_id: int, phase: str, part: int) -> bytes:
    row = conn.execute(
        "SELECT data FROM batch_partitions WHERE run_id = ? AND phase = ? AND part = ?", (run_id, phase, part)
    ).fetchone()
    if row is None or row[0] is None:
        raise NotFound(f"run {run_id} has no {phase} data for partition {part}")
    return row[0]


def save_search(conn: sqlite3.Connection, run_id: int, part: int, data: bytes) -> None:
    """A searched partition: its candidates (``PartitionCandidates.to_bytes``)."""
    with write(conn):
        conn.execute(
            "INSERT INTO batch_partitions (run_id, phase, part, data, done_at) VALUES (?, 'search', ?, ?, ?)",
            (run_id, part, data, now_iso()),
        )


def save_assignment(conn: sqlite3.Connection, run_id: int, chosen: dict[int, bytes], report: dict[str, Any]) -> None:
    """The whole assignment (chosen edges per partition) and the run's report, in one transaction."""
    stamp = now_iso()
    with write(conn):
        conn.executemany(
            "INSERT INTO batch_partitions (run_id, phase, part, data, done_at) VALUES (?, 'assign', ?, ?, ?)",
            ((run_id, part, data, stamp) for part, data in sorted(chosen.items())),
        )
        conn.execute("UPDATE batch_runs SET report = ? WHERE id = ?", (json.dumps(report), run_id))


def save_results(
    conn: sqlite3.Connection,
    run_id: int,
    part: int,
    found: PartitionCandidates,
    rows: Sequence[ResultRow],
    *,
    model: str,
    data_version: int,
    created_at: str,
) -> None:
    """A written partition: its matches, each seeker's counts (eligible, matched), and the checkpoint."""
    matched: dict[int, int] = {}
    for r in rows:
        matched[r.seq] = matched.get(r.seq, 0) + 1
    with write(conn):
        conn.executemany(
            "INSERT INTO matches (run_id, seeker_account_id, advocate_account_id, purpose, rank, score, components, "
            "reasons, model, data_version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                (run_id, r.seeker_id, r.advocate_id, r.purpose, r.rank, r.score,
                 json.dumps({k: round(v, 6) for k, v in r.components.items()}),
                 json.dumps(r.reasons, ensure_ascii=False), model, data_version, created_at)
                for r in rows
            ),
        )  # fmt: skip
        conn.executemany(
            "UPDATE batch_seekers SET eligible = ?, matched = ? WHERE run_id = ? AND seq = ?",
            ((e, matched.get(s, 0), run_id, s) for s, e in zip(found.seq.tolist(), found.eligible.tolist())),
        )
        conn.execute(
            "INSERT INTO batch_partitions (run_id, phase, part, done_at) VALUES (?, 'write', ?, ?)",
            (run_id, part, now_iso()),
        )


def drop_checkpoint_data(conn: sqlite3.Connection, run_id: int) -> None:
    """A finished run needs its candidates no more (its pages are reused by the next run)."""
    with write(conn):
        conn.execute("UPDATE batch_partitions SET data = NULL WHERE run_id = ?", (run_id,))


def result_rows(conn: sqlite3.Connection, run_id: int) -> Iterator[dict[str, Any]]:
    """A run's matches by purpose, seeker external id and rank, as export rows."""
    cur = conn.execute(
        "SELECT m.purpose, s.external_id, s.name, m.rank, a.external_id, a.name, m.score, m.reasons "
        "FROM matches m JOIN accounts s ON s.id = m.seeker_account_id JOIN accounts a ON a.id = m.advocate_account_id "
        "WHERE m.run_id = ? ORDER BY m.purpose, s.external_id, m.rank",
        (run_id,),
    )
    for purpose, seeker, seeker_name, rank, advocate, advocate_name, score, reasons in cur:
        yield {
            "run_id": run_id, "purpose": purpose, "seeker": seeker, "seeker_name": seeker_name, "rank": rank,
            "advocate": advocate, "advocate_name": advocate_name, "score": round(score, 4),
            "reasons": json.loads(reasons),
        }  # fmt: skip


# --------------------------------------------------------------------------- diff


@dataclass
class SeekerChange:
    """What one seeker was proposed in each run (advocate external ids, by rank)."""

    purpose: str
    seeker: str
    name: str
    status: str  # new | gone | changed | reranked
    before: list[str] = field(default_factory=list)
    after: list[str] = field(default_factory=list)

    @property
    def added(self) -> list[str]:
        return [a for a in self.after if a not in self.before]

    @property
    def removed(self) -> list[str]:
        return [a for a in self.before if a not in self.after]

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "added": self.added, "removed": self.removed}


@dataclass
class RunDiff:
    run_a: int
    run_b: int
    counts: dict[str, int]
    changes: list[SeekerChange]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_a": self.run_a,
            "run_b": self.run_b,
            "counts": self.counts,
            "changes": [c.as_dict() for c in self.changes],
        }


def _proposals(conn: sqlite3.Connection, run_id: int) -> Iterator[tuple[tuple[str, str], str, list[str]]]:
    """((purpose, seeker external id), seeker name, advocates by rank) per seeker of the run, sorted."""
    cur = conn.execute(
        "SELECT bs.purpose, s.external_id, s.name, a.external_id FROM batch_seekers bs "
        "JOIN accounts s ON s.id = bs.account_id "
        "LEFT JOIN matches m ON m.run_id = bs.run_id AND m.purpose = bs.purpose "
        "  AND m.seeker_account_id = bs.account_id "
        "LEFT JOIN accounts a ON a.id = m.advocate_account_id "
        "WHERE bs.run_id = ? ORDER BY bs.purpose, s.external_id, m.rank",
        (run_id,),
    )
    for (purpose, seeker, name), rows in groupby(cur, key=lambda r: r[:3]):
        yield (purpose, seeker), name, [r[3] for r in rows if r[3] is not None]


def diff_runs(conn: sqlite3.Connection, run_a: int, run_b: int) -> RunDiff:
    """What changed for whom from ``run_a`` to ``run_b``; streams both runs in one sorted pass."""
    get_run(conn, run_a), get_run(conn, run_b)
    counts = dict.fromkeys(("unchanged", "changed", "reranked", "new", "gone"), 0)
    changes: list[SeekerChange] = []
    a_iter, b_iter = _proposals(conn, run_a), _proposals(conn, run_b)
    a, b = next(a_iter, None), next(b_iter, None)
    while a is not None or b is not None:
        if a is not None and (b is None or a[0] < b[0]):
            change = SeekerChange(a[0][0], a[0][1], a[1], "gone", before=a[2])
            a = next(a_iter, None)
        elif b is not None and (a is None or b[0] < a[0]):
            change = SeekerChange(b[0][0], b[0][1], b[1], "new", after=b[2])
            b = next(b_iter, None)
        else:
            assert a is not None and b is not None  # the same seeker in both runs
            status = "unchanged" if a[2] == b[2] else "reranked" if sorted(a[2]) == sorted(b[2]) else "changed"
            change = SeekerChange(b[0][0], b[0][1], b[1], status, before=a[2], after=b[2])
            a, b = next(a_iter, None), next(b_iter, None)
        counts[change.status] += 1
        if change.status != "unchanged":
            changes.append(change)
    return RunDiff(run_a, run_b, counts, changes)
