"""Risk: transparent rules over dated signals, risk episodes, and a fitted model to check the rules.

- ``config``: the rules' weights and thresholds (``defaults.toml``, overlaid by ``risk.toml``);
- ``signals``: signals and accounts as column arrays, for as-of lookups over every account at once;
- ``rules``: the rules, the 0-100 score, the level and the reasons in plain words;
- ``episodes``: stored scores and episodes (entered, reasons, resolved or churned);
- ``churn``: the churn events import; ``fit``: logistic regression against the rules.
"""

from refmatch.risk.config import LEVELS, RiskConfig, load_config
from refmatch.risk.episodes import UpdateReport, after_import, update
from refmatch.risk.rules import Reason, Scores, score_accounts
from refmatch.risk.signals import AccountFrame, SignalTable, load_accounts, load_signals

__all__ = [
    "LEVELS",
    "AccountFrame",
    "Reason",
    "RiskConfig",
    "Scores",
    "SignalTable",
    "UpdateReport",
    "after_import",
    "load_accounts",
    "load_config",
    "load_signals",
    "score_accounts",
    "update",
]
