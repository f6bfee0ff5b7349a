"""Every risk rule fires at its threshold and not just short of it, on dated signals as of a date."""

from datetime import date

import numpy as np
import pytest

from refmatch.domain.errors import ConfigError
from refmatch.risk import AccountFrame, SignalTable, load_config, score_accounts
from refmatch.risk.signals import ordinal

STAGES = ("prospect", "onboarding", "adoption", "value", "expansion")
AS_OF = date(2026, 6, 30)
DEFAULTS = load_config()


def score(signals=(), *, n=1, config=DEFAULTS, as_of=AS_OF, **frame):
    """Score ``n`` accounts; signals are (row, kind, 'YYYY-MM-DD', value)."""
    accounts = AccountFrame.build([f"A{i}" for i in range(n)], stages=STAGES, **frame)
    table = SignalTable.build(n, ((r, k, ordinal(d), v) for r, k, d, v in signals))
    return score_accounts(accounts, table, as_of, config)


def fired(scores, rule):
    """Per account row, whether ``rule`` fired."""
    outcome = next(o for o in scores.outcomes if o.spec.name == rule)
    return outcome.fired.tolist()


def texts(scores, row=0):
    return [r.text for r in scores.reasons(row)]


def test_health_low_below_50_from_signals_up_to_the_as_of_date():
    s = score(
        [
            (0, "health", "2026-06-01", 49),
            (1, "health", "2026-06-01", 50),
            (2, "health", "2026-02-01", 30),  # 149 days old: stale (max_age_days 120)
            (3, "health", "2026-06-01", 80),
            (3, "health", "2026-07-01", 10),  # after the as-of date: not read
        ],
        n=4,
    )
    assert fired(s, "health_low") == [True, False, False, False]
    assert texts(s) == ["health 49 on 2026-06-01, below 50"]


def test_health_drop_over_30_and_90_days():
    s = score(
        [
            # 30 days: 'then' is the latest value on or before 2026-05-31
            (0, "health", "2026-05-31", 70),
            (0, "health", "2026-06-30", 60),
            (1, "health", "2026-05-31", 70),
            (1, "health", "2026-06-30", 61),
            (2, "health", "2026-06-01", 70),  # inside the 30 days: no 'then' value, no drop
            (2, "health", "2026-06-30", 40),
            # 90 days: 'then' on or before 2026-04-01
            (3, "health", "2026-04-01", 80),
            (3, "health", "2026-06-30", 60),
            (4, "health", "2026-04-01", 80),
            (4, "health", "2026-06-30", 61),
        ],
        n=5,
    )
    assert fired(s, "health_drop_30") == [True, False, False, False, False]
    assert fired(s, "health_drop_90") == [False, False, False, True, False]
    assert "health fell 10 points in 30 days: 70 on 2026-05-31, 60 on 2026-06-30" in texts(s, 0)
    assert "health fell 20 points in 90 days: 80 on 2026-04-01, 60 on 2026-06-30" in texts(s, 3)


def test_usage_drop_in_percent_over_30_and_90_days():
    s = score(
        [
            (0, "usage", "2026-05-31", 100),
            (0, "usage", "2026-06-30", 80),
            (1, "usage", "2026-05-31", 100),
            (1, "usage", "2026-06-30", 81),
            (2, "usage", "2026-04-01", 100),
            (2, "usage", "2026-06-30", 70),
            (3, "usage", "2026-04-01", 100),
            (3, "usage", "2026-06-30", 71),
            (4, "usage", "2026-05-31", 0),  # from zero: no percentage, no drop
            (4, "usage", "2026-06-30", 0),
        ],
        n=5,
    )
    assert fired(s, "usage_drop_30") == [True, False, False, False, False]
    assert fired(s, "usage_drop_90") == [False, False, True, False, False]
    assert "usage fell 30% in 90 days: 100 on 2026-04-01, 70 on 2026-06-30" in texts(s, 2)


def test_open_tickets_from_five():
    s = score([(0, "open_tickets", "2026-06-01", 5), (1, "open_tickets", "2026-06-01", 4)], n=2)
    assert fired(s, "open_tickets") == [True, False]
    assert texts(s) == ["5 open support tickets on 2026-06-01 (5 or more)"]


def test_escalation_open_or_two_opened_within_90_days():
    s = score(
        [
            (0, "escalation", "2026-01-10", 1),  # open for months: still open
            (1, "escalation", "2026-06-10", 1),
            (1, "escalation", "2026-06-20", 0),  # one, resolved: no
            (2, "escalation", "2026-04-10", 1),
            (2, "escalation", "2026-04-20", 0),
            (2, "escalation", "2026-06-10", 1),
            (2, "escalation", "2026-06-20", 0),  # two opened within 90 days: yes
            (3, "escalation", "2026-03-10", 1),  # the first is outside (2026-04-01, 2026-06-30]
            (3, "escalation", "2026-03-20", 0),
            (3, "escalation", "2026-06-10", 1),
            (3, "escalation", "2026-06-20", 0),
        ],
        n=4,
    )
    assert fired(s, "escalation") == [True, False, True, False]
    assert texts(s, 0) == ["an escalation open since 2026-01-10"]
    assert texts(s, 2) == ["2 escalations opened in the last 90 days"]


def test_nps_detractor_is_0_to_6_answered_within_a_year():
    s = score(
        [(0, "nps", "2026-05-01", 6), (1, "nps", "2026-05-01", 7), (2, "nps", "2025-06-29", 3)],
        n=3,
    )
    assert fired(s, "nps_detractor") == [True, False, False]
    assert texts(s) == ["NPS 6 on 2026-05-01: a detractor (0-6)"]


def test_renewal_within_90_days():
    s = score(n=4, renewal=["2026-09-28", "2026-09-29", "2026-06-01", None])
    assert fired(s, "renewal_soon") == [True, False, False, False]
    assert texts(s) == ["renewal in 90 days, on 2026-09-28"]


def test_champion_left_within_180_days():
    s = score([(0, "champion_left", "2026-01-02", 1), (1, "champion_left", "2026-01-01", 1)], n=2)
    assert fired(s, "champion_left") == [True, False]  # 179 days ago yes, 180 no
    assert texts(s) == ["champion left on 2026-01-02"]


def test_onboarding_stalled_after_120_days():
    s = score(
        n=3,
        stage_history=[
            (0, "onboarding", "2026-02-28"),  # 122 days
            (1, "onboarding", "2026-03-02"),  # 120 days: not more than 120
            (2, "onboarding", "2026-01-01"),
            (2, "adoption", "2026-06-01"),  # went live: not stalled
        ],
    )
    assert fired(s, "onboarding_stalled") == [True, False, False]
    assert texts(s) == ["in onboarding for 122 days, since 2026-02-28 (more than 120)"]


def test_score_is_the_sum_of_points_compressed_below_100_with_levels_at_30_and_60():
    everything = [
        (0, "health", "2026-03-01", 90),
        (0, "health", "2026-05-01", 80),
        (0, "health", "2026-06-30", 20),
        (0, "usage", "2026-03-01", 100),
        (0, "usage", "2026-05-01", 100),
        (0, "usage", "2026-06-30", 10),
        (0, "open_tickets", "2026-06-30", 9),
        (0, "escalation", "2026-06-30", 1),
        (0, "nps", "2026-06-30", 0),
        (0, "champion_left", "2026-06-01", 1),
    ]
    s = score(
        [*everything, (1, "champion_left", "2026-06-01", 1), (1, "open_tickets", "2026-06-30", 5)],
        n=4,
        renewal=[None, None, "2026-07-30", None],
        stage_history=[(3, "onboarding", "2026-01-01")],
    )
    assert s.score.tolist()[1:] == [30, 10, 15]  # plain sums below the knee
    assert 90 < s.score[0] < 100  # more than 100 points, compressed: never the old cap
    assert [s.level_name(i) for i in range(4)] == ["high", "medium", "low", "low"]
    assert s.at_risk.tolist() == [True, True, False, False]
    assert s.troubles(1) == ["support backlog", "champion left"]
    assert [r.points for r in s.reasons(1)] == [10, 20]


def test_a_churned_account_is_no_longer_at_risk():
    s = score([(0, "champion_left", "2026-06-01", 1), (0, "open_tickets", "2026-06-01", 5)], churn=[(0, "2026-06-15")])
    assert s.score[0] == 30 and s.churned[0] and not s.at_risk[0]


def test_custom_signal_rule_and_user_file_merged_over_defaults(tmp_path):
    (tmp_path / "risk.toml").write_text(
        "[levels]\nmedium = 20\n\n[rules.open_tickets]\nat_least = 3\n\n"
        '[rules.downgrades]\ntype = "signal"\nkind = "downgrade"\naggregate = "count"\nwindow_days = 180\n'
        'at_least = 1\nlabel = "downgrades"\npoints = 25\ntrouble = "downgrades"\n'
    )
    config = load_config(db_path=tmp_path / "refmatch.db")
    assert config.source == str(tmp_path / "risk.toml") and config.medium == 20 and config.high == 60
    s = score(
        [(0, "downgrade", "2026-03-01", 1), (1, "downgrade", "2025-12-01", 1), (1, "open_tickets", "2026-06-01", 3)],
        n=2,
        config=config,
    )
    assert fired(s, "downgrades") == [True, False]
    assert fired(s, "open_tickets") == [False, True]
    assert texts(s) == ["1 downgrades in the last 180 days (1 or more)"]
    assert [s.level_name(0), s.level_name(1)] == ["medium", "low"]


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[rules.health_low]\nbelo = 40\n", r"rules\.health_low\.belo: unknown key \(allowed: type, points"),
        ("[rules.health_low]\nbelow = 'forty'\n", r"rules\.health_low\.below: must be a number >= 0, got 'forty'"),
        ("[rules.new]\ntype = 'health_low'\npoints = 5\n", r"rules\.new\.trouble: missing"),
        ("[rules.new]\ntype = 'magic'\n", r"rules\.new\.type: must be one of health_low, "),
        ("[levels]\nmedium = 70\n", r"levels: need 0 < medium < high <= 100, got medium=70"),
        ("[levels]\nat_risk = 'low'\n", r"levels\.at_risk: must be 'medium' or 'high'"),
        ("[colours]\nred = 1\n", r"colours: unknown section"),
        ("[levels\n", r"not valid TOML"),
    ],
)
def test_bad_config_names_the_file_and_key(tmp_path, toml, message):
    path = tmp_path / "risk.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError, match=message) as err:
        load_config(path)
    assert str(path) in err.value.message and "\n" not in err.value.message


def test_defaults_are_documented_in_the_packaged_file():
    from refmatch.risk.config import defaults_text

    text = defaults_text()
    for rule in DEFAULTS.rules:
        assert f"[rules.{rule.name}]" in text
    assert "at_risk" in text and "max_age_days" in text and "replay_every_days" in text
    assert ordinal("2026-06-30") == AS_OF.toordinal()


def test_scores_past_the_old_cap_stay_ordered_by_points_then_health():
    from refmatch.risk.rules import KNEE, scaled

    points = np.array([0.0, 30, KNEE, 90, 100, 125, 145, 200])
    out = scaled(points)
    assert out[:3].tolist() == [0, 30, KNEE] and (np.diff(out) > 0).all() and out.max() < 100
    common = [("usage", "2026-03-01", 100), ("usage", "2026-06-30", 10), ("open_tickets", "2026-06-30", 9),
              ("escalation", "2026-06-30", 1), ("nps", "2026-06-30", 0), ("champion_left", "2026-06-01", 1),
              ("health", "2026-03-01", 90), ("health", "2026-05-01", 80)]  # fmt: skip
    rows = [(i, kind, day, v) for i in (0, 1) for kind, day, v in common]
    rows += [(i, "health", "2026-06-30", h) for i, h in ((0, 20), (1, 40))]
    s = score(rows, n=2)
    fired_points = [sum(r.points for r in s.reasons(i)) for i in (0, 1)]
    assert fired_points[0] == fired_points[1] > KNEE
    assert s.score[0] > s.score[1]  # the same points, told apart by the worse latest health
