"""Who a batch run matches, per purpose, and in which order (the run's plan).

- reference: accounts in the first stage (prospects) with an open need or a profile;
- mentor: accounts in ``onboarding`` (the second stage when stages are renamed);
- retention: at-risk accounts, see ``at_risk_account_ids``.

The plan sorts seekers by purpose, then by what decides their eligibility (stage and
products), then by id, so that a partition holds few eligibility groups and each
group's searches are batched.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Container
from dataclasses import dataclass

from refmatch.config import Settings
from refmatch.domain.errors import Conflict
from refmatch.domain.models import PURPOSES
from refmatch.match.catalog import Catalog


@dataclass(frozen=True)
class SeekerRef:
    """One seeker of a run: its position in the plan, purpose, account and partition."""

    seq: int
    purpose: str
    account_id: int
    part: int


def reference_account_ids(conn: sqlite3.Connection, settings: Settings) -> list[int]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT id FROM accounts a WHERE stage = ? AND ("
            "  EXISTS (SELECT 1 FROM needs n WHERE n.account_id = a.id AND n.status != 'met')"
            "  OR (profile IS NOT NULL AND trim(profile) != '')) ORDER BY id",
            (settings.stages[0],),
        )
    ]


def mentor_account_ids(conn: sqlite3.Connection, settings: Settings) -> list[int]:
    stage = "onboarding" if "onboarding" in settings.stages else settings.stages[1]
    return [r[0] for r in conn.execute("SELECT id FROM accounts WHERE stage = ? ORDER BY id", (stage,))]


def at_risk_account_ids(conn: sqlite3.Connection, settings: Settings) -> list[int]:
    """At-risk customers (past the first stage, not churned) as the risk module scored them.

    ``risk_scores`` is refreshed by every import of accounts or signals and by
    ``refmatch risk update``. Where nothing has been scored yet (a database filled by
    other means), fall back to customers whose latest ``health`` signal, or else their
    accounts.health, is below ``min_health``: the same bar an advocate must clear.
    """
    if conn.execute("SELECT EXISTS (SELECT 1 FROM risk_scores)").fetchone()[0]:
        return [
            r[0]
            for r in conn.execute(
                "SELECT r.account_id FROM risk_scores r JOIN accounts a ON a.id = r.account_id "
                "WHERE r.at_risk = 1 AND r.churned = 0 AND a.stage != ? ORDER BY r.account_id",
                (settings.stages[0],),
            )
        ]
    return [
        r[0]
        for r in conn.execute(
            "WITH latest AS (SELECT account_id, value, "
            "  ROW_NUMBER() OVER (PARTITION BY account_id ORDER BY observed_on DESC) AS n "
            "  FROM signals WHERE kind = 'health') "
            "SELECT a.id FROM accounts a LEFT JOIN latest l ON l.account_id = a.id AND l.n = 1 "
            "WHERE a.stage != ? AND COALESCE(l.value, a.health) < ? ORDER BY a.id",
            (settings.stages[0], settings.min_health),
        )
    ]


SEEKERS = {"reference": reference_account_ids, "mentor": mentor_account_ids, "retention": at_risk_account_ids}


def plan(
    conn: sqlite3.Connection,
    catalog: Catalog,
    settings: Settings,
    purposes: tuple[str, ...],
    partition_size: int,
    *,
    skip: Container[int] = (),
) -> list[SeekerRef]:
    """Every seeker of the run in a fixed order, cut into partitions of ``partition_size``; ``skip``: account
    ids left out (their text is not indexed yet)."""
    keyed = []
    for p, purpose in enumerate(PURPOSES):
        if purpose not in purposes:
            continue
        for account_id in SEEKERS[purpose](conn, settings):
            if account_id in skip:
                continue
            row = catalog.row(account_id)
            keyed.append((p, int(catalog.stage_rank[row]), tuple(sorted(catalog.products[row])), account_id))
    keyed.sort()
    return [
        SeekerRef(seq, PURPOSES[p], account_id, seq // partition_size)
        for seq, (p, _, _, account_id) in enumerate(keyed)
    ]


def seeker_accounts(conn: sqlite3.Connection, account_ids: list[int]) -> list[dict]:
    """The accounts' rows (as ``repo.account_row`` returns them), in the order asked."""
    found: dict[int, dict] = {}
    columns = ("id", "external_id", "name", "industry", "employees", "country", "region", "products", "stage",
               "do_not_match")  # fmt: skip
    unique = list(dict.fromkeys(account_ids))
    for i in range(0, len(unique), 900):
        chunk = unique[i : i + 900]
        for row in conn.execute(
            f"SELECT {', '.join(columns)} FROM accounts WHERE id IN ({','.join('?' * len(chunk))})", chunk
        ):
            account = dict(zip(columns, row))
            account["products"] = json.loads(account["products"])
            account["do_not_match"] = json.loads(account["do_not_match"])
            found[account["id"]] = account
    missing = [a for a in unique if a not in found]
    if missing:
        raise Conflict(f"account id {missing[0]} was deleted while the run was going on; start a new run")
    return [found[a] for a in account_ids]
