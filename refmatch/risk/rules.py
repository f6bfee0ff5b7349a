"""The risk rules: each reads the signals as of a date, says per account whether it fires,
the measured value behind it (a feature for the fitted model) and, in plain words, why.

A score is the sum of the points of the rules that fired, up to ``KNEE``; above it the sum is
compressed so that it approaches 100 without reaching it (accounts past the old cap of 100
stay ordered by their points), and there worse latest health adds at most 0.1 to break the
ties of equal points (below KNEE a score is the plain sum, as readers check it). The level
follows the configured thresholds, applied to the points. Nothing here is learned: a person
can check every reason against the signals it names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from refmatch.risk.config import LEVELS, RiskConfig, RuleSpec
from refmatch.risk.signals import AccountFrame, SignalTable, day_text, ordinal


@dataclass(frozen=True)
class Reason:
    rule: str
    trouble: str
    points: float
    text: str

    def as_dict(self) -> dict[str, object]:
        return {"rule": self.rule, "trouble": self.trouble, "points": self.points, "text": self.text}


@dataclass
class RuleOutcome:
    spec: RuleSpec
    fired: np.ndarray  # bool per account
    measure: np.ndarray  # the value the rule compared (NaN: not known)
    explain: Callable[[int], str]


@dataclass
class Ctx:
    accounts: AccountFrame
    signals: SignalTable
    day: int
    config: RiskConfig
    _latest: dict[tuple[str, int | None], tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.accounts.n

    def latest(self, kind: str, max_age: int | None = -1) -> tuple[np.ndarray, np.ndarray]:
        """(value, day) of the latest ``kind`` observation on or before the as-of date (default age limit)."""
        age = self.config.max_age_days if max_age == -1 else max_age
        key = (kind, age)
        if key not in self._latest:
            self._latest[key] = self.signals[kind].at(self.n, self.day, age)
        return self._latest[key]


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def health_low(ctx: Ctx, r: RuleSpec) -> RuleOutcome:
    value, seen = ctx.latest("health")
    below = r["below"]
    return RuleOutcome(
        r, value < below, value, lambda i: f"health {_num(value[i])} on {day_text(seen[i])}, below {_num(below)}"
    )


def _change(ctx: Ctx, kind: str, days: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The latest value, and the value ``days`` before it (the latest reading then, at most days/2 older)."""
    now, now_day = ctx.latest(kind)
    then, then_day = ctx.signals[kind].at(ctx.n, np.where(now_day > 0, now_day - days, 0), max_age=days // 2)
    both = ~np.isnan(now) & ~np.isnan(then)
    return np.where(both, now, np.nan), now_day, np.where(both, then, np.nan), then_day


def health_drop(ctx: Ctx, r: RuleSpec) -> RuleOutcome:
    now, now_day, then, then_day = _change(ctx, "health", r["days"])
    lost = then - now
    return RuleOutcome(
        r,
        lost >= r["min_points_lost"],
        lost,
        lambda i: (
            f"health fell {_num(lost[i])} points in {r['days']} days: "
            f"{_num(then[i])} on {day_text(then_day[i])}, {_num(now[i])} on {day_text(now_day[i])}"
        ),
    )


def usage_drop(ctx: Ctx, r: RuleSpec) -> RuleOutcome:
    now, now_day, then, then_day = _change(ctx, "usage", r["days"])
    with np.errstate(divide="ignore", invalid="ignore"):
        fell = np.where(then > 0, (then - now) / then * 100.0, np.nan)
    return RuleOutcome(
        r,
        fell >= r["min_percent"],
        fell,
        lambda i: (
            f"usage fell {fell[i]:.0f}% in {r['days']} days: "
            f"{_num(then[i])} on {day_text(then_day[i])}, {_num(now[i])} on {day_text(now_day[i])}"
        ),
    )


def open_tickets(ctx: Ctx, r: RuleSpec) -> RuleOutcome:
    value, seen = ctx.latest("open_tickets")
    return RuleOutcome(
        r,
        value >= r["at_least"],
        value,
        lambda i: f"{_num(value[i])} open support tickets on {day_text(seen[i])} ({_num(r['at_least'])} or more)",
    )


def escalation(ctx: Ctx, r: RuleSpec) -> RuleOutcome:
    last, since = ctx.latest("escalation", max_age=None)  # open until a 0 (resolved) follows
    is_open = last >= 1
    recent, _ = ctx.signals["escalation"].events().window(ctx.n, ctx.day - r["recent_days"], ctx.day)

    def explain(i: int) -> str:
        parts = [f"an escalation open since {day_text(since[i])}"] if is_open[i] else []
        if recent[i] >= r["recent_count"]:
            parts.append(f"{recent[i]} escalations opened in the last {r['recent_days']} days")
        return "; ".join(parts)

    return RuleOutcome(r, is_open | (recent >= r["recent_count"]), recent + is_open, explain)


def nps_detractor(ctx: Ctx, r: RuleSpec) -> RuleOutcome:
    value, seen = ctx.latest("nps", max_age=r["max_age_days"])
    return RuleOutcome(
        r,
        value <= r["at_most"],
        value,
        lambda i: f"NPS {_num(value[i])} on {day_text(seen[i])}: a detractor (0-{_num(r['at_most'])})",
    )


def renewal_soon(ctx: Ctx, r: RuleSpec) -> RuleOutcome:
    renewal = ctx.accounts.renewal
    days = np.where(renewal >= ctx.day, renewal - ctx.day, -1)
    return RuleOutcome(
        r,
        (days >= 0) & (days <= r["within_days"]),
        np.where(days >= 0, days, np.nan).astype(np.float64),
        lambda i: f"renewal in {days[i]} days, on {day_text(renewal[i])}",
    )


def champion_left(ctx: Ctx, r: RuleSpec) -> RuleOutcome:
    events = ctx.signals["champion_left"].events()
    count, _ = events.window(ctx.n, ctx.day - r["within_days"], ctx.day)
    _, when = events.at(ctx.n, ctx.day)
    fired = count > 0
    return RuleOutcome(r, fired, fired.astype(np.float64), lambda i: f"champion left on {day_text(when[i])}")


def onboarding_stalled(ctx: Ctx, r: RuleSpec) -> RuleOutcome:
    stages = ctx.accounts.stages
    target = stages.index(r["stage"]) if r["stage"] in stages else -2
    stage, entered = ctx.accounts.stage_at(ctx.day)
    days = np.where(stage == target, ctx.day - entered, 0)
    return RuleOutcome(
        r,
        days > r["longer_than_days"],
        days.astype(np.float64),
        lambda i: (
            f"in {r['stage']} for {days[i]} days, since {day_text(entered[i])} (more than {r['longer_than_days']})"
        ),
    )


def signal(ctx: Ctx, r: RuleSpec) -> RuleOutcome:
    series, window, label = ctx.signals[r["kind"]], r["window_days"], r["label"]
    if r["aggregate"] == "latest":
        value, seen = series.at(ctx.n, ctx.day, window)
        text = lambda i: f"{label} {_num(float(value[i]))} on {day_text(int(seen[i]))}"  # noqa: E731
    elif r["aggregate"] == "count":
        count, _ = series.events().window(ctx.n, ctx.day - window, ctx.day)
        value = count.astype(np.float64)
        text = lambda i: f"{_num(value[i])} {label} in the last {window} days"  # noqa: E731
    else:
        count, total = series.window(ctx.n, ctx.day - window, ctx.day)
        value = np.where(count > 0, total, np.nan)
        text = lambda i: f"{label} totals {_num(value[i])} over the last {window} days"  # noqa: E731
    if "at_least" in r.params:
        fired, bound = value >= r["at_least"], f"{_num(r['at_least'])} or more"
    else:
        fired, bound = value <= r["at_most"], f"{_num(r['at_most'])} or less"
    return RuleOutcome(r, fired, value, lambda i: f"{text(i)} ({bound})")


RULES: dict[str, Callable[[Ctx, RuleSpec], RuleOutcome]] = {
    "health_low": health_low,
    "health_drop": health_drop,
    "usage_drop": usage_drop,
    "open_tickets": open_tickets,
    "escalation": escalation,
    "nps_detractor": nps_detractor,
    "renewal_soon": renewal_soon,
    "champion_left": champion_left,
    "onboarding_stalled": onboarding_stalled,
    "signal": signal,
}


@dataclass
class Scores:
    """Every account scored as of one date; reasons are worded only for the rows asked for."""

    as_of: date
    accounts: AccountFrame
    config: RiskConfig
    outcomes: list[RuleOutcome]
    score: np.ndarray
    level: np.ndarray  # index into LEVELS
    churned: np.ndarray  # churned on or before as_of: no longer scored as at risk

    @property
    def at_risk(self) -> np.ndarray:
        return (self.level >= self.config.at_risk_rank) & ~self.churned

    def level_name(self, row: int) -> str:
        return LEVELS[int(self.level[row])]

    def reasons(self, row: int) -> list[Reason]:
        return [
            Reason(o.spec.name, o.spec.trouble, o.spec.points, o.explain(row))
            for o in self.outcomes
            if o.fired[row] and o.spec.points > 0
        ]

    def rules_fired(self, row: int) -> list[str]:
        return [o.spec.name for o in self.outcomes if o.fired[row] and o.spec.points > 0]

    def troubles(self, row: int) -> list[str]:
        return list(dict.fromkeys(o.spec.trouble for o in self.outcomes if o.fired[row] and o.spec.points > 0))

    def features(self) -> tuple[list[str], np.ndarray]:
        """(names, accounts x rules matrix) of the measured values: the fitted model's inputs."""
        names = [o.spec.name for o in self.outcomes]
        matrix = np.column_stack([o.measure.astype(np.float64) for o in self.outcomes]) if self.outcomes else None
        return names, matrix if matrix is not None else np.zeros((self.accounts.n, 0))


KNEE = 80.0  # points up to this are the score as they are; beyond, they approach 100 ever more slowly
TIE_BREAK = 0.1  # the most the latest health adds (health 0), so equal points are ordered by health


def scaled(points: np.ndarray) -> np.ndarray:
    """Points as a score below 100: unchanged up to KNEE, then 100 - (100 - KNEE) * exp(-(excess) / (100 - KNEE)),
    which continues with slope 1 at KNEE and is strictly increasing (no two point totals share a score)."""
    room = 100.0 - KNEE
    return np.where(points <= KNEE, points, 100.0 - room * np.exp(-(points - KNEE) / room))


def score_accounts(accounts: AccountFrame, signals: SignalTable, as_of: date, config: RiskConfig) -> Scores:
    """Score every account with the signals observed on or before ``as_of`` (nothing later is read)."""
    day = ordinal(as_of)
    ctx = Ctx(accounts, signals, day, config)
    with np.errstate(invalid="ignore"):
        outcomes = [RULES[spec.type](ctx, spec) for spec in config.rules]
    total = np.zeros(accounts.n)
    for o in outcomes:
        o.fired = np.asarray(o.fired, dtype=bool)
        total += np.where(o.fired, o.spec.points, 0.0)
    health, _ = ctx.latest("health")
    worse = np.where(np.isnan(health), 0.0, (100.0 - np.clip(health, 0.0, 100.0)) / 100.0 * TIE_BREAK)
    score = np.minimum(scaled(total) + np.where(total > KNEE, worse, 0.0), 100.0 - TIE_BREAK / 100)
    capped = np.minimum(total, 100.0)
    level = np.where(capped >= config.high, 2, np.where(capped >= config.medium, 1, 0)).astype(np.int8)
    _, churn_day = accounts.churn.at(accounts.n, day)
    return Scores(as_of, accounts, config, outcomes, score, level, churn_day > 0)
