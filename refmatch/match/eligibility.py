"""Hard filters: who may be put in front of this seeker for this purpose at all.

The result is an array of account ids handed to the FAISS search as its id
selector, so a request for k matches returns k whenever k eligible advocates exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refmatch.domain.models import DEFAULT_REFERENCE_TYPE, Seeker
from refmatch.match.catalog import Catalog


@dataclass(frozen=True)
class Rules:
    purpose: str
    reference_type: str
    default_capacity: int
    min_health: float
    product: str | None = None


def capacity_of(catalog: Catalog, default_capacity: int) -> np.ndarray:
    """Quarterly capacity per row, the default where an advocate names none (cached per catalog)."""
    return catalog.memo(
        "capacity", default_capacity, lambda: np.where(catalog.capacity < 0, default_capacity, catalog.capacity)
    )


def standing_mask(catalog: Catalog, min_health: float | None = None) -> np.ndarray:
    """Advocates who could be put in front of anyone: consenting, live, not at risk, outside any
    blackout and, given ``min_health``, not known to be below it (cached per catalog, a day's data).

    Every eligible advocate is standing, whatever the seeker and the purpose (for rules
    whose ``min_health`` is at least the one given).
    """

    def compute() -> np.ndarray:
        mask = catalog.is_advocate & catalog.consent & (catalog.stage_rank >= catalog.live_rank)
        # never put an at-risk (or lost) account in front of a prospect or a peer
        mask[catalog.risk.at_risk_rows] = False
        mask &= catalog.blackout_until <= catalog.today.toordinal()
        if catalog.unindexed is not None:  # text not in the served index yet: proposed after the next build
            mask &= ~catalog.unindexed
        if min_health is not None:
            # unknown health is not evidence of ill health; a known low score is
            mask &= ~(catalog.health < min_health)
        return mask

    return catalog.memo("standing", min_health, compute)


def _available(catalog: Catalog, rules: Rules) -> np.ndarray:
    """Standing advocates who offer the reference type, have a slot left this quarter, are outside any
    blackout and are not known to be unhealthy: the seeker-independent part of eligibility (cached)."""
    ref_type = rules.reference_type or DEFAULT_REFERENCE_TYPE[rules.purpose]
    key = (ref_type, rules.default_capacity, rules.min_health)

    def compute() -> np.ndarray:
        mask = standing_mask(catalog, rules.min_health) & catalog.offers(ref_type)
        return mask & (catalog.used_quarter < capacity_of(catalog, rules.default_capacity))

    return catalog.memo("available", key, compute)


def eligible_mask(catalog: Catalog, seeker: Seeker, rules: Rules) -> np.ndarray:
    """A boolean mask over catalog rows of the advocates this seeker may be matched with."""
    seeker_rank = catalog.stages.index(seeker.stage) if seeker.stage in catalog.stages else 0
    if rules.purpose == "retention":
        mask = _available(catalog, rules) & (catalog.stage_rank >= seeker_rank)
    else:
        mask = _available(catalog, rules) & (catalog.stage_rank > seeker_rank)

    products = [rules.product] if rules.product else seeker.products
    wanted = [catalog.product_vocab[p.casefold()] for p in products if p.casefold() in catalog.product_vocab]
    if products:
        # further along on the product that matters: an advocate must use one of them
        mask &= np.logical_or.reduce(catalog.product_columns()[wanted]) if wanted else False

    mask[excluded_rows(catalog, seeker)] = False
    return mask


def excluded_rows(catalog: Catalog, seeker: Seeker) -> np.ndarray:
    """Rows this seeker may never meet, sorted: itself, its do_not_match, and accounts whose do_not_match names it."""
    rows: list[int] = []
    if seeker.account_id is not None:
        try:
            rows.append(catalog.row(seeker.account_id))
        except KeyError:
            pass
    for name in set(seeker.do_not_match):
        row = catalog.row_by_external(name)
        if row is not None:
            rows.append(row)
    if seeker.external_id is not None:
        rows.extend(catalog.blocked_rows(seeker.external_id))
    return np.unique(np.asarray(rows, dtype=np.int64))
