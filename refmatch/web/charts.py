"""Charts drawn on the server as inline SVG: no script, no CDN, readable without colour.

Each series has its own fill pattern (solid, hatched, dotted) as well as its colour, every bar
carries its value as text and as a tooltip, and the page shows the same numbers as a table
beside the chart (with a CSV download). The SVG scales to its container (a viewBox, no fixed
width), so it reflows on a phone; in forced-colours mode the stylesheet draws it in system colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import count

from markupsafe import Markup, escape

LEFT, RIGHT, TOP, BOTTOM = 40, 8, 18, 48
PATTERNS = ("solid", "hatch", "dots")
_ids = count(1)


def _number(value: float) -> str:
    if abs(value) >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if abs(value) >= 10_000:
        return f"{value / 1_000:.0f}k"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _nice_top(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** (len(str(int(value))) - 1)
    for step in (1, 2, 2.5, 5, 10):
        if step * magnitude >= value:
            return float(step * magnitude)
    return float(10 * magnitude)


def bars(
    groups: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    title: str,
    unit: str = "",
    width: int = 400,
    height: int = 220,
) -> Markup:
    """A grouped bar chart: one group per label in ``groups``, one bar per series in each.

    ``series``: (name, one value per group). The legend names each series with its pattern.
    """
    if not groups or not series:
        return Markup("")
    chart = f"chart{next(_ids)}"
    top = _nice_top(max((max(values, default=0) for _, values in series), default=0))
    plot_w, plot_h = width - LEFT - RIGHT, height - TOP - BOTTOM
    group_w = plot_w / len(groups)
    bar_w = min(48.0, group_w * 0.8 / len(series))
    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{chart}-t" '
        f'data-points="{sum(len(v) for _, v in series)}" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart}-t">{escape(title)}</title>',
        "<defs>",
        f'<pattern id="{chart}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect class="bg" width="6" height="6"/>'
        '<line class="ink" x1="0" y1="0" x2="0" y2="6" stroke-width="3"/></pattern>',
        f'<pattern id="{chart}-dots" width="6" height="6" patternUnits="userSpaceOnUse">'
        '<rect class="bg" width="6" height="6"/><circle class="dot" cx="3" cy="3" r="1.6"/></pattern>',
        "</defs>",
    ]
    for tick in (0.0, top / 2, top):  # gridlines and the value axis
        y = TOP + plot_h * (1 - tick / top)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{_number(tick)}</text>')
    for g, label in enumerate(groups):
        x0 = LEFT + g * group_w + (group_w - bar_w * len(series)) / 2
        for s, (name, values) in enumerate(series):
            value = float(values[g]) if g < len(values) else 0.0
            h = plot_h * max(0.0, value) / top
            x, y = x0 + s * bar_w, TOP + plot_h - h
            pattern = PATTERNS[s % len(PATTERNS)]
            fill = "" if pattern == "solid" else f' fill="url(#{chart}-{pattern})"'
            out.append(
                f'<rect class="mark s{s % len(PATTERNS)}" x="{x + 1:.1f}" y="{y:.1f}" width="{bar_w - 2:.1f}" '
                f'height="{h:.1f}"{fill}><title>{escape(name)}, {escape(label)}: {_number(value)}{escape(unit)}'
                "</title></rect>"
            )
            out.append(
                f'<text class="value" x="{x + bar_w / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">'
                f"{_number(value)}</text>"
            )
        out.append(
            f'<text class="axis" x="{LEFT + (g + 0.5) * group_w:.1f}" y="{height - BOTTOM + 16}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    x = LEFT
    for s, (name, _) in enumerate(series):  # the legend, with each series' pattern
        pattern = PATTERNS[s % len(PATTERNS)]
        fill = "" if pattern == "solid" else f' fill="url(#{chart}-{pattern})"'
        out.append(f'<rect class="mark s{s % len(PATTERNS)}" x="{x}" y="{height - 18}" width="14" height="12"{fill}/>')
        out.append(f'<text class="legend" x="{x + 18}" y="{height - 8}">{escape(name)}</text>')
        x += 30 + 7 * len(name)
    out.append("</svg>")
    return Markup("".join(out))
