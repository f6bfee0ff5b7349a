"""Server-side SVG charts: bars and lines drawn to scale, labelled, patterned, escaped."""

import re

from refmatch.web.charts import bars, lines


def test_bars_are_drawn_to_scale_with_their_numbers_and_patterns():
    svg = str(bars(["Q1", "Q2"], [("demand", [10, 5]), ("capacity <all>", [0, 20])], title="A & B"))
    assert svg.startswith('<svg class="chart"') and 'role="img"' in svg and 'data-points="4"' in svg
    assert "<title" in svg and "A &amp; B" in svg and "capacity &lt;all&gt;" in svg  # escaped
    heights = [
        float(h)
        for h in re.findall(r'<rect class="mark s\d" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', svg)
    ]
    demand_q1, capacity_q1, demand_q2, capacity_q2 = heights[:4]
    assert capacity_q1 == 0 and demand_q1 == 2 * demand_q2 and capacity_q2 == 2 * demand_q1  # axis top 20
    assert 'fill="url(#chart' in svg  # the second series is hatched, not only another colour
    assert ">10<" in svg and ">20<" in svg  # the values are written on the bars


def test_lines_place_points_by_value_and_bands_by_date_with_shapes_not_only_colours():
    days = ["2026-01-01", "2026-02-01", "2026-03-01"]
    svg = str(
        lines(
            days,
            [("health", [80, None, 40]), ("usage", [50, 50, 50])],
            title="Health <and> usage",
            bands=[("2026-01-16", "", "at risk")],
        )
    )
    assert 'role="img"' in svg and 'data-points="5"' in svg and "Health &lt;and&gt; usage" in svg
    health = [(float(x), float(y)) for x, y in re.findall(r'<circle class="pt s0" cx="([\d.]+)" cy="([\d.]+)"', svg)]
    assert len(health) == 2 + 1  # two readings (the gap is skipped) and the legend's marker
    (x1, y80), (x3, y40) = health[:2]
    top, bottom = 18, 220 - 48  # the plot's edges: 100 at the top, 0 at the bottom
    assert abs((bottom - y80) - 0.8 * (bottom - top)) < 0.2 and abs((bottom - y40) - 0.4 * (bottom - top)) < 0.2
    assert re.search(r'<rect class="pt s1"', svg) and 'stroke-dasharray="6 4"' in svg  # usage: squares, dashed
    band = re.search(r'<rect class="band" x="([\d.]+)" y="[\d.]+" width="([\d.]+)"', svg)
    start, width = float(band.group(1)), float(band.group(2))
    middle = x1 + (x3 - x1) / 2
    assert x1 < start < middle and abs(start + width - x3) < 0.2  # from mid-January to the end
    assert ">2026-01<" in svg and ">at risk<" in svg


def test_nothing_to_draw_draws_nothing():
    assert str(bars([], [("demand", [])], title="x")) == ""
    assert str(bars(["Q1"], [], title="x")) == ""
    assert str(lines([], [("health", [])], title="x")) == ""
