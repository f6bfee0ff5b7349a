"""refmatch: match customers to peer references further along the same journey."""

__version__ = "0.1.0"
