"""Domain objects that cross layers: a seeker to match and the matches proposed for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refmatch.domain.vocabulary import DEFAULT_REFERENCE_TYPE, PURPOSES  # noqa: F401 - re-exported


@dataclass
class Seeker:
    """Who needs a peer: a stored account, or an ad-hoc description (account_id None)."""

    name: str
    stage: str
    profile_vector: np.ndarray
    need_texts: list[str] = field(default_factory=list)
    need_vectors: np.ndarray | None = None
    account_id: int | None = None
    external_id: str | None = None
    industry: str | None = None
    employees: int | None = None
    country: str | None = None
    region: str | None = None
    products: list[str] = field(default_factory=list)
    do_not_match: list[str] = field(default_factory=list)


STRENGTHS = ("strong", "fair", "weak")


@dataclass
class Match:
    rank: int
    advocate_id: int
    external_id: str
    name: str
    score: float
    components: dict[str, float]
    reasons: list[str]
    strength: str = "fair"  # strong | fair | weak: the score against the calibrated thresholds
    needs_met: int = 0  # the seeker's open needs its reasons claim it met (shown in the reasons)

    def as_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "advocate": {"external_id": self.external_id, "name": self.name},
            "score": round(self.score, 3),
            "strength": self.strength,
            "components": {k: round(v, 3) for k, v in self.components.items()},
            "reasons": self.reasons,
        }


@dataclass
class MatchResult:
    seeker: Seeker
    purpose: str
    matches: list[Match]
    model: str
    index: dict[str, Any]
    eligible: int = 0
    note: str | None = None  # when nothing is better than weak: so, plainly, and what is missing

    def as_dict(self) -> dict[str, Any]:
        return {
            "seeker": {"external_id": self.seeker.external_id, "name": self.seeker.name},
            "purpose": self.purpose,
            "matches": [m.as_dict() for m in self.matches],
            "note": self.note,
            "model": self.model,
            "index": self.index,
        }
