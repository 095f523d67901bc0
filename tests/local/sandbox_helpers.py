"""Helpers for tests that run a whole sandbox through the real CLI (a new process per step)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def write_topology(tmp_path: Path, **overrides: str) -> Path:
    """The repo's example topology with an absolute state dir in `tmp_path`."""
    text = (REPO / "regionguard.toml").read_text()
    text = text.replace('state_dir = ".regionguard"', f'state_dir = "{tmp_path / "state"}"')
    for old, new in overrides.items():
        assert old in text, f"{old!r} not in the example topology"
        text = text.replace(old, new)
    path = tmp_path / "regionguard.toml"
    path.write_text(text)
    return path


def cli(
    config: Path, *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "regionguard", "-c", str(config), *args],
        capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"regionguard {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def status(config: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(cli(config, "status", "--json").stdout)
    return data


def region(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in data["regions"] if r["name"] == name)


def all_pids(data: dict[str, Any]) -> set[int]:
    pids: set[int] = set()
    for r in data["regions"]:
        pids |= set(r["db"]["pids"]) | set(r["compute"]["pids"])
    return pids


def state_dir(config: Path) -> Path:
    return config.parent / "state"


def metrics(config: Path) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The controller's /metrics (named by `status --json`), parsed as Prometheus does."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    url = status(config)["ops"]["metrics_url"]
    text = httpx.get(url, timeout=5).text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def assert_a_report_for_every_plan(config: Path) -> list[str]:
    """Every plan in the journal left its execution report (JSON and HTML) in the state dir,
    and the HTML refers to nothing outside itself. Returns the plan ids."""
    proc = cli(config, "events", "--json", "--last", "0")
    entries = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    plans = sorted({e["plan"] for e in entries
                    if e["event"] == "plan" and e.get("outcome") == "started"})
    for plan in plans:
        folder = state_dir(config) / "reports"
        report = json.loads((folder / f"{plan}.json").read_text())
        assert report["plan_id"] == plan and report["steps"], report
        page = (folder / f"{plan}.html").read_text()
        assert "<svg" in page and "<script" not in page and "src=" not in page
        assert "http://" not in page and "https://" not in page
    return plans
