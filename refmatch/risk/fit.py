"""Learning from history: a logistic regression over the rules' own measured values.

The rules stay the default; the model is a check on them. Each snapshot is an account as of
a cutoff date (features from signals up to that date only) labelled by whether it churned
within the following ``horizon`` days. The model is judged on accounts it never saw, with
the same two numbers as the rules: ROC AUC and precision among the top 10%.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any

import numpy as np

from refmatch.domain.errors import InvalidInput
from refmatch.risk.config import RiskConfig
from refmatch.risk.rules import score_accounts
from refmatch.risk.signals import AccountFrame, SignalTable, ordinal

MIN_POSITIVES = 5


@dataclass
class Metrics:
    auc: float | None
    precision_at_10: float
    n: int
    positives: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(score: np.ndarray, label: np.ndarray, *, top_share: float = 0.10, seed: int = 0) -> Metrics:
    """ROC AUC and the churn rate among the top ``top_share`` by score (ties broken at random, seeded)."""
    from sklearn.metrics import roc_auc_score

    score, label = np.asarray(score, dtype=np.float64), np.asarray(label, dtype=bool)
    n, positives = len(label), int(label.sum())
    auc = float(roc_auc_score(label, score)) if 0 < positives < n else None
    k = max(1, math.ceil(top_share * n)) if n else 0
    tie = np.random.default_rng(seed).random(n)
    top = np.lexsort((tie, -score))[:k]
    return Metrics(auc, float(label[top].mean()) if k else 0.0, n, positives)


@dataclass
class Snapshots:
    names: list[str]
    X: np.ndarray
    y: np.ndarray
    rules_score: np.ndarray
    rows: np.ndarray  # account row of each snapshot
    cutoff: np.ndarray  # day ordinal of each snapshot

    def take(self, mask: np.ndarray) -> Snapshots:
        parts = (self.X, self.y, self.rules_score, self.rows, self.cutoff)
        return Snapshots(self.names, *(p[mask] for p in parts))


def active_at(accounts: AccountFrame, signals: SignalTable, day: int, max_age: int) -> np.ndarray:
    """Accounts still customers at ``day``: a signal within ``max_age`` days and no churn yet."""
    seen = np.zeros(accounts.n, dtype=bool)
    for series in signals.series.values():
        seen |= series.window(accounts.n, day - max_age, day)[0] > 0
    _, churned = accounts.churn.at(accounts.n, day)
    return seen & (churned == 0)


def snapshots(
    accounts: AccountFrame, signals: SignalTable, config: RiskConfig, cutoffs: list[date], horizon: int
) -> Snapshots:
    """One row per (active account, cutoff): the rule measures as of the cutoff, and churn in the horizon."""
    parts = []
    names: list[str] = []
    for cutoff in cutoffs:
        day = ordinal(cutoff)
        scores = score_accounts(accounts, signals, cutoff, config)
        names, X = scores.features()
        active = np.flatnonzero(active_at(accounts, signals, day, config.max_age_days))
        label = accounts.churn.window(accounts.n, day, day + horizon)[0] > 0
        parts.append((X[active], label[active], scores.score[active], active, np.full(len(active), day)))
    if not parts:
        return Snapshots(names, np.zeros((0, 0)), np.zeros(0, bool), np.zeros(0), np.zeros(0, int), np.zeros(0, int))
    return Snapshots(names, *(np.concatenate(p) for p in zip(*parts)))


@dataclass
class Model:
    names: list[str]
    pipeline: Any

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline.predict_proba(X)[:, 1]

    def coefficients(self) -> dict[str, float]:
        """Per standard deviation of each feature; positive means more churn."""
        coef = self.pipeline[-1].coef_[0]
        return {n: round(float(c), 3) for n, c in sorted(zip(self.names, coef), key=lambda t: -abs(t[1]))}


def fit_model(data: Snapshots, seed: int = 0) -> Model:
    """Median-impute, standardise, logistic regression (balanced classes): simple and explainable."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if int(data.y.sum()) < MIN_POSITIVES or int((~data.y).sum()) < MIN_POSITIVES:
        raise InvalidInput(
            f"not enough labelled history to fit: {int(data.y.sum())} churned and {int((~data.y).sum())} "
            f"retained snapshots (need {MIN_POSITIVES} of each)"
        )
    pipeline = make_pipeline(
        SimpleImputer(strategy="median", keep_empty_features=True),
        StandardScaler(),
        LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed),
    )
    pipeline.fit(data.X, data.y)
    return Model(data.names, pipeline)


@dataclass
class FitReport:
    as_of: str
    horizon_days: int
    cutoffs: list[str]
    train: dict[str, int]
    test: dict[str, int]
    rules: Metrics
    model: Metrics
    coefficients: dict[str, float]
    beats_rules: bool
    verdict: str
    config: str = field(default="defaults")

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["rules"], out["model"] = self.rules.as_dict(), self.model.as_dict()
        return out

    def table(self) -> str:
        def cell(v: float | None) -> str:
            return "   n/a" if v is None else f"{v:6.3f}"

        lines = [
            f"risk fit as of {self.as_of}: churn within {self.horizon_days} days, {len(self.cutoffs)} cutoffs "
            f"from {self.cutoffs[0]} to {self.cutoffs[-1]}",
            f"train: {self.train['accounts']} accounts, {self.train['snapshots']} snapshots, "
            f"{self.train['churned']} churned; held out: {self.test['accounts']} accounts, "
            f"{self.test['snapshots']} snapshots, {self.test['churned']} churned",
            "",
            "method   ROC AUC  precision@10%",
            f"rules     {cell(self.rules.auc)}  {cell(self.rules.precision_at_10)}",
            f"model     {cell(self.model.auc)}  {cell(self.model.precision_at_10)}",
            "",
            f"verdict: {self.verdict}",
            "model coefficients (per standard deviation of the rule's measured value; + means more churn):",
        ]
        lines += [f"  {name:<24} {coef:+.3f}" for name, coef in self.coefficients.items()]
        return "\n".join(lines)


def _split(rows: np.ndarray, y: np.ndarray, test_share: float, seed: int) -> np.ndarray:
    """Held-out account rows: a seeded, stratified share of the accounts that ever churned and of the rest."""
    accounts = np.unique(rows)
    churned = np.isin(accounts, np.unique(rows[y]))
    rng = np.random.default_rng(seed)
    held = []
    for group in (accounts[churned], accounts[~churned]):
        group = rng.permutation(group)
        held.append(group[: max(1, round(len(group) * test_share))] if len(group) else group)
    return np.concatenate(held)


def verdict(rules: Metrics, model: Metrics) -> tuple[bool, str]:
    if rules.auc is None or model.auc is None:
        return False, "cannot tell: the held-out accounts need both churned and retained snapshots"
    gain = model.auc - rules.auc
    if gain > 0.01:
        return True, f"the model beats the rules on held-out accounts (ROC AUC {gain:+.3f}); the rules stay the default"
    return False, f"the model does not beat the rules on held-out accounts (ROC AUC {gain:+.3f}): keep the rules"


def fit_history(
    accounts: AccountFrame,
    signals: SignalTable,
    config: RiskConfig,
    as_of: date,
    *,
    horizon: int = 90,
    every: int = 30,
    test_share: float = 0.3,
    seed: int = 0,
) -> FitReport:
    """Fit on some accounts' snapshots, compare with the rules on the held-out accounts' snapshots."""
    if not 0 < test_share < 1:
        raise InvalidInput(f"test_share: must be between 0 and 1, got {test_share}")
    if horizon < 1:
        raise InvalidInput(f"horizon: must be at least 1 day, got {horizon}")
    if not len(accounts.churn.days):
        raise InvalidInput("no churn history: import churn events first (refmatch risk churn FILE)")
    first, last = signals.first_day() + 90, ordinal(as_of) - horizon
    if not signals.first_day() or first > last:
        raise InvalidInput(
            f"not enough history before {as_of}: need signals from at least {horizon + 90} days earlier "
            f"(90 days of history, then {horizon} days to see who churned)"
        )
    cutoffs = [date.fromordinal(d) for d in range(last, first - 1, -every)][::-1]
    data = snapshots(accounts, signals, config, cutoffs, horizon)
    held = np.isin(data.rows, _split(data.rows, data.y, test_share, seed))
    train, test = data.take(~held), data.take(held)
    model = fit_model(train, seed)
    rules_m, model_m = evaluate(test.rules_score, test.y, seed=seed), evaluate(model.predict(test.X), test.y, seed=seed)
    beats, text = verdict(rules_m, model_m)

    def counts(part: Snapshots) -> dict[str, int]:
        return {"accounts": len(np.unique(part.rows)), "snapshots": len(part.y), "churned": int(part.y.sum())}

    return FitReport(
        as_of.isoformat(),
        horizon,
        [c.isoformat() for c in cutoffs],
        counts(train),
        counts(test),
        rules_m,
        model_m,
        model.coefficients(),
        beats,
        text,
        config.source,
    )
