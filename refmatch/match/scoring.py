"""Component scores, the weighted total, and the reasons a person can check.

Every component lies in [0, 1] (fatigue in [-1, 0]); the total is their weighted
sum divided by the sum of the positive weights, so it reads as a share of a perfect
match. Need coverage is the heart: for each open need of the seeker, the closest
need the advocate has met. Scores are computed for all candidates at once; reasons
only for the few that are shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import numpy as np

from refmatch.config import Settings
from refmatch.domain.models import Match, Seeker
from refmatch.match.catalog import Catalog

COMPONENTS = ("need_coverage", "profile_similarity", "industry", "size", "region", "products", "stage_gap", "lexical")


@dataclass
class Candidates:
    """Everything scored about the candidates, one array entry per candidate."""

    rows: np.ndarray
    components: dict[str, np.ndarray]
    scores: np.ndarray
    need_best: np.ndarray  # (candidates, open needs) best similarity
    need_best_id: np.ndarray  # (candidates, open needs) the met need id that gave it (-1 none)
    capacity: np.ndarray


def ranking(cands: Candidates) -> np.ndarray:
    """What orders candidates: the score, except that retention peers who overcame any of the seeker's
    troubles (``shared_troubles`` > 0) come before every peer who did not."""
    overcame = cands.components.get("shared_troubles")
    return cands.scores if overcame is None else cands.scores + (overcame > 0)


WEIGHT_SETTINGS = {  # component -> the setting that weighs it
    "need_coverage": "w_need", "profile_similarity": "w_profile", "industry": "w_industry", "size": "w_size",
    "region": "w_region", "products": "w_products", "stage_gap": "w_stage", "lexical": "w_lexical",
}  # fmt: skip


def weights(settings: Settings, has_needs: bool) -> dict[str, float]:
    out = {c: float(getattr(settings, name)) for c, name in WEIGHT_SETTINGS.items()}
    if not has_needs:
        out["need_coverage"] = out["lexical"] = 0.0
    return out


LEXICAL_REASON = 0.3  # a lexical component from which the reasons name the words shared

CREDIT_FROM, CREDIT_FULL = 0.25, 0.60  # cosine of unrelated text; of a clear paraphrase (all-MiniLM-L6-v2)


def need_credit(similarity: np.ndarray, settings: Settings) -> np.ndarray:
    """How much of one open need a met need covers, for the score: 0 up to a cosine of 0.25 (unrelated
    text), rising linearly to 1 at 0.60 (a clear paraphrase). A partial credit ranks a near miss above
    nothing; only ``need_threshold`` (stricter) lets a reason claim the need was met."""
    return np.clip((similarity - CREDIT_FROM) / (CREDIT_FULL - CREDIT_FROM), 0.0, 1.0)


def met_need_coverage(
    catalog: Catalog, rows: np.ndarray, queries: np.ndarray, vectors: Callable[[np.ndarray], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """For each account at ``rows`` and each open need (``queries``), the best similarity over the
    needs it has met, and the first met need id that reaches it (0 and -1 where it has met none).

    ``vectors(need_ids)`` gives the met needs' vectors (from an index, or a batch's cache).
    """
    need_best = np.zeros((len(rows), len(queries)), dtype=np.float32)
    need_best_id = np.full((len(rows), len(queries)), -1, dtype=np.int64)
    met, counts = catalog.met_needs_of_rows(rows)
    has = counts > 0
    if len(queries) == 0 or not has.any():
        return need_best, need_best_id
    sims = queries @ vectors(met).T  # (open needs, all met needs)
    starts = (np.cumsum(counts) - counts)[has]
    best = np.maximum.reduceat(sims, starts, axis=1)  # the best of each row's run of columns
    owner = np.repeat(np.arange(len(starts)), counts[has])
    position = np.where(sims == best[:, owner], np.arange(len(met)), len(met))
    need_best[has] = best.T
    need_best_id[has] = met[np.minimum.reduceat(position, starts, axis=1)].T
    return need_best, need_best_id


def _same(value: str | None, catalog: Catalog, column: str, rows: np.ndarray) -> np.ndarray:
    """1.0 where the row's ``column`` equals ``value`` (case-insensitively), else 0.0."""
    if not value:
        return np.zeros(len(rows))
    codes, vocab = catalog.codes(column)
    return (codes[rows] == vocab.get(value.casefold(), -2)).astype(np.float64)


def score_candidates(
    catalog: Catalog,
    seeker: Seeker,
    rows: np.ndarray,
    profile_sims: np.ndarray,
    need_best: np.ndarray,
    need_best_id: np.ndarray,
    capacity: np.ndarray,
    settings: Settings,
) -> Candidates:
    """Every component and the score of the candidates at ``rows``."""
    has_needs = bool(seeker.need_texts)
    comps: dict[str, np.ndarray] = {}
    if has_needs:  # the mean over open needs, as a product: numpy's mean along a short axis is slow
        credit = need_credit(need_best, settings)
        comps["need_coverage"] = credit @ np.full(credit.shape[1], 1.0 / credit.shape[1], dtype=credit.dtype)
    else:
        comps["need_coverage"] = np.zeros(len(rows))
    comps["profile_similarity"] = np.clip(profile_sims, 0, 1)
    comps["industry"] = _same(seeker.industry, catalog, "industry", rows)
    if seeker.employees is None:
        comps["size"] = np.zeros(len(rows))
    else:
        theirs = catalog.log_size()[rows]  # log10(employees + 1), NaN where unknown
        close = 1.0 - np.abs(theirs - np.log10(seeker.employees + 1)) / 2.0
        comps["size"] = np.where(np.isnan(theirs), 0.0, np.clip(close, 0, 1))
    comps["region"] = _same(seeker.region, catalog, "region", rows)
    wanted = [catalog.product_vocab[p.casefold()] for p in seeker.products if p.casefold() in catalog.product_vocab]
    if seeker.products:
        columns = catalog.product_columns()
        comps["products"] = sum((columns[w][rows] for w in wanted), np.zeros(len(rows))) / len(seeker.products)
    else:
        comps["products"] = np.zeros(len(rows))
    if has_needs and settings.w_lexical:
        comps["lexical"] = catalog.lexical().coverage(seeker.need_texts, rows, len(catalog.ids))
    else:
        comps["lexical"] = np.zeros(len(rows))
    seeker_rank = catalog.stages.index(seeker.stage) if seeker.stage in catalog.stages else 0
    gap = catalog.stage_rank[rows] - seeker_rank
    comps["stage_gap"] = np.clip(gap / max(1, len(catalog.stages) - 1), 0, 1)
    comps["fatigue"] = 0.0 - np.minimum(1.0, catalog.used_90d[rows] / np.maximum(capacity, 1)) * (capacity > 0)

    w = weights(settings, has_needs)
    total = sum(w[c] * comps[c] for c in COMPONENTS) + settings.w_fatigue * comps["fatigue"]
    scores = total / (sum(w.values()) or 1.0)
    return Candidates(rows, comps, scores, need_best, need_best_id, capacity)


def lexical_candidates(
    catalog: Catalog, seeker: Seeker, allowed_rows: np.ndarray, settings: Settings, pool: int
) -> np.ndarray:
    """The rows (of ``allowed_rows``) of the ``pool`` advocates whose met needs best share the open needs'
    words: candidates that searches by vector can miss (none while ``w_lexical`` is 0)."""
    if not settings.w_lexical or not seeker.need_texts or len(allowed_rows) == 0:
        return np.zeros(0, dtype=np.int64)
    words = catalog.lexical().coverage(seeker.need_texts, allowed_rows, len(catalog.ids))
    top = np.argsort(-words, kind="stable")[:pool]
    return np.sort(allowed_rows[top[words[top] > 0]])


def take(cands: Candidates, keep: np.ndarray) -> Candidates:
    """The candidates at positions ``keep``, in that order."""
    return Candidates(
        cands.rows[keep],
        {c: v[keep] for c, v in cands.components.items()},
        cands.scores[keep],
        cands.need_best[keep],
        cands.need_best_id[keep],
        cands.capacity[keep],
    )


def _short(text: str, limit: int = 60) -> str:
    """At most ``limit`` characters, cut between words (a word longer than that is cut in it)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit - 1]
    cut = head.rsplit(" ", 1)[0] if " " in head and text[limit - 1] != " " else head
    return cut.rstrip(" ,;:") + "…"


def _months_between(start: str, today: date) -> int:
    d = date.fromisoformat(start[:10])
    return max(0, (today.year - d.year) * 12 + today.month - d.month - (today.day < d.day))


def claimed_needs(cands: Candidates, i: int, settings: Settings) -> list[int]:
    """The seeker's open needs (positions) that candidate ``i`` is claimed to have met: its closest met need
    is at least ``need_threshold`` alike. The one rule behind "met N of your open needs"."""
    return [j for j, s in enumerate(cands.need_best[i]) if s >= settings.need_threshold]


def explain(
    catalog: Catalog, seeker: Seeker, cands: Candidates, i: int, settings: Settings, product: str | None = None
) -> list[str]:
    """Plain-language reasons for candidate ``i``, each checkable against the data; ``product``: the product
    the match was asked for (the reason names it, not the seeker's other products)."""
    row = int(cands.rows[i])
    comps = {k: float(v[i]) for k, v in cands.components.items()}
    reasons: list[str] = []
    if seeker.need_texts:
        covered = claimed_needs(cands, i, settings)
        if covered:
            shown = ", ".join(
                f"{_short(seeker.need_texts[j])} (theirs: {_short(catalog.need_text[int(cands.need_best_id[i, j])])})"
                for j in covered[:3]
            )
            reasons.append(f"met {len(covered)} of your {len(seeker.need_texts)} open needs: {shown}")
        else:
            reasons.append(f"met none of your {len(seeker.need_texts)} open needs closely")
    if settings.w_lexical and comps["lexical"] >= LEXICAL_REASON:
        theirs = [catalog.need_text[int(n)] for n in catalog.met_needs_of(row)]
        words = catalog.lexical().shared_words(seeker.need_texts, theirs)
        if words:
            reasons.append("their met needs use your words: " + ", ".join(words))
    if comps["industry"]:
        reasons.append(f"same industry: {catalog.industry[row]}")
    if comps["size"] >= 0.75:
        reasons.append(f"similar size: {int(catalog.employees[row]):,} employees (you: {seeker.employees:,})")
    if comps["region"]:
        reasons.append(f"same region: {catalog.region[row]}")
    if product:
        reasons.append(f"uses {product}, the product asked for")
    else:
        shared = [p for p in seeker.products if p.casefold() in catalog.products[row]]
        if shared:
            reasons.append("uses " + ", ".join(shared))
    live = catalog.live_since[row]
    if live:
        months = _months_between(live, catalog.today)
        reasons.append(f"live for {months} months, now in {catalog.stages[catalog.stage_rank[row]]}")
    reasons.append(f"{int(catalog.used_quarter[row])} of {int(cands.capacity[i])} quarterly slots used")
    return reasons


def strength_of(score: float, settings: Settings, needs_met: int | None = None) -> str:
    """strong / fair / weak: the score against the calibrated thresholds (scripts/calibrate_strength.py).
    ``needs_met``: how many of the seeker's open needs the match is claimed to have met (None: the seeker
    has none); a match that met none of them is at most fair, whatever its score, since a strong match
    is one a rep can vouch for on the prospect's own needs."""
    if score >= settings.strength_strong and needs_met != 0:
        return "strong"
    return "fair" if score >= settings.strength_fair else "weak"


def weak_note(
    catalog: Catalog, seeker: Seeker, matches: list[Match], eligible: int, product: str | None, settings: Settings
) -> str | None:
    """When no match is better than weak: say so, and what none of them has (needs met, industry, size)."""
    if not matches:
        if eligible:
            return None
        return "No advocate can be proposed: none is eligible (consent, reference type, capacity, product, stage)."
    if any(m.strength != "weak" for m in matches):
        return None
    missing = []
    if seeker.need_texts and not any(m.needs_met for m in matches):
        missing.append(f"none has met a need like your {len(seeker.need_texts)} open ones")
    if seeker.industry and not any(m.components.get("industry") for m in matches):
        on = f" on {product}" if product else ""
        missing.append(f"no live advocate{on} in your industry ({seeker.industry})")
    if seeker.employees and not any(m.components.get("size", 0) >= 0.75 for m in matches):
        missing.append("none of a similar size")
    what = "; ".join(missing) if missing else "they score low on every count"
    return f"Nothing better than a weak match: {what}."
