"""Every report page, opened in headless Chromium as a person would: it asks for nothing but
itself, and each chart is drawn with a real size."""

from __future__ import annotations

from pathlib import Path

import pytest

from regionguard.drill.load import LoadResult, Request
from regionguard.drill.report import markers_from, write_html
from regionguard.ops.report import write_report
from regionguard.reporting.waterfall import spans_from_journal

from ..chromium import render
from .fakes import failed_over_journal
from .test_waterfall import MS, PLAN, measures, step

pytestmark = pytest.mark.unit


def test_an_execution_report_opens_offline_with_its_waterfall(tmp_path: Path) -> None:
    entries, plan_id = failed_over_journal(tmp_path)
    page = write_report(tmp_path / "reports", entries, plan_id)
    assert page is not None
    asked, drawn = render(page)
    assert asked == [page.as_uri()]
    assert [label for label, w, h in drawn if w > 300 and h > 50] == ["step waterfall"]


def test_a_drill_report_opens_offline_with_its_three_charts(tmp_path: Path) -> None:
    entries = [{"event": "plan", "plan": PLAN, "outcome": "started", "mono_ns": 2000 * MS},
               {"event": "verdict_change", "region": "east", "verdict": "down",
                "mono_ns": 1850 * MS},
               step("promote", "started", 2000), step("promote", "done", 2400)]
    load = LoadResult(requests=[Request(t * MS, 0.003, "write", not 1800 <= t < 2500, 201)
                                for t in range(1000, 4000, 20)],
                      started_ns=1000 * MS, stopped_ns=4000 * MS)
    page = tmp_path / "drill-001.html"
    write_html(page, measures(), load, markers_from(entries, 1800 * MS, 2500 * MS),
               spans_from_journal(entries, PLAN), heal=(3000 * MS, 3500 * MS))
    asked, drawn = render(page)
    assert asked == [page.as_uri()]
    assert {label for label, w, h in drawn if w > 300 and h > 50} == {
        "requests per 100 ms", "request latency p50 and p99 per 100 ms", "step waterfall"}
