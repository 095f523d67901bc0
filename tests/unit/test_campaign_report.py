"""The fault campaign's page: an RTO histogram with its axes and percentiles, one outcome cell
per drill, self-contained; rendered by Chromium where it is installed."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from regionguard.drill.campaign_report import campaign_html, drill_outcome

from ..chromium import render

pytestmark = pytest.mark.unit

def summary() -> dict[str, Any]:
    drills = [
        {"index": 1, "fault": "kill-primary", "site": "east", "failover": True,
         "client_rto_s": 4.1, "healed": True, "anomalies": [], "split_brain": False},
        {"index": 2, "fault": "kill-witness", "site": "witness", "failover": False,
         "client_rto_s": None, "healed": True, "anomalies": [], "split_brain": False},
        {"index": 3, "fault": "partition-primary", "site": "west", "failover": True,
         "client_rto_s": 4.6, "healed": True, "anomalies": ["two-writers"],
         "split_brain": True},
        {"index": 4, "fault": "kill-primary", "site": "west", "failover": True,
         "client_rto_s": 9.8, "healed": False, "anomalies": [], "split_brain": False},
    ]
    return {"seed": 7, "drills": 4, "asked": 4, "failovers": 3, "acked_writes": 900,
            "lost_acked": 0, "split_brain": 1, "anomalies": ["two-writers"], "unhealed": [4],
            "client_rto_s": {"p50": 4.6, "p95": 9.8, "max": 9.8}, "per_drill": drills}


def test_each_drills_outcome_and_the_rto_spread_are_drawn() -> None:
    data = summary()
    assert [drill_outcome(d) for d in data["per_drill"]] == [
        "failover", "no failover", "anomaly", "not healed"]
    page = campaign_html(data)
    cells = re.findall(r'<rect [^>]*rx="3" fill="(#[0-9a-f]+)"><title>drill (\d)', page)
    assert [n for _, n in cells] == ["1", "2", "3", "4"] and len({c for c, _ in cells}) == 4
    assert "p50 4.60 s" in page and "p95 9.80 s" in page and ">drills</text>" in page
    assert "<script" not in page and "http" not in page.replace("http-equiv", "")


def test_a_campaign_without_failovers_says_so() -> None:
    data = {**summary(), "per_drill": [summary()["per_drill"][1]],
            "client_rto_s": {"p50": None, "p95": None, "max": None}}
    assert "no drill failed over" in campaign_html(data)


def test_the_page_renders_in_chromium(tmp_path: Path) -> None:
    page_file = tmp_path / "campaign.html"
    page_file.write_text(campaign_html(summary()))
    asked, drawn = render(page_file)
    assert asked == [page_file.as_uri()]  # nothing fetched but the page itself
    sizes = {label: (w, h) for label, w, h in drawn}
    assert sizes["client RTO histogram"][0] > 300 and sizes["client RTO histogram"][1] > 100
    assert sizes["drill outcomes"][0] > 100
