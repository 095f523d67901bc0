"""A drill report's time charts: requests and their latency per 100 ms, on one clock.

Both charts, and the engine's step waterfall under them, share one time axis (seconds since
the load started) and the same left and right gutters as the waterfall, so a moment is at the
same x in all three. Each has a labelled y-axis. The markers (the fault, DOWN verdicts, the
recovery, the old lease's end) are lines whose labels each get their own line above the plot,
with a white halo, so no two labels collide and none sits on a bar. The heal (the fault undone,
until the pair replicates again) is a shaded band.

Inline SVG: no script, no URL, every text escaped, colours from a fixed set.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from regionguard.drill.load import LoadResult
from regionguard.drill.stats import percentile
from regionguard.reporting.waterfall import DURATION_W, LABEL_W

BUCKET_NS = 100_000_000
WIDTH = 900  # the waterfall's default width: the same x for the same moment
PLOT_H = 150
LINE_H = 13
AXIS_H = 22
HALO = ' paint-order="stroke" stroke="#ffffff" stroke-width="3"'
OK, FAILED, P50, P99, HEAL = "#3a9d5d", "#d64545", "#2c6fbb", "#6a1b9a", "#fff2d6"

Marker = tuple[int, str, str]  # (monotonic ns, label, colour)


@dataclass(frozen=True, slots=True)
class Clock:
    """The load's window mapped onto the plot area between the waterfall's gutters."""

    t0_ns: int
    t_end_ns: int

    def x(self, t_ns: int) -> float:
        frac = (t_ns - self.t0_ns) / max(1, self.t_end_ns - self.t0_ns)
        return LABEL_W + min(1.0, max(0.0, frac)) * (WIDTH - LABEL_W - DURATION_W)

    def buckets(self) -> int:
        return max(1, (self.t_end_ns - self.t0_ns) // BUCKET_NS + 1)


def _frame(clock: Clock, markers: Sequence[Marker], label: str,
           ticks: Sequence[tuple[float, str]], top: int) -> list[str]:
    """The y-axis with its ticks and title, the time axis, and the marker lines with their
    labels stacked above the plot (`top` is where the plot begins)."""
    base = top + PLOT_H
    x0, x1 = LABEL_W, WIDTH - DURATION_W
    parts = []
    parts.append(f'<line x1="{x0}" y1="{top}" x2="{x0}" y2="{base}" stroke="#444"/>')
    for fraction, text in ticks:
        y = base - fraction * PLOT_H
        parts.append(f'<line x1="{x0}" y1="{y:.1f}" x2="{x1}" y2="{y:.1f}" stroke="#eee"/>'
                     f'<text x="{x0 - 5}" y="{y + 4:.1f}" font-size="10" '
                     f'text-anchor="end">{html.escape(text)}</text>')
    parts.append(f'<text x="{x0 - 5}" y="{top - 12}" font-size="10" text-anchor="end" '
                 f'fill="#5c6778">{html.escape(label)}</text>')
    parts.append(f'<line x1="{x0}" y1="{base}" x2="{x1}" y2="{base}" stroke="#444"/>')
    seconds = (clock.t_end_ns - clock.t0_ns) / 1e9
    step = next(s for s in (1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1e9) if seconds / s <= 10)
    t = 0.0
    while t <= seconds + 1e-9:
        x = clock.x(clock.t0_ns + int(t * 1e9))
        parts.append(f'<text x="{x:.1f}" y="{base + 14}" font-size="10" '
                     f'text-anchor="middle">{t:g} s</text>')
        t += step
    middle = (x0 + x1) / 2
    for i, (t_ns, text, colour) in enumerate(sorted(markers)):
        x = clock.x(t_ns)
        y = (i + 1) * LINE_H
        anchor, tx = ("end", x - 3) if x > middle else ("start", x + 3)
        parts.append(f'<line x1="{x:.1f}" y1="{y - 9}" x2="{x:.1f}" y2="{base}" '
                     f'stroke="{colour}" stroke-dasharray="3,2"/>'
                     f'<text x="{tx:.1f}" y="{y}" font-size="10" fill="{colour}" '
                     f'text-anchor="{anchor}"{HALO}>{html.escape(text)} '
                     f"({(t_ns - clock.t0_ns) / 1e9:.2f} s)</text>")
    return parts


def _heal(clock: Clock, heal: tuple[int, int] | None, top: int) -> list[str]:
    """The heal as a band over the plot (translucent: the bars stay readable under it)."""
    if heal is None:
        return []
    a, b = clock.x(heal[0]), clock.x(heal[1])
    return [f'<rect x="{a:.1f}" y="{top}" width="{max(1.0, b - a):.1f}" height="{PLOT_H}" '
            f'fill="{HEAL}" fill-opacity="0.6" stroke="#c77700" stroke-dasharray="2,2">'
            f'<title>heal</title></rect><text x="{a + 3:.1f}" y="{top + 12}" font-size="10" '
            f'fill="#8a5a00"{HALO}>heal</text>']


def _svg(parts: list[str], height: int, label: str) -> str:
    return (f'<svg width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
            f'aria-label="{html.escape(label)}" font-family="sans-serif">'
            + "".join(parts) + "</svg>")


def requests_svg(load: LoadResult, clock: Clock, markers: Sequence[Marker],
                 heal: tuple[int, int] | None) -> str:
    """Requests per 100 ms, answered and failed, stacked."""
    n = clock.buckets()
    ok, err = [0] * n, [0] * n
    for r in load.requests:
        b = min(n - 1, max(0, (r.t_ns - clock.t0_ns) // BUCKET_NS))
        (ok if r.ok else err)[b] += 1
    peak = max(1, max(a + b for a, b in zip(ok, err, strict=True)))
    top = (len(markers) + 1) * LINE_H + 4
    base = top + PLOT_H
    parts = _frame(clock, markers, "requests / 100 ms",
                   [(0, "0"), (0.5, f"{peak / 2:g}"), (1, f"{peak}")], top)
    bw = (WIDTH - LABEL_W - DURATION_W) / n
    for i in range(n):
        x = LABEL_W + i * bw
        h_ok, h_err = ok[i] / peak * PLOT_H, err[i] / peak * PLOT_H
        for h, y, colour, what in ((h_ok, base - h_ok, OK, f"{ok[i]} ok"),
                                   (h_err, base - h_ok - h_err, FAILED, f"{err[i]} failed")):
            if h:
                parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(bw - 0.5, 0.5):.1f}" '
                             f'height="{h:.1f}" fill="{colour}"><title>{what}</title></rect>')
    return _svg(parts + _heal(clock, heal, top), base + AXIS_H, "requests per 100 ms")


def latency_svg(load: LoadResult, clock: Clock, markers: Sequence[Marker],
                heal: tuple[int, int] | None) -> str:
    """p50 and p99 latency of the requests sent in each 100 ms (answered or not), in ms."""
    n = clock.buckets()
    per: list[list[float]] = [[] for _ in range(n)]
    for r in load.requests:
        per[min(n - 1, max(0, (r.t_ns - clock.t0_ns) // BUCKET_NS))].append(r.latency_s * 1e3)
    p50 = [percentile(v, 50) if v else None for v in per]
    p99 = [percentile(v, 99) if v else None for v in per]
    peak = max([v for v in p99 if v is not None] + [1e-3])  # all zero: still a scale
    top = (len(markers) + 1) * LINE_H + 4
    base = top + PLOT_H
    parts = _frame(clock, markers, "latency (ms)",
                   [(0, "0"), (0.5, f"{peak / 2:.0f}"), (1, f"{peak:.0f}")], top)
    bw = (WIDTH - LABEL_W - DURATION_W) / n
    for series, colour in ((p99, P99), (p50, P50)):
        points = [f"{LABEL_W + (i + 0.5) * bw:.1f},{base - v / peak * PLOT_H:.1f}"
                  for i, v in enumerate(series) if v is not None]
        if points:
            parts.append(f'<polyline points="{" ".join(points)}" fill="none" '
                         f'stroke="{colour}" stroke-width="1.5"/>')
    return _svg(parts + _heal(clock, heal, top), base + AXIS_H,
                "request latency p50 and p99 per 100 ms")
