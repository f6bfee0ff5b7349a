"""Charts drawn on the server as inline SVG: no script, no CDN, readable without colour.

Each series has its own fill pattern (solid, hatched, dotted) as well as its colour, every bar
carries its value as text and as a tooltip, and the page shows the same numbers as a table
beside the chart (with a CSV download). The SVG scales to its container (a viewBox, no fixed
width), so it reflows on a phone; in forced-colours mode the stylesheet draws it in system colours.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
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


def _value_axis(top: float, plot_h: float, width: int) -> list[str]:
    """Gridlines and labels at 0, half and the top of the value axis."""
    out = []
    for tick in (0.0, top / 2, top):
        y = TOP + plot_h * (1 - tick / top)
        out.append(f'<line class="grid" x1="{LEFT}" x2="{width - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="axis" x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end">{_number(tick)}</text>')
    return out


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
    out += _value_axis(top, plot_h, width)
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


MARKERS = ("circle", "square", "diamond")
DASHES = ("", "6 4", "2 3")


def _marker(kind: str, x: float, y: float, cls: str, tip: str) -> str:
    title = f"<title>{escape(tip)}</title>"
    if kind == "square":
        return f'<rect class="{cls}" x="{x - 3:.1f}" y="{y - 3:.1f}" width="6" height="6">{title}</rect>'
    if kind == "diamond":
        pts = f"{x:.1f},{y - 4:.1f} {x + 4:.1f},{y:.1f} {x:.1f},{y + 4:.1f} {x - 4:.1f},{y:.1f}"
        return f'<polygon class="{cls}" points="{pts}">{title}</polygon>'
    return f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="3">{title}</circle>'


def lines(
    days: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    *,
    title: str,
    bands: Sequence[tuple[str, str, str]] = (),
    width: int = 560,
    height: int = 220,
) -> Markup:
    """A line chart over time: ``days`` are ISO dates (the x axis, in order), ``series`` is
    (name, one value or None per day). Each series has its own dash and marker shape as well as
    its colour. ``bands`` are (first day, last day or "", label) stretches shaded with a hatch
    (an account's time at risk); a band with no last day runs to the end.
    """
    if not days or not series:
        return Markup("")
    chart = f"chart{next(_ids)}"
    values = [v for _, vs in series for v in vs if v is not None]
    top = _nice_top(max(values, default=0))
    plot_w, plot_h = width - LEFT - 4 * RIGHT, height - TOP - BOTTOM  # room for the last date's label
    step = plot_w / max(1, len(days) - 1)

    def x_of(day: str) -> float:  # the position of a day between the days drawn
        if day <= days[0]:
            return float(LEFT)
        for i in range(1, len(days)):
            if day <= days[i]:
                lo, hi = _ordinal(days[i - 1]), _ordinal(days[i])
                return LEFT + step * (i - 1 + (_ordinal(day) - lo) / max(1, hi - lo))
        return float(LEFT + plot_w)

    out = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{chart}-t" '
        f'data-points="{len(values)}" preserveAspectRatio="xMidYMid meet">',
        f'<title id="{chart}-t">{escape(title)}</title>',
        f'<defs><pattern id="{chart}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line class="band-ink" x1="0" y1="0" x2="0" y2="6" stroke-width="2"/>'
        "</pattern></defs>",
    ]
    for first, last, label in bands:
        x0, x1 = x_of(first), x_of(last) if last else float(LEFT + plot_w)
        out.append(
            f'<rect class="band" x="{x0:.1f}" y="{TOP}" width="{max(2.0, x1 - x0):.1f}" height="{plot_h}" '
            f'fill="url(#{chart}-hatch)"><title>{escape(label)}</title></rect>'
        )
    out += _value_axis(top, plot_h, width)
    every = max(1, len(days) // 6)  # at most about six date labels
    for i in range(0, len(days), every):
        out.append(
            f'<text class="axis" x="{LEFT + i * step:.1f}" y="{height - BOTTOM + 16}" text-anchor="middle">'
            f"{escape(days[i][:7])}</text>"
        )
    for s, (name, vs) in enumerate(series):
        cls, marker, dash = f"line s{s % len(MARKERS)}", MARKERS[s % len(MARKERS)], DASHES[s % len(DASHES)]
        points = [
            (LEFT + i * step, TOP + plot_h * (1 - v / top), days[i], v) for i, v in enumerate(vs) if v is not None
        ]
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in points)
        out.append(f'<polyline class="{cls}" fill="none" points="{coords}"{dashed}/>')
        for x, y, day, v in points:
            out.append(_marker(marker, x, y, f"pt s{s % len(MARKERS)}", f"{name}, {day}: {_number(v)}"))
    x = LEFT
    for s, (name, _) in enumerate(series):  # the legend: each series' dash and marker
        dash, y = DASHES[s % len(DASHES)], height - 12
        dashed = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line class="line s{s % len(MARKERS)}" x1="{x}" x2="{x + 20}" y1="{y}" y2="{y}"{dashed}/>')
        out.append(_marker(MARKERS[s % len(MARKERS)], x + 10, y, f"pt s{s % len(MARKERS)}", name))
        out.append(f'<text class="legend" x="{x + 24}" y="{height - 8}">{escape(name)}</text>')
        x += 40 + 7 * len(name)
    if bands:
        out.append(
            f'<rect class="band" x="{x}" y="{height - 18}" width="14" height="12" fill="url(#{chart}-hatch)"/>'
            f'<text class="legend" x="{x + 18}" y="{height - 8}">at risk</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def _ordinal(day: str) -> int:
    return date.fromisoformat(day[:10]).toordinal()
