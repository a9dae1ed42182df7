"""Small inline-SVG charts for the reports: no JavaScript, no network, nothing to install.

A chart is a plain string of `<svg>` markup. x values are numbers (epoch seconds, day numbers);
the caller gives the tick labels. Every drawn element carries a class (`series`, `incident-marker`,
`band`, `point`) and a `<title>` where a reader may want the exact figure (browsers show it on hover).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

PALETTE = {
    "dq": "#1f4e9c",
    "n_from": "#d9730d",
    "n_pop": "#2e8b57",
    "fitted": "#b22222",
    "n_to": "#444444",
    "n_sent": "#2e8b57",
    "n_deferred": "#c0392b",
    "domain": "#8e44ad",
    "band": "#9ecae1",
    "grid": "#e5e5e5",
    "axis": "#555555",
}
SOURCE_COLORS = ("#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628")
KIND_COLORS = {
    "mmw_suspect": "#d62728",
    "deferred_surge": "#8e44ad",
    "dns_anomaly": "#8c564b",
    "bulk_sender": "#7f7f7f",
    "mailing_list": "#17becf",
}


@dataclass
class Series:
    label: str
    values: Sequence[float | None]
    color: str
    width: float = 1.6
    dash: str | None = None
    css: str = ""  # an extra class, e.g. "total"
    dots: bool = False  # points only (e.g. the days that drifted), no line


@dataclass
class Marker:
    """A span on the x axis (an incident), drawn across the plot with a numbered flag; a `strip`
    (benign traffic) is a thin bar along the top of the plot instead, drawn under the full spans,
    so that a 12-hour mailing-list band never covers a suspect's span."""

    x0: float
    x1: float
    label: str
    color: str
    title: str
    ref: str = ""  # the id of the card it stands for
    strip: bool = False


STRIP_HEIGHT = 5  # px of one lane of strips


@dataclass
class Band:
    """A shaded band between lo and hi (a coefficient's history band), per x: one polygon, or with
    `steps` one bar per x (a band that changes from one x to the next, as weekdays' and weekends'
    bands alternate)."""

    lo: list[float | None]
    hi: list[float | None]
    label: str
    color: str = PALETTE["band"]
    steps: bool = False


@dataclass
class Frame:
    width: int = 860
    height: int = 220
    left: int = 64
    right: int = 16
    top: int = 30
    bottom: int = 30
    extra: list[str] = field(default_factory=list)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not math.isfinite(lo) or not math.isfinite(hi):
        return [0.0]
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.floor(lo / step) * step
    ticks, v = [], first
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    if ticks[-1] < hi:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}"
    return f"{v:.3g}"


class Plot:
    """Coordinates of one plot area; collects SVG elements."""

    def __init__(self, frame: Frame, x_range: tuple[float, float], y_range: tuple[float, float]):
        self.f = frame
        self.x0, self.x1 = x_range
        if self.x1 <= self.x0:
            self.x1 = self.x0 + 1
        ticks = nice_ticks(*y_range)
        self.y_ticks = ticks
        self.y0, self.y1 = ticks[0], ticks[-1]
        self.parts: list[str] = []

    @property
    def pw(self) -> float:
        return self.f.width - self.f.left - self.f.right

    @property
    def ph(self) -> float:
        return self.f.height - self.f.top - self.f.bottom

    def px(self, x: float) -> float:
        return round(self.f.left + (x - self.x0) / (self.x1 - self.x0) * self.pw, 2)

    def py(self, y: float) -> float:
        y = min(max(y, self.y0), self.y1)
        return round(self.f.top + self.ph - (y - self.y0) / (self.y1 - self.y0 or 1) * self.ph, 2)

    def axes(self, x_ticks: Sequence[tuple[float, str]], y_label: str) -> None:
        f, p = self.f, self.parts
        for t in self.y_ticks:
            y = self.py(t)
            p.append(
                f'<line class="grid" x1="{f.left}" x2="{f.width - f.right}" y1="{y}" y2="{y}" '
                f'stroke="{PALETTE["grid"]}"/>'
            )
            p.append(f'<text class="tick" x="{f.left - 6}" y="{y + 4}" text-anchor="end">{fmt(t)}</text>')
        base = f.top + self.ph
        p.append(
            f'<line class="axis" x1="{f.left}" x2="{f.width - f.right}" y1="{base}" y2="{base}" '
            f'stroke="{PALETTE["axis"]}"/>'
        )
        for x, label in x_ticks:
            if self.x0 <= x <= self.x1:
                X = self.px(x)
                p.append(
                    f'<line class="axis" x1="{X}" x2="{X}" y1="{base}" y2="{base + 4}" stroke="{PALETTE["axis"]}"/>'
                )
                p.append(f'<text class="tick" x="{X}" y="{base + 16}" text-anchor="middle">{escape(label)}</text>')
        p.append(
            f'<text class="ylabel" x="12" y="{f.top + self.ph / 2}" text-anchor="middle" '
            f'transform="rotate(-90 12 {f.top + self.ph / 2})">{escape(y_label)}</text>'
        )

    def markers(self, markers: list[Marker]) -> None:
        """Strips first, each in the first lane along the top where it overlaps no other, then the
        full-height spans over them."""
        top, h = self.f.top, self.ph
        lanes: list[float] = []  # the right end of the last strip in each lane
        for m in sorted(markers, key=lambda m: (not m.strip, m.x0)):
            a, b = self.px(max(m.x0, self.x0)), self.px(min(max(m.x1, m.x0), self.x1))
            w = max(b - a, 2.0)
            ref = f' data-incident="{escape(m.ref)}"' if m.ref else ""
            if m.strip:
                lane = next((k for k, end in enumerate(lanes) if end < a), len(lanes))
                if lane == len(lanes):
                    lanes.append(a + w)
                lanes[lane] = a + w
                y = top + lane * (STRIP_HEIGHT + 1)
                body = (
                    f'<rect x="{a}" y="{y}" width="{round(w, 2)}" height="{STRIP_HEIGHT}" fill="{m.color}" '
                    f'fill-opacity="0.55"/>'
                )
                css = "incident-marker strip"
            else:
                body = (
                    f'<rect x="{a}" y="{top}" width="{round(w, 2)}" height="{h}" fill="{m.color}" '
                    f'fill-opacity="0.13" stroke="{m.color}" stroke-opacity="0.5"/>'
                    f'<text x="{a + 2}" y="{top + 11}" fill="{m.color}" class="flag">'
                    f"{escape(m.label)}</text>"
                )
                css = "incident-marker"
            if m.ref:
                body = f'<a href="#{escape(m.ref)}">{body}</a>'
            self.parts.append(f'<g class="{css}"{ref}><title>{escape(m.title)}</title>{body}</g>')

    def band(self, xs: Sequence[float], band: Band) -> None:
        pts = [(x, lo, hi) for x, lo, hi in zip(xs, band.lo, band.hi, strict=True) if lo is not None and hi is not None]
        if not pts:
            return
        if band.steps:
            step = min((b - a for a, b in zip(xs, xs[1:], strict=False)), default=1.0) or 1.0
            w = max(self.px(step) - self.px(0), 1.0) if self.x1 > self.x0 else 1.0
            bars = "".join(
                f'<rect x="{round(self.px(x) - w / 2, 2)}" y="{self.py(hi)}" width="{round(w, 2)}" '
                f'height="{round(self.py(lo) - self.py(hi), 2)}"/>'
                for x, lo, hi in pts
            )
            self.parts.append(
                f'<g class="band" fill="{band.color}" fill-opacity="0.45"><title>{escape(band.label)}</title>{bars}</g>'
            )
            return
        upper = " ".join(f"{self.px(x)},{self.py(hi)}" for x, _, hi in pts)
        lower = " ".join(f"{self.px(x)},{self.py(lo)}" for x, lo, _ in reversed(pts))
        self.parts.append(
            f'<polygon class="band" points="{upper} {lower}" fill="{band.color}" '
            f'fill-opacity="0.45" stroke="none"><title>{escape(band.label)}</title></polygon>'
        )

    def line(self, xs: Sequence[float], s: Series) -> None:
        """A polyline per run of non-missing values (or a dot per value)."""
        if s.dots:
            for x, v in zip(xs, s.values, strict=True):
                if v is not None and math.isfinite(v):
                    self.parts.append(
                        f'<circle class="point {s.css}" cx="{self.px(x)}" cy="{self.py(v)}" '
                        f'r="3.5" fill="{s.color}"><title>{escape(s.label)}: {fmt(v)}</title>'
                        "</circle>"
                    )
            return
        run: list[str] = []
        runs: list[list[str]] = []
        for x, v in zip(xs, s.values, strict=True):
            if v is None or not math.isfinite(v):
                if run:
                    runs.append(run)
                run = []
            else:
                run.append(f"{self.px(x)},{self.py(v)}")
        if run:
            runs.append(run)
        dash = f' stroke-dasharray="{s.dash}"' if s.dash else ""
        for r in runs:
            if len(r) == 1:
                cx, cy = r[0].split(",")
                self.parts.append(f'<circle class="series {s.css}" cx="{cx}" cy="{cy}" r="2" fill="{s.color}"/>')
            else:
                self.parts.append(
                    f'<polyline class="series {s.css}" data-label="{escape(s.label)}" '
                    f'points="{" ".join(r)}" fill="none" stroke="{s.color}" '
                    f'stroke-width="{s.width}"{dash}><title>{escape(s.label)}</title></polyline>'
                )

    def legend(self, items: list[tuple[str, str]]) -> None:
        x: float = self.f.left
        for label, color in items:
            self.parts.append(
                f'<rect x="{x}" y="8" width="12" height="4" fill="{color}"/>'
                f'<text class="legend" x="{x + 16}" y="14">{escape(label)}</text>'
            )
            x += 26 + 6.2 * len(label)

    def svg(self, title: str, css: str = "chart") -> str:
        f = self.f
        return (
            f'<svg class="{css}" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {f.width} {f.height}" '
            f'width="{f.width}" height="{f.height}" role="img" aria-label="{escape(title)}">'
            f"<title>{escape(title)}</title>{''.join(self.parts)}{''.join(f.extra)}</svg>"
        )


def _y_range(series: list[Series], bands: list[Band], y_min: float | None) -> tuple[float, float]:
    vals = [v for s in series for v in s.values if v is not None and math.isfinite(v)]
    vals += [v for b in bands for v in b.lo + b.hi if v is not None and math.isfinite(v)]
    if not vals:
        return (0.0, 1.0)
    lo, hi = min(vals), max(vals)
    if y_min is not None:
        lo = min(lo, y_min)
    if hi == lo:
        hi = lo + (abs(lo) * 0.1 or 1.0)
    return lo, hi


def line_chart(
    title: str,
    xs: Sequence[float],
    series: list[Series],
    x_ticks: Sequence[tuple[float, str]],
    y_label: str,
    markers: list[Marker] | None = None,
    bands: list[Band] | None = None,
    y_min: float | None = 0.0,
    frame: Frame | None = None,
    highlight: tuple[float, float, str] | None = None,
) -> str:
    """Lines over a shared x axis, with incident spans and shaded bands behind them."""
    frame = frame or Frame()
    x_range = (min(xs), max(xs)) if xs else (0.0, 1.0)
    plot = Plot(frame, x_range, _y_range(series, bands or [], y_min))
    plot.axes(x_ticks, y_label)
    for b in bands or []:
        plot.band(xs, b)
    plot.markers(markers or [])
    for s in series:
        plot.line(xs, s)
    if highlight is not None:
        x, y, label = highlight
        plot.parts.append(
            f'<circle class="point today" cx="{plot.px(x)}" cy="{plot.py(y)}" r="4.5" '
            f'fill="none" stroke="#000" stroke-width="1.5"><title>{escape(label)}</title>'
            "</circle>"
        )
    plot.legend([(s.label, s.color) for s in series] + [(b.label, b.color) for b in bands or []])
    return plot.svg(title)


def scatter(
    title: str,
    xs: Sequence[float | None],
    ys: Sequence[float | None],
    x_label: str,
    y_label: str,
    color: str,
    size: int = 300,
) -> str:
    """Points with the y = x diagonal (observed against fitted)."""
    frame = Frame(width=size + 40, height=size, left=64, right=12, top=16, bottom=42)
    pairs = [
        (x, y)
        for x, y in zip(xs, ys, strict=True)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)
    ]
    hi = max([max(x, y) for x, y in pairs], default=1.0) or 1.0
    lo = min([min(x, y) for x, y in pairs] + [0.0])
    plot = Plot(frame, (lo, hi), (lo, hi))
    plot.x0, plot.x1 = plot.y0, plot.y1  # same scale on both axes
    plot.axes([(t, fmt(t)) for t in plot.y_ticks], y_label)
    plot.parts.append(
        f'<line class="diagonal" x1="{plot.px(plot.x0)}" y1="{plot.py(plot.y0)}" '
        f'x2="{plot.px(plot.x1)}" y2="{plot.py(plot.y1)}" stroke="#999" '
        'stroke-dasharray="4 3"/>'
    )
    for x, y in pairs:
        plot.parts.append(
            f'<circle class="point" cx="{plot.px(x)}" cy="{plot.py(y)}" r="2.2" fill="{color}" fill-opacity="0.6"/>'
        )
    plot.parts.append(
        f'<text class="xlabel" x="{frame.left + plot.pw / 2}" y="{frame.height - 4}" '
        f'text-anchor="middle">{escape(x_label)}</text>'
    )
    return plot.svg(title)


def stacked_bars(
    title: str,
    xs: Sequence[float],
    stacks: list[Series],
    x_ticks: Sequence[tuple[float, str]],
    y_label: str,
    frame: Frame | None = None,
) -> str:
    """Bars per x, one coloured segment per series (incident counts per day by kind)."""
    frame = frame or Frame(height=160)
    totals = [sum((s.values[i] or 0) for s in stacks) for i in range(len(xs))]
    step = min((b - a for a, b in zip(xs, xs[1:], strict=False)), default=1.0) or 1.0
    plot = Plot(
        frame, (min(xs, default=0) - step / 2, max(xs, default=1) + step / 2), (0.0, max(totals, default=0) or 1.0)
    )
    plot.axes(x_ticks, y_label)
    bar_w = max(plot.pw / max(len(xs), 1) * 0.7, 1.5)
    for i, x in enumerate(xs):
        base = 0.0
        for s in stacks:
            v = s.values[i] or 0
            if v <= 0:
                continue
            y_top, y_base = plot.py(base + v), plot.py(base)
            plot.parts.append(
                f'<rect class="bar" x="{round(plot.px(x) - bar_w / 2, 2)}" y="{y_top}" '
                f'width="{round(bar_w, 2)}" height="{round(y_base - y_top, 2)}" '
                f'fill="{s.color}">'
                f"<title>{escape(s.label)}: {fmt(v)}</title></rect>"
            )
            base += v
    plot.legend([(s.label, s.color) for s in stacks])
    return plot.svg(title)
