"""Match weights learned from outcomes: ``refmatch weights fit`` and ``weights use``.

Each finished request is a labelled pair of seeker and advocate: **good** when it was completed
with a rating of 4 or 5 or a won deal, **bad** when it was declined or cancelled, or completed
with a rating of 1 or 2 or a lost deal (others teach nothing and are left out). For each pair
the components matching computes now (need coverage, profile similarity, industry, size,
region, products, stage gap) are the features, and a logistic regression with non-negative
coefficients learns how much each weighs; the coefficients, rescaled to the hand-set total,
are the new weights. So a score stays the same weighted sum of the same components, and every
reason still explains it. Fatigue depends on the day of asking, not on the pair: its weight
stays as set.

The fit is judged on held-out requests (a seeded share of them, both labels in each part): the
ROC AUC with which each set of weights tells good from bad pairs. A fit is stored, never used
until ``weights use ID``; ``weights use hand-set`` goes back. The weights in use apply to every
process that opens the database after the switch (restart the server, or send it SIGHUP).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from refmatch.app.service import Service
from refmatch.config import Settings
from refmatch.domain.errors import InvalidInput, NotFound
from refmatch.match.scoring import COMPONENTS, WEIGHT_SETTINGS
from refmatch.risk.fit import evaluate
from refmatch.store import transaction
from refmatch.store.repo import now_iso

MIN_EACH = 10  # good and bad requests needed, at the least, to fit
_GOOD = "status = 'completed' AND (rating >= 4 OR deal_outcome = 'won')"
_BAD = "status IN ('declined', 'cancelled') OR (status = 'completed' AND (rating <= 2 OR deal_outcome = 'lost'))"


@dataclass
class WeightsReport:
    id: int | None
    requests: dict[str, int]
    held_out: dict[str, int]
    hand_set: dict[str, float]
    fitted: dict[str, float]
    auc_hand_set: float | None
    auc_fitted: float | None
    beats_hand_set: bool
    verdict: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> list[str]:
        r, h = self.requests, self.held_out
        lines = [
            f"weights fit {self.id}: {r['good']} good and {r['bad']} bad requests ({r['skipped']} without a clear "
            f"outcome or a seeker left out); held out {h['good']} good, {h['bad']} bad",
            f"held-out ROC AUC: hand-set {_num(self.auc_hand_set)}, fitted {_num(self.auc_fitted)}",
            "weights (hand-set -> fitted): "
            + ", ".join(f"{name} {self.hand_set[name]:.3f} -> {self.fitted[name]:.3f}" for name in self.fitted),
            self.verdict,
        ]
        return lines


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _examples(service: Service) -> tuple[np.ndarray, np.ndarray, int]:
    """(components matrix, good?, skipped): one row per labelled request."""
    rows = service.conn.execute(
        f"SELECT s.external_id, r.advocate_account_id, r.purpose, CASE WHEN {_GOOD} THEN 1 WHEN {_BAD} THEN 0 END "
        "FROM reference_requests r LEFT JOIN accounts s ON s.id = r.seeker_account_id ORDER BY r.id"
    ).fetchall()
    by_seeker: dict[tuple[str, str], list[tuple[int, int]]] = {}
    skipped = 0
    for seeker, advocate, purpose, label in rows:
        if seeker is None or label is None:
            skipped += 1
            continue
        by_seeker.setdefault((seeker, purpose), []).append((advocate, label))
    features, labels = [], []
    for (seeker, purpose), pairs in by_seeker.items():
        found = service.pair_components(seeker, [a for a, _ in pairs], purpose)
        for advocate, label in pairs:
            if advocate not in found:
                skipped += 1
                continue
            features.append([found[advocate][c] for c in COMPONENTS])
            labels.append(bool(label))
    return np.array(features, dtype=np.float64).reshape(-1, len(COMPONENTS)), np.array(labels, dtype=bool), skipped


def _scores(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    return x @ w / (w.sum() or 1.0)


def _fit(x: np.ndarray, y: np.ndarray, penalty: float = 1.0) -> np.ndarray:
    """Non-negative logistic coefficients (L2-penalised), by L-BFGS-B."""
    n, d = x.shape

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        beta, bias = theta[:d], theta[d]
        z = x @ beta + bias
        p = 1.0 / (1.0 + np.exp(-z))
        value = float(np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * penalty * beta @ beta)
        grad = np.concatenate([x.T @ (p - y) + penalty * beta, [np.sum(p - y)]])
        return value, grad

    start = np.concatenate([np.full(d, 0.1), [0.0]])
    bounds = [(0.0, None)] * d + [(None, None)]
    result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
    return np.asarray(result.x[:d])


def _split(y: np.ndarray, share: float, seed: int) -> np.ndarray:
    """A held-out mask with ``share`` of the good and of the bad examples."""
    rng = np.random.default_rng(seed)
    held = np.zeros(len(y), dtype=bool)
    for label in (True, False):
        where = np.flatnonzero(y == label)
        held[rng.choice(where, size=max(1, round(share * len(where))), replace=False)] = True
    return held


def hand_set(settings: Settings) -> dict[str, float]:
    return {name: float(getattr(settings, name)) for name in WEIGHT_SETTINGS.values()}


def fit(service: Service, *, test_share: float = 0.3, seed: int = 0) -> WeightsReport:
    """Fit weights on past requests, judge them on held-out ones, store the fit (not in use)."""
    if not 0 < test_share < 1:
        raise InvalidInput(f"test_share: must be between 0 and 1, got {test_share}")
    x, y, skipped = _examples(service)
    good, bad = int(y.sum()), int((~y).sum())
    if good < MIN_EACH or bad < MIN_EACH:
        raise InvalidInput(
            f"not enough outcomes to learn from: {good} good and {bad} bad requests (at least {MIN_EACH} of each: "
            "completed with a rating or a deal outcome, declined, cancelled)"
        )
    held = _split(y, test_share, seed)
    beta = _fit(x[~held], y[~held].astype(np.float64))
    base = hand_set(service.settings)
    total = sum(base[WEIGHT_SETTINGS[c]] for c in COMPONENTS)
    fitted_w = beta / beta.sum() * total if beta.sum() > 0 else np.array([base[WEIGHT_SETTINGS[c]] for c in COMPONENTS])
    base_w = np.array([base[WEIGHT_SETTINGS[c]] for c in COMPONENTS])
    auc_base = evaluate(_scores(x[held], base_w), y[held], seed=seed).auc
    auc_fit = evaluate(_scores(x[held], fitted_w), y[held], seed=seed).auc
    gain = auc_fit - auc_base if auc_base is not None and auc_fit is not None else None
    beats = gain is not None and gain > 0
    verdict = (
        f"the fitted weights tell good from bad held-out requests better (ROC AUC {gain:+.3f}); "
        "use them with 'refmatch weights use ID'"
        if beats
        else "the fitted weights do not beat the hand-set ones on held-out requests: keep the hand-set weights"
    )
    fitted = {WEIGHT_SETTINGS[c]: round(float(w), 4) for c, w in zip(COMPONENTS, fitted_w)}
    report = WeightsReport(
        None,
        {"good": good, "bad": bad, "skipped": skipped},
        {"good": int(y[held].sum()), "bad": int((~y[held]).sum())},
        {WEIGHT_SETTINGS[c]: base[WEIGHT_SETTINGS[c]] for c in COMPONENTS},
        fitted,
        None if auc_base is None else round(auc_base, 4),
        None if auc_fit is None else round(auc_fit, 4),
        beats,
        verdict,
    )
    with transaction(service.db, bump=False) as conn:
        cur = conn.execute(
            "INSERT INTO weight_fits (created_at, weights, report) VALUES (?, ?, ?)",
            (now_iso(), json.dumps(fitted), json.dumps(report.as_dict())),
        )
        report.id = int(cur.lastrowid or 0)
    return report


def use(service: Service, fit_id: int | None) -> str:
    """Put fit ``fit_id`` in use (None: the hand-set weights); what changed, in words."""
    with transaction(service.db, bump=False) as conn:
        if fit_id is not None and conn.execute("SELECT 1 FROM weight_fits WHERE id = ?", (fit_id,)).fetchone() is None:
            raise NotFound(f"no weights fit {fit_id} (see 'refmatch weights list')")
        conn.execute("UPDATE weight_fits SET in_use = 0 WHERE in_use = 1")
        if fit_id is not None:
            conn.execute("UPDATE weight_fits SET in_use = 1 WHERE id = ?", (fit_id,))
    who = f"the weights of fit {fit_id}" if fit_id is not None else "the hand-set weights (the settings)"
    return f"matching now uses {who}; a running server takes them up when restarted or sent SIGHUP"


def fits(service: Service) -> list[dict[str, Any]]:
    rows = service.conn.execute("SELECT id, created_at, weights, report, in_use FROM weight_fits ORDER BY id DESC")
    return [
        {"id": i, "created_at": at, "weights": json.loads(w), "report": json.loads(r), "in_use": bool(u)}
        for i, at, w, r, u in rows.fetchall()
    ]
