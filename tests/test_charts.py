"""Server-side SVG charts: bars drawn to scale, labelled, patterned, escaped."""

import re

from refmatch.web.charts import bars


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


def test_nothing_to_draw_draws_nothing():
    assert str(bars([], [("demand", [])], title="x")) == ""
    assert str(bars(["Q1"], [], title="x")) == ""
