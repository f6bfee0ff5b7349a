"""Risk rules configuration: the packaged ``defaults.toml`` merged with an optional user file.

The rules must stay transparent, so every weight and threshold lives in one TOML file a
person can read, and every mistake in it is refused with the file and key named.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from refmatch.domain.errors import ConfigError
from refmatch.domain.vocabulary import RISK_LEVELS

LEVELS = RISK_LEVELS
USER_FILE = "risk.toml"  # looked for beside the database
AGGREGATES = ("latest", "count", "sum")

# rule type -> {parameter: python type}; every parameter is required
RULE_TYPES: dict[str, dict[str, type]] = {
    "health_low": {"below": float},
    "health_drop": {"days": int, "min_points_lost": float},
    "usage_drop": {"days": int, "min_percent": float},
    "open_tickets": {"at_least": float},
    "escalation": {"recent_days": int, "recent_count": int},
    "nps_detractor": {"at_most": float, "max_age_days": int},
    "renewal_soon": {"within_days": int},
    "champion_left": {"within_days": int},
    "onboarding_stalled": {"stage": str, "longer_than_days": int},
    "signal": {"kind": str, "aggregate": str, "window_days": int, "label": str},
}
_COMMON = ("type", "points", "trouble")
_SIGNAL_BOUNDS = ("at_least", "at_most")  # a "signal" rule takes exactly one


@dataclass(frozen=True)
class RuleSpec:
    name: str
    type: str
    points: float
    trouble: str
    params: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Any:
        return self.params[key]


@dataclass(frozen=True)
class RiskConfig:
    medium: float = 30
    high: float = 60
    at_risk: str = "medium"
    max_age_days: int = 120
    replay_every_days: int = 7
    rules: tuple[RuleSpec, ...] = ()
    source: str = "defaults"
    digest: str = ""

    @property
    def at_risk_rank(self) -> int:
        return LEVELS.index(self.at_risk)

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "levels": {"medium": self.medium, "high": self.high, "at_risk": self.at_risk},
            "signals": {"max_age_days": self.max_age_days},
            "episodes": {"replay_every_days": self.replay_every_days},
            "rules": {
                r.name: {"type": r.type, "points": r.points, "trouble": r.trouble, **r.params} for r in self.rules
            },
        }


def defaults_text() -> str:
    return (resources.files("refmatch.risk") / "defaults.toml").read_text(encoding="utf-8")


def user_file_for(db_path: str | Path) -> Path:
    return Path(db_path).resolve().parent / USER_FILE


def load_config(path: str | Path | None = None, *, db_path: str | Path | None = None) -> RiskConfig:
    """The defaults, overlaid with ``path`` if given, else with ``risk.toml`` beside the database if it exists."""
    merged = _parse(defaults_text(), "defaults.toml")
    source, text = "defaults", ""
    file: Path | None
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"risk config not found: {file}")
    else:
        file = user_file_for(db_path) if db_path is not None else None
        if file is not None and not file.is_file():
            file = None
    if file is not None:
        text = file.read_text(encoding="utf-8")
        _merge(merged, _parse(text, str(file)), str(file))
        source = str(file)
    config = _build(merged, str(file) if file is not None else "defaults.toml")
    digest = hashlib.sha256((defaults_text() + text).encode()).hexdigest()[:12]
    return replace(config, source=source, digest=digest)


def _parse(text: str, name: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{name}: not valid TOML: {exc}") from None


def _merge(base: dict[str, Any], over: dict[str, Any], name: str) -> None:
    for key, value in over.items():
        if key not in ("levels", "signals", "episodes", "rules"):
            raise ConfigError(f"{name}: {key}: unknown section (allowed: levels, signals, episodes, rules)")
        if not isinstance(value, dict):
            raise ConfigError(f"{name}: {key}: must be a table")
        target = base.setdefault(key, {})
        for inner, inner_value in value.items():
            if key == "rules" and isinstance(inner_value, dict) and isinstance(target.get(inner), dict):
                if "type" in inner_value and inner_value["type"] != target[inner].get("type"):
                    target[inner] = dict(inner_value)  # a different rule under a default's name
                else:
                    target[inner].update(inner_value)
            else:
                target[inner] = inner_value


def _number(name: str, key: str, value: Any, low: float = 0, kind: type = float) -> Any:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= low
    if kind is int:
        ok = ok and float(value).is_integer()
    if not ok:
        want = "an integer" if kind is int else "a number"
        raise ConfigError(f"{name}: {key}: must be {want} >= {low}, got {value!r}")
    return kind(value)


def _table(name: str, data: dict[str, Any], section: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    table = data.get(section, {})
    for key in table:
        if key not in allowed:
            raise ConfigError(f"{name}: {section}.{key}: unknown key (allowed: {', '.join(allowed)})")
    return table


def _build(data: dict[str, Any], name: str) -> RiskConfig:
    levels = _table(name, data, "levels", ("medium", "high", "at_risk"))
    medium = _number(name, "levels.medium", levels.get("medium", 30))
    high = _number(name, "levels.high", levels.get("high", 60))
    if not 0 < medium < high <= 100:
        raise ConfigError(f"{name}: levels: need 0 < medium < high <= 100, got medium={medium}, high={high}")
    at_risk = levels.get("at_risk", "medium")
    if at_risk not in ("medium", "high"):
        raise ConfigError(f"{name}: levels.at_risk: must be 'medium' or 'high', got {at_risk!r}")
    signals = _table(name, data, "signals", ("max_age_days",))
    episodes = _table(name, data, "episodes", ("replay_every_days",))
    rules = tuple(_rule(name, rule, spec) for rule, spec in data.get("rules", {}).items())
    return RiskConfig(
        medium=medium,
        high=high,
        at_risk=at_risk,
        max_age_days=_number(name, "signals.max_age_days", signals.get("max_age_days", 120), 1, int),
        replay_every_days=_number(name, "episodes.replay_every_days", episodes.get("replay_every_days", 7), 1, int),
        rules=rules,
    )


def _rule(name: str, rule: str, spec: Any) -> RuleSpec:
    where = f"rules.{rule}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{name}: {where}: must be a table")
    kind = spec.get("type")
    if kind not in RULE_TYPES:
        raise ConfigError(f"{name}: {where}.type: must be one of {', '.join(RULE_TYPES)}, got {kind!r}")
    wanted = RULE_TYPES[kind]
    allowed = (*_COMMON, *wanted, *(_SIGNAL_BOUNDS if kind == "signal" else ()))
    for key in spec:
        if key not in allowed:
            raise ConfigError(f"{name}: {where}.{key}: unknown key (allowed: {', '.join(allowed)})")
    for key in ("points", "trouble", *wanted):
        if key not in spec:
            raise ConfigError(f"{name}: {where}.{key}: missing")
    trouble = spec["trouble"]
    if not isinstance(trouble, str) or not trouble.strip():
        raise ConfigError(f"{name}: {where}.trouble: must be a non-empty string")
    params: dict[str, Any] = {}
    for key, kind_of in wanted.items():
        value = spec[key]
        if kind_of is str:
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{name}: {where}.{key}: must be a non-empty string")
            params[key] = value.strip()
        else:
            params[key] = _number(name, f"{where}.{key}", value, 0, kind_of)
    if kind == "signal":
        if params["aggregate"] not in AGGREGATES:
            raise ConfigError(f"{name}: {where}.aggregate: must be one of {', '.join(AGGREGATES)}")
        bounds = [b for b in _SIGNAL_BOUNDS if b in spec]
        if len(bounds) != 1:
            raise ConfigError(f"{name}: {where}: give exactly one of at_least, at_most")
        params[bounds[0]] = _number(name, f"{where}.{bounds[0]}", spec[bounds[0]], float("-inf"))
    return RuleSpec(rule, kind, _number(name, f"{where}.points", spec["points"]), trouble.strip(), params)
