"""A step waterfall (Gantt chart) of a plan's execution, as one inline SVG.

Engine steps often run milliseconds apart, so drawing each as a vertical marker on a timeline
stacks their labels on top of each other. Here every step attempt gets its own row (label on the
left, a bar positioned by time, its duration as text), and the few point events (the fault, the
recovery) are thin vertical lines whose labels each get their own line at the top: no two labels
can share a y, however close in time they are.

The SVG is meant to be inlined in an HTML report that must open offline and be safe to attach to
a post-mortem: no scripts, no URLs at all (not even the SVG namespace, which HTML does not need),
every text escaped, and colours restricted to plain values. Output is deterministic for the same
input, so reports can be diffed.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

ROW_H = 22
BAR_H = 14
LABEL_W = 170
DURATION_W = 160  # right gutter, so a bar ending at the window's end still shows its duration
MARKER_LINE_H = 14
AXIS_H = 26
LEGEND_H = 18
TOP_PAD = 4
MIN_BAR_W = 2.0
MAX_LABEL_CHARS = 24
MAX_TICKS = 8
OUTCOME_COLOURS = {"done": "#2c6fbb", "failed": "#c62828", "unfinished": "#ef6c00",
                   "running": "#9e9e9e"}
END_OUTCOMES = ("done", "failed", "unfinished")  # the same set rto_breakdown closes a step on
FALLBACK_COLOUR = "#555555"
# a white outline behind text, so a marker line crossing it does not make it unreadable
HALO = ' paint-order="stroke" stroke="#ffffff" stroke-width="3"'
_SAFE_COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}|[a-zA-Z]{1,30}")


@dataclass(frozen=True)
class StepSpan:
    """One attempt of one step: `end_ns` is None while it is still running."""

    name: str
    start_ns: int
    end_ns: int | None
    outcome: str  # "done" | "failed" | "unfinished" | "running"
    in_rto: bool = True  # False: it ran once traffic was restored (rejoin, retire)

    def duration_s(self, now_ns: int) -> float:
        """Seconds taken, or taken so far (until `now_ns`) for a running step."""
        end = self.end_ns if self.end_ns is not None else max(now_ns, self.start_ns)
        return (end - self.start_ns) / 1e9


def spans_from_journal(entries: Sequence[Mapping[str, Any]], plan_id: str) -> list[StepSpan]:
    """The plan's detect span (when its verdict says when the failures began) and one span per
    step attempt, ordered by start.

    Follows `rto_breakdown`'s conventions so each step's spans add up to its breakdown figure:
    only the plan's own `step` entries count, an end closes the step's open start, an end with no
    open start is ignored, and a start that is started again before it ended (a runner that
    died mid-step and resumed the plan) is replaced by the newer start."""
    detect = _detect_span(entries, plan_id)
    steps = sorted(_step_spans(entries, plan_id), key=lambda s: s.start_ns)
    return ([detect] if detect else []) + steps


def _detect_span(entries: Sequence[Mapping[str, Any]], plan_id: str) -> StepSpan | None:
    """From the first failed probe to the verdict, as `rto_breakdown` measures detection."""
    verdict = next((e for e in entries if e.get("event") == "verdict"
                    and e.get("plan") == plan_id), None)
    first_failure = verdict.get("first_failure_ns") if verdict else None
    if verdict is None or not first_failure:
        return None
    return StepSpan("detect", int(first_failure), int(verdict["mono_ns"]), "done")


def _step_spans(entries: Sequence[Mapping[str, Any]], plan_id: str) -> list[StepSpan]:
    spans: list[StepSpan] = []
    open_steps: dict[str, int] = {}
    in_rto: dict[str, bool] = {}
    for e in entries:
        if e.get("event") != "step" or e.get("plan") != plan_id:
            continue
        step, outcome = str(e.get("step")), e.get("outcome")
        in_rto[step] = bool(e.get("in_rto", True))
        if outcome == "started":
            open_steps[step] = int(e["mono_ns"])
        elif outcome in END_OUTCOMES and step in open_steps:
            spans.append(StepSpan(step, open_steps.pop(step), int(e["mono_ns"]), str(outcome),
                                  in_rto[step]))
    spans.extend(StepSpan(step, start, None, "running", in_rto[step])
                 for step, start in open_steps.items())
    return spans


@dataclass(frozen=True)
class _Scale:
    """Maps monotonic ns in [t0, t_end] to x in the plot area between the two gutters."""

    t0_ns: int
    t_end_ns: int
    x0: float
    x1: float

    def x(self, t_ns: int) -> float:
        frac = (t_ns - self.t0_ns) / (self.t_end_ns - self.t0_ns)
        return self.x0 + min(1.0, max(0.0, frac)) * (self.x1 - self.x0)

    def contains(self, t_ns: int) -> bool:
        return self.t0_ns <= t_ns <= self.t_end_ns

    @property
    def seconds(self) -> float:
        return (self.t_end_ns - self.t0_ns) / 1e9


def waterfall_svg(spans: Sequence[StepSpan], *, t0_ns: int, t_end_ns: int,
                  markers: Sequence[tuple[int, str, str]] = (), width: int = 900) -> str:
    """One row per span on an axis of seconds since `t0_ns`, window clipped at `t_end_ns`
    (where running spans end); `markers` are (monotonic ns, label, colour) point events.

    Height is a function of the number of markers and rows only, so two reports with the same
    steps line up."""
    scale = _Scale(t0_ns, max(t_end_ns, t0_ns + 1), LABEL_W, max(LABEL_W + 1, width - DURATION_W))
    ordered = sorted(markers, key=lambda m: m[0])
    rows_top = TOP_PAD + len(ordered) * MARKER_LINE_H + (4 if ordered else 0)
    axis_y = rows_top + len(spans) * ROW_H
    height = axis_y + AXIS_H + LEGEND_H
    parts = [f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
             f'role="img" aria-label="step waterfall" font-family="sans-serif">']
    lines, labels = _marker_parts(ordered, scale, axis_y)
    parts += _axis_parts(scale, rows_top, axis_y) + lines  # under the bars and their text
    for i, span in enumerate(spans):
        parts += _row_parts(span, scale, rows_top + i * ROW_H)
    parts += labels
    parts += _legend_parts(spans, axis_y + AXIS_H)
    parts.append("</svg>")
    return "".join(parts)


def _row_parts(span: StepSpan, scale: _Scale, y: int) -> list[str]:
    """Label, bar and duration of one span; the bar keeps a minimum width so a sub-millisecond
    step is still visible."""
    colour = OUTCOME_COLOURS.get(span.outcome, FALLBACK_COLOUR)
    duration = span.duration_s(scale.t_end_ns)
    x_start = scale.x(span.start_ns)
    x_end = scale.x(span.end_ns if span.end_ns is not None else scale.t_end_ns)
    bar_w = max(MIN_BAR_W, x_end - x_start)
    running = span.outcome == "running"
    style = (' fill-opacity="0.55" stroke="#616161" stroke-dasharray="3,2"' if running
             else "" if span.in_rto else ' fill-opacity="0.4"')
    text = (f"{duration:.3f} s" + (", running" if running else "")
            + ("" if span.in_rto else ", after the RTO"))
    title = html.escape(f"{span.name} {span.outcome}: {text}")
    return [
        f'<text x="4" y="{y + 15}" font-size="12">{html.escape(_short(span.name))}'
        f"<title>{html.escape(span.name)}</title></text>",
        f'<rect x="{x_start:.1f}" y="{y + (ROW_H - BAR_H) // 2}" width="{bar_w:.1f}" '
        f'height="{BAR_H}" fill="{colour}"{style}><title>{title}</title></rect>',
        f'<text x="{x_start + bar_w + 4:.1f}" y="{y + 15}" font-size="11" fill="#333"'
        f'{HALO}>{html.escape(text)}</text>',
    ]


def _short(label: str) -> str:
    """Keeps a long step name out of the plot area; the full name stays in its <title>."""
    return label if len(label) <= MAX_LABEL_CHARS else label[:MAX_LABEL_CHARS - 1] + "…"


def _axis_parts(scale: _Scale, top: int, axis_y: int) -> list[str]:
    """Grid lines first, so the bars are drawn over them, then the axis and its seconds."""
    step = _tick_step(scale.seconds)
    decimals = max(0, -math.floor(math.log10(step)))
    parts = [f'<line x1="{scale.x0:.1f}" y1="{axis_y}" x2="{scale.x1:.1f}" y2="{axis_y}" '
             f'stroke="#444"/>']
    for k in range(int(scale.seconds / step + 1e-9) + 1):
        t = k * step
        x = scale.x(scale.t0_ns + round(t * 1e9))
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{axis_y}" stroke="#e0e0e0"/>'
                     f'<text x="{x:.1f}" y="{axis_y + 14}" font-size="10" '
                     f'text-anchor="middle">{t:.{decimals}f} s</text>')
    return parts


def _tick_step(seconds: float) -> float:
    """The smallest 1-2-5 step giving at most MAX_TICKS intervals."""
    for exponent in range(-4, 7):
        for mantissa in (1, 2, 5):
            step = mantissa * 10.0 ** exponent
            if seconds / step <= MAX_TICKS:
                return step
    return 10.0 ** 7


def _marker_parts(markers: Sequence[tuple[int, str, str]], scale: _Scale,
                  axis_y: int) -> tuple[list[str], list[str]]:
    """(lines, labels). Each marker's label on its own line at the top (sorted by time), so
    labels close in time never overlap; its line runs from under its label to the axis. A marker
    outside the window keeps its label (with its time) but draws no line."""
    lines, labels = [], []
    middle = (scale.x0 + scale.x1) / 2
    for i, (t_ns, label, colour) in enumerate(markers):
        colour = _safe_colour(colour)
        x = scale.x(t_ns)
        y = TOP_PAD + (i + 1) * MARKER_LINE_H - 3
        text = f"{label} ({(t_ns - scale.t0_ns) / 1e9:.3f} s)"
        anchor, tx = ("end", x - 3) if x > middle else ("start", x + 3)
        if scale.contains(t_ns):
            lines.append(f'<line x1="{x:.1f}" y1="{y - 9}" x2="{x:.1f}" y2="{axis_y}" '
                         f'stroke="{colour}" stroke-width="1" stroke-dasharray="3,2"/>')
        labels.append(f'<text x="{tx:.1f}" y="{y}" font-size="10" fill="{colour}" '
                      f'text-anchor="{anchor}"{HALO}>{html.escape(text)}</text>')
    return lines, labels


def _safe_colour(colour: str) -> str:
    """A caller's colour lands in an attribute: only `#hex` or a named colour, never a
    `url(...)` that would reference something outside the document."""
    return colour if _SAFE_COLOUR.fullmatch(colour) else FALLBACK_COLOUR


def _legend_parts(spans: Sequence[StepSpan], y: int) -> list[str]:
    """A swatch per outcome present, in a fixed order, so the colours need no guessing."""
    present = [o for o in OUTCOME_COLOURS if any(s.outcome == o for s in spans)]
    parts = []
    for i, outcome in enumerate(present):
        x = LABEL_W + i * 100
        parts.append(f'<rect x="{x}" y="{y}" width="10" height="10" '
                     f'fill="{OUTCOME_COLOURS[outcome]}"/>'
                     f'<text x="{x + 14}" y="{y + 9}" font-size="11">{outcome}</text>')
    return parts
