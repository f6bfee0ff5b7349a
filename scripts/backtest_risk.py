"""Backtest the risk rules on the RavenStack data: would they have spotted who churned?

RavenStack (../shared/data/ravenstack, MIT, synthetic) is mapped onto refmatch signals:

    usage         feature_usage.usage_count summed per account and month (0 when none), observed on the
                  1st of the next month, from signup (or the first usage, when earlier) to the data's end
    open_tickets  support tickets submitted per account and month (0 when none), observed likewise
    escalation    1 on a ticket's submitted_at when escalation_flag, 0 on its closed_at (open while unresolved)
    satisfaction  a ticket's satisfaction_score (1-5) on its closed_at              (custom kind, custom rule)
    downgrade     1 on the start_date of a subscription with downgrade_flag         (custom kind, custom rule)
    churn         churn_events.churn_date

RavenStack has no health score, NPS, champion or renewal data, so those rules never fire here.
Every account active at the cutoff (a signal within 120 days, not churned yet) is scored with
only the data observed on or before the cutoff, and labelled by churn in the following
``--horizon`` days. Methods: the rules (packaged defaults plus two rules for the custom kinds),
a logistic regression fitted on snapshots at earlier cutoffs whose horizon ended by the cutoff,
and naive baselines. Ties are broken at random (seeded).

    .venv/bin/python scripts/backtest_risk.py [--cutoff 2024-10-01] [--horizon 90] [--format table|json]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import numpy as np

from refmatch.risk import AccountFrame, SignalTable, load_config, score_accounts
from refmatch.risk.fit import Snapshots, active_at, evaluate, fit_model, snapshots
from refmatch.risk.signals import ordinal

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "ravenstack"
STAGES = ("prospect", "onboarding", "adoption", "value", "expansion")
EXTRA_RULES = """
[rules.low_satisfaction]
type = "signal"
kind = "satisfaction"
aggregate = "latest"
window_days = 180
at_most = 3
label = "ticket satisfaction"
points = 10
trouble = "unhappy users"

[rules.downgrades]
type = "signal"
kind = "downgrade"
aggregate = "count"
window_days = 180
at_least = 1
label = "downgrades"
points = 15
trouble = "downgrades"
"""


def _rows(folder: Path, name: str) -> list[dict[str, str]]:
    with (folder / f"ravenstack_{name}.csv").open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


def _next_month(day: str) -> int:
    d = date.fromisoformat(day[:10])
    return date(d.year + d.month // 12, d.month % 12 + 1, 1).toordinal()


def load_ravenstack(folder: Path) -> tuple[AccountFrame, SignalTable]:
    """The RavenStack tables as an account frame and signals (see the module docstring for the mapping)."""
    accounts = _rows(folder, "accounts")
    ids = [a["account_id"] for a in accounts]
    row = {a: i for i, a in enumerate(ids)}
    subscription_owner = {s["subscription_id"]: s["account_id"] for s in _rows(folder, "subscriptions")}
    records: list[tuple[int, str, int, float]] = []

    usage: dict[tuple[int, int], float] = defaultdict(float)
    for u in _rows(folder, "feature_usage"):
        owner = subscription_owner.get(u["subscription_id"])
        if owner in row:
            usage[row[owner], _next_month(u["usage_date"])] += float(u["usage_count"])

    tickets: dict[tuple[int, int], int] = defaultdict(int)
    for t in _rows(folder, "support_tickets"):
        if t["account_id"] not in row:
            continue
        r = row[t["account_id"]]
        tickets[r, _next_month(t["submitted_at"])] += 1
        closed = t["closed_at"][:10] if t["closed_at"] else None
        if t["escalation_flag"].upper() == "TRUE":
            records.append((r, "escalation", ordinal(t["submitted_at"]), 1.0))
            if closed:
                records.append((r, "escalation", ordinal(closed), 0.0))
        if t["satisfaction_score"] and closed:
            records.append((r, "satisfaction", ordinal(closed), float(t["satisfaction_score"])))
    last_month = max(day for _, day in usage)
    months = sorted({day for _, day in usage} | {day for _, day in tickets})
    first_use: dict[int, int] = {}
    for r, day in usage:
        first_use[r] = min(day, first_use.get(r, day))
    for a in accounts:  # from signup, or the first usage where it comes earlier (a known RavenStack quirk)
        r = row[a["account_id"]]
        start = min(_next_month(a["signup_date"]), first_use.get(r, last_month))
        for m in months:
            if start <= m <= last_month:  # a month without tickets (or usage) is a 0, not a gap
                records.append((r, "open_tickets", m, float(tickets.get((r, m), 0))))
                records.append((r, "usage", m, usage.get((r, m), 0.0)))

    for s in _rows(folder, "subscriptions"):
        if s["downgrade_flag"].upper() == "TRUE" and s["account_id"] in row:
            records.append((row[s["account_id"]], "downgrade", ordinal(s["start_date"]), 1.0))
    churn = [(row[c["account_id"]], c["churn_date"]) for c in _rows(folder, "churn_events") if c["account_id"] in row]
    frame = AccountFrame.build(
        ids,
        stages=STAGES,
        names=[a["account_name"] for a in accounts],
        stage_now=["value"] * len(ids),
        stage_history=[(row[a["account_id"]], "adoption", a["signup_date"]) for a in accounts],
        churn=churn,
    )
    return frame, SignalTable.build(len(ids), records)


def backtest(folder: Path, cutoff: date, horizon: int, train_cutoffs: int, seed: int) -> dict:
    accounts, signals = load_ravenstack(folder)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "risk.toml"
        path.write_text(EXTRA_RULES, encoding="utf-8")
        config = load_config(path)
    day = ordinal(cutoff)
    active = active_at(accounts, signals, day, config.max_age_days)
    label = (accounts.churn.window(accounts.n, day, day + horizon)[0] > 0)[active]
    scores = score_accounts(accounts, signals, cutoff, config)

    earlier = [cutoff - timedelta(days=horizon * k) for k in range(train_cutoffs, 0, -1)]
    train: Snapshots = snapshots(accounts, signals, config, earlier, horizon)
    model = fit_model(train, seed)
    names, X = scores.features()

    tickets_90 = signals["open_tickets"].window(accounts.n, day - 90, day)[1]
    usage_now = signals["usage"].at(accounts.n, day, config.max_age_days)[0]
    methods = {
        "rules (defaults + 2 mapped kinds)": scores.score[active],
        f"fitted model ({len(earlier)} earlier cutoffs)": model.predict(X[active]),
        "naive: tickets in last 90 days": tickets_90[active],
        "naive: latest usage (lower = riskier)": -np.nan_to_num(usage_now[active], nan=0.0),
    }
    results = {name: evaluate(s, label, seed=seed).as_dict() for name, s in methods.items()}
    return {
        "cutoff": cutoff.isoformat(),
        "horizon_days": horizon,
        "accounts_active": int(active.sum()),
        "churned_in_horizon": int(label.sum()),
        "base_rate": round(float(label.mean()), 4) if len(label) else 0.0,
        "train": {
            "cutoffs": [c.isoformat() for c in earlier],
            "snapshots": len(train.y),
            "churned": int(train.y.sum()),
        },
        "methods": results,
        "coefficients": model.coefficients(),
        "rules_fired_at_cutoff": {
            o.spec.name: int(o.fired[active].sum()) for o in scores.outcomes if int(o.fired[active].sum())
        },
    }


def table(result: dict) -> str:
    lines = [
        f"RavenStack backtest: cutoff {result['cutoff']}, churn within {result['horizon_days']} days; "
        f"{result['accounts_active']} active accounts, {result['churned_in_horizon']} churned "
        f"(base rate {result['base_rate']:.1%})",
        f"model trained on {result['train']['snapshots']} snapshots ({result['train']['churned']} churned) at "
        + ", ".join(result["train"]["cutoffs"]),
        "",
        f"{'method':<40} {'ROC AUC':>8} {'precision@10%':>14}",
    ]
    for name, m in result["methods"].items():
        auc = "n/a" if m["auc"] is None else f"{m['auc']:.3f}"
        lines.append(f"{name:<40} {auc:>8} {m['precision_at_10']:>14.3f}")
    lines.append(f"{'(random ranking)':<40} {0.5:>8.3f} {result['base_rate']:>14.3f}")
    lines.append("")
    fired = ", ".join(f"{k} {v}" for k, v in result["rules_fired_at_cutoff"].items()) or "none"
    lines.append(f"rules fired at the cutoff (accounts): {fired}")
    top = ", ".join(f"{k} {v:+.2f}" for k, v in list(result["coefficients"].items())[:5])
    lines.append(f"largest model coefficients (per SD): {top}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"RavenStack folder [{DEFAULT_DATA}]")
    parser.add_argument("--cutoff", default="2024-10-01", help="Score as of this date (YYYY-MM-DD) [2024-10-01]")
    parser.add_argument("--horizon", type=int, default=90, help="Days after the cutoff a churn counts [90]")
    parser.add_argument("--train-cutoffs", type=int, default=4, help="Earlier cutoffs to fit the model on [4]")
    parser.add_argument("--seed", type=int, default=0, help="Seed for tie-breaking and the model [0]")
    parser.add_argument("--format", choices=["table", "json"], default="table")
    args = parser.parse_args(argv)
    if not (args.data / "ravenstack_accounts.csv").is_file():
        print(f"error: RavenStack data not found in {args.data} (use --data DIR)", file=sys.stderr)
        return 2
    try:
        cutoff = date.fromisoformat(args.cutoff)
    except ValueError:
        print(f"error: --cutoff: not a valid date (expected YYYY-MM-DD): {args.cutoff!r}", file=sys.stderr)
        return 2
    result = backtest(args.data, cutoff, args.horizon, args.train_cutoffs, args.seed)
    print(json.dumps(result, indent=2) if args.format == "json" else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
