"""The step waterfall: spans read from the journal as `rto_breakdown` reads it, and an SVG where
every step and every marker label gets its own line (steps milliseconds apart used to be
vertical markers whose labels piled up on one another)."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from regionguard.drill.load import LoadResult, Request
from regionguard.drill.measures import DrillMeasures
from regionguard.drill.report import markers_from, write_html
from regionguard.orchestrator.journal import rto_breakdown
from regionguard.reporting.waterfall import ROW_H, StepSpan, spans_from_journal, waterfall_svg

pytestmark = pytest.mark.unit

MS = 1_000_000
PLAN = "plan-1"
TEXT = re.compile(r'<text x="[-\d.]+" y="([-\d.]+)"[^>]*>([^<]*)')
BAR = re.compile(r"<rect [^>]*><title>([^<]*)</title></rect>")


def step(name: str, outcome: str, at_ms: int, plan: str = PLAN) -> dict[str, Any]:
    return {"event": "step", "plan": plan, "step": name, "outcome": outcome,
            "mono_ns": at_ms * MS, "in_rto": True}


def journal() -> list[dict[str, Any]]:
    """Detect from 500 to 900 ms; fence done; promote fails, and is resumed and done; route
    ends unfinished; notify still running. Another plan's steps and a stray end are noise."""
    return [
        {"event": "plan", "plan": PLAN, "outcome": "started", "name": "failover",
         "mono_ns": 900 * MS},
        {"event": "verdict", "plan": PLAN, "first_failure_ns": 500 * MS, "mono_ns": 900 * MS},
        step("fence", "started", 1000), step("fence", "done", 1010),
        step("other", "started", 1005, plan="plan-0"), step("other", "done", 1006, plan="plan-0"),
        step("promote", "started", 1010), step("promote", "failed", 1030),
        {"event": "plan", "plan": PLAN, "outcome": "interrupted", "mono_ns": 1031 * MS},
        step("ghost", "done", 1040),  # an end with no start: ignored, as rto_breakdown does
        {"event": "plan", "plan": PLAN, "outcome": "resumed", "mono_ns": 1099 * MS},
        step("promote", "started", 1100), step("promote", "done", 1150),
        step("route", "started", 1150), step("route", "unfinished", 1200),
        step("notify", "started", 1200),
    ]


EXPECTED = [
    StepSpan("detect", 500 * MS, 900 * MS, "done"),
    StepSpan("fence", 1000 * MS, 1010 * MS, "done"),
    StepSpan("promote", 1010 * MS, 1030 * MS, "failed"),
    StepSpan("promote", 1100 * MS, 1150 * MS, "done"),
    StepSpan("route", 1150 * MS, 1200 * MS, "unfinished"),
    StepSpan("notify", 1200 * MS, None, "running"),
]


def test_spans_from_a_journal_with_a_resumed_failed_and_running_step() -> None:
    assert spans_from_journal(journal(), PLAN) == EXPECTED


def test_spans_add_up_to_the_rto_breakdown() -> None:
    breakdown = rto_breakdown(journal(), PLAN)
    assert breakdown is not None
    totals: dict[str, float] = {}
    for s in EXPECTED:
        if s.end_ns is not None:
            totals[s.name] = totals.get(s.name, 0.0) + (s.end_ns - s.start_ns) / 1e9
    assert {k: round(v, 4) for k, v in totals.items()} == breakdown["steps"]


def test_no_detect_span_without_a_first_failure_and_nothing_for_another_plan() -> None:
    entries = [{"event": "verdict", "plan": PLAN, "first_failure_ns": None, "mono_ns": 5},
               step("fence", "started", 10), step("fence", "done", 20)]
    assert [s.name for s in spans_from_journal(entries, PLAN)] == ["fence"]
    assert spans_from_journal(entries, "plan-x") == []


def test_a_step_started_again_before_it_ended_keeps_the_newer_start() -> None:
    entries = [step("route", "started", 10), step("route", "started", 40),
               step("route", "done", 50)]
    assert spans_from_journal(entries, PLAN) == [StepSpan("route", 40 * MS, 50 * MS, "done")]


def svg(**kwargs: Any) -> str:
    return waterfall_svg(EXPECTED, t0_ns=400 * MS, t_end_ns=1300 * MS, **kwargs)


def test_one_bar_per_span_with_its_label_and_duration() -> None:
    out = svg()
    titles = BAR.findall(out)
    assert titles == ["detect done: 0.400 s", "fence done: 0.010 s", "promote failed: 0.020 s",
                      "promote done: 0.050 s", "route unfinished: 0.050 s",
                      "notify running: 0.100 s, running"]
    texts = [t for _, t in TEXT.findall(out)]
    for label in ("detect", "fence", "promote", "route", "notify"):
        assert label in texts
    for duration in ("0.400 s", "0.010 s", "0.020 s", "0.050 s", "0.100 s, running"):
        assert duration in texts
    label_ys = [float(y) for y, t in TEXT.findall(out) if t in {s.name for s in EXPECTED}]
    assert len(label_ys) == len(EXPECTED) and len(set(label_ys)) == len(EXPECTED)
    assert all(b - a == ROW_H for a, b in pairwise(label_ys))


def test_outcomes_have_their_own_colours() -> None:
    fills = re.findall(r'<rect [^>]*fill="(#[0-9a-f]+)"[^>]*><title>', svg())
    assert len(set(fills)) == 4  # done, failed, unfinished, running


def test_self_contained_escaped_and_deterministic() -> None:
    hostile = [StepSpan('<script>alert("x")</script>', 0, MS, "done")]
    markers = [(0, '<img src="http://evil">', "url(http://evil/x.svg)")]
    out = waterfall_svg(hostile, t0_ns=0, t_end_ns=2 * MS, markers=markers)
    assert out.startswith("<svg") and out.endswith("</svg>")
    assert "<script" not in out and "<img" not in out and 'src="' not in out
    assert "&lt;script&gt;" in out and "url(" not in out  # a colour cannot reference a URL
    assert svg() == svg()
    clean = svg(markers=[(600 * MS, "fault", "#b00020")])
    assert "<script" not in clean and "src=" not in clean and "http" not in clean


def test_height_grows_with_rows_only_by_the_row_height() -> None:
    def height(spans: list[StepSpan]) -> int:
        out = waterfall_svg(spans, t0_ns=0, t_end_ns=MS)
        return int(re.search(r'height="(\d+)"', out).group(1))  # type: ignore[union-attr]

    assert height(EXPECTED[:3]) - height(EXPECTED[:2]) == ROW_H
    assert height(EXPECTED) - height(EXPECTED[:1]) == 5 * ROW_H


def test_marker_labels_close_in_time_do_not_share_a_line() -> None:
    markers = [(1000 * MS, "fault", "#b00020"), (1001 * MS, "east DOWN", "#e67e22"),
               (1002 * MS, "recovered", "#1b7f3b"), (1002 * MS, "west UP", "green")]
    texts = TEXT.findall(svg(markers=markers))
    ys = [y for y, t in texts if t.split(" (")[0] in {m[1] for m in markers}]
    assert len(ys) == 4 and len(set(ys)) == 4
    assert ("fault (0.600 s)" in [t for _, t in texts])


def measures() -> DrillMeasures:
    return DrillMeasures(fault="kill-region", region="east", strategy="pilot-light",
                         replication="sync", duration_s=3.0, requests=3, ok=2, failed=1,
                         availability=2 / 3, rto_s=0.5, engine=None, acked_writes=1)


def test_drill_report_gives_each_of_six_close_steps_its_own_row(tmp_path: Path) -> None:
    """The old report drew each step as a marker: six steps within 50 ms stacked their labels at
    one x on four cycling lines. Now each step is a waterfall row with its own y."""
    names = ["fence", "promote", "repoint", "route", "scale", "notify"]
    base = 2000
    entries: list[dict[str, Any]] = [
        {"event": "plan", "plan": PLAN, "outcome": "started", "mono_ns": base * MS},
        {"event": "verdict_change", "region": "east", "verdict": "down",
         "mono_ns": (base - 100) * MS}]
    for i, name in enumerate(names):
        entries += [step(name, "started", base + 8 * i), step(name, "done", base + 8 * i + 7)]
    load = LoadResult(requests=[Request(1000 * MS, 0.01, "write", True, 201),
                                Request(1900 * MS, 0.01, "write", False, 0),
                                Request(2500 * MS, 0.01, "write", True, 201)],
                      started_ns=1000 * MS, stopped_ns=4000 * MS)
    markers = markers_from(entries, 1800 * MS, 2500 * MS)
    path = tmp_path / "drill-report.html"
    write_html(path, measures(), load, markers, spans_from_journal(entries, PLAN))
    doc = path.read_text()
    texts = TEXT.findall(doc)
    step_labels = [(y, t) for y, t in texts if t in names]
    assert sorted(t for _, t in step_labels) == sorted(names)  # once each: no step marker
    assert len({y for y, _ in step_labels}) == len(names)
    # the marker is a labelled line in each chart (requests, latency, steps), never a step
    assert sum(t.startswith("east DOWN (") for _, t in texts) == 3
    assert "<script" not in doc and "src=" not in doc
    assert {label for _, label, _ in markers} == {"fault", "east DOWN", "recovered"}


def test_drill_report_without_a_plan_says_so(tmp_path: Path) -> None:
    load = LoadResult(requests=[Request(1000 * MS, 0.01, "read", True, 200)],
                      started_ns=1000 * MS, stopped_ns=2000 * MS)
    path = tmp_path / "drill-report.html"
    write_html(path, measures(), load, [(1500 * MS, "fault", "#b00020")])
    assert "the engine ran no plan after the fault" in path.read_text()


def test_a_step_after_the_rto_is_shown_apart_and_attempts_are_counted() -> None:
    """One RTO story: a rejoin that ran once traffic was restored (longer than the RTO
    itself) is not part of it, in the breakdown or the waterfall; a step tried twice is one
    figure with two attempts, each attempt its own bar."""
    entries = [
        {"event": "plan", "plan": PLAN, "outcome": "started", "name": "failback",
         "mono_ns": 1000 * MS},
        step("promote", "started", 1000), step("promote", "failed", 1200),
        step("promote", "started", 1300), step("promote", "done", 1500),
        step("route", "started", 1500), step("route", "done", 1690),
        {**step("rejoin", "started", 1690), "in_rto": False},
        {**step("rejoin", "done", 2990), "in_rto": False},
    ]
    breakdown = rto_breakdown(entries, PLAN)
    assert breakdown is not None
    assert breakdown["rto_s"] == 0.69 and "rejoin" not in breakdown["steps"]
    assert breakdown["after_rto"] == {"rejoin": 1.3}
    assert breakdown["steps"]["promote"] == 0.4 and breakdown["attempts"]["promote"] == 2
    spans = spans_from_journal(entries, PLAN)
    assert [(s.name, s.in_rto) for s in spans].count(("promote", True)) == 2
    svg = waterfall_svg(spans, t0_ns=1000 * MS, t_end_ns=3000 * MS)
    assert "1.300 s, after the RTO" in svg


def test_the_drill_charts_share_one_clock_have_axes_and_never_stack_labels(
        tmp_path: Path) -> None:
    """Requests, their latency and the engine's steps on one time axis (the fault at the same
    x in all three), each with a labelled y-axis; marker labels each on their own line; the
    heal a shaded band; p50 and p99 latency lines."""
    entries: list[dict[str, Any]] = [
        {"event": "plan", "plan": PLAN, "outcome": "started", "mono_ns": 2000 * MS},
        {"event": "verdict_change", "region": "east", "verdict": "down",
         "mono_ns": 1850 * MS},
        step("promote", "started", 2000), step("promote", "done", 2400)]
    load = LoadResult(requests=[Request(t * MS, 0.002 + (0.5 if 1800 <= t < 2500 else 0),
                                        "write", not 1800 <= t < 2500, 201)
                                for t in range(1000, 4000, 20)],
                      started_ns=1000 * MS, stopped_ns=4000 * MS)
    markers = markers_from(entries, 1800 * MS, 2500 * MS)
    path = tmp_path / "drill-report.html"
    write_html(path, measures(), load, markers, spans_from_journal(entries, PLAN),
               heal=(3000 * MS, 3500 * MS))
    doc = path.read_text()
    charts = re.findall(r"<svg .*?</svg>", doc, re.S)
    assert len(charts) == 3
    fault_x = [re.search(r'<line x1="([\d.]+)" y1="[\d.]+" x2="[\d.]+" y2="[\d.]+" '
                         r'stroke="#b00020"', svg) for svg in charts]
    assert all(fault_x) and len({m.group(1) for m in fault_x if m}) == 1  # one clock
    assert "requests / 100 ms" in charts[0] and "latency (ms)" in charts[1]  # y-axes
    assert charts[1].count("<polyline") == 2  # p50 and p99
    assert "<title>heal</title>" in charts[0] and "<title>heal</title>" in charts[1]
    for svg in charts[:2]:  # every marker label on its own line
        ys = [y for y, t in TEXT.findall(svg) if re.search(r"\(\d+\.\d+ s\)$", t)]
        assert len(ys) == len(markers) == len(set(ys))
