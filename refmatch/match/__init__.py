"""Matching: eligibility, scoring, diversity and explanations over a catalog snapshot."""

from refmatch.match.catalog import Catalog, load_catalog
from refmatch.match.eligibility import Rules, eligible_mask
from refmatch.match.engine import Indexes, find_matches

__all__ = ["Catalog", "Indexes", "Rules", "eligible_mask", "find_matches", "load_catalog"]
