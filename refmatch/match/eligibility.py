"""Hard filters: who may be put in front of this seeker for this purpose at all.

The result is an array of account ids handed to the FAISS search as its id
selector, so a request for k matches returns k whenever k eligible advocates exist.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from refmatch.match.catalog import Catalog
from refmatch.models import DEFAULT_REFERENCE_TYPE, Seeker


@dataclass(frozen=True)
class Rules:
    purpose: str
    reference_type: str
    default_capacity: int
    min_health: float
    product: str | None = None


def capacity_of(catalog: Catalog, default_capacity: int) -> np.ndarray:
    return np.where(catalog.capacity < 0, default_capacity, catalog.capacity)


def eligible_mask(catalog: Catalog, seeker: Seeker, rules: Rules) -> np.ndarray:
    """A boolean mask over catalog rows of the advocates this seeker may be matched with."""
    mask = catalog.is_advocate & catalog.consent
    ref_type = rules.reference_type or DEFAULT_REFERENCE_TYPE[rules.purpose]
    mask &= catalog.offers(ref_type)
    mask &= catalog.used_quarter < capacity_of(catalog, rules.default_capacity)
    mask &= catalog.blackout_until <= catalog.today.toordinal()
    # unknown health is not evidence of ill health; a known low score is
    mask &= ~(catalog.health < rules.min_health)
    # never put an at-risk (or lost) account in front of a prospect or a peer
    mask[catalog.risk.at_risk_rows] = False

    seeker_rank = catalog.stages.index(seeker.stage) if seeker.stage in catalog.stages else 0
    mask &= catalog.stage_rank >= catalog.live_rank
    if rules.purpose == "retention":
        mask &= catalog.stage_rank >= seeker_rank
    else:
        mask &= catalog.stage_rank > seeker_rank

    products = [rules.product] if rules.product else seeker.products
    wanted = [catalog.product_vocab[p.casefold()] for p in products if p.casefold() in catalog.product_vocab]
    if products:
        # further along on the product that matters: an advocate must use one of them
        mask &= catalog.product_matrix[:, wanted].any(axis=1) if wanted else False

    if seeker.account_id is not None:
        try:
            mask[catalog.row(seeker.account_id)] = False
        except KeyError:
            pass
    excluded = set(seeker.do_not_match)
    if excluded:
        rows = [catalog.row_by_external(e) for e in excluded]
        mask[[r for r in rows if r is not None]] = False
    if seeker.external_id is not None:
        for account_id, blocked in catalog.do_not_match.items():
            if seeker.external_id in blocked:
                mask[catalog.row(account_id)] = False
    return mask
