"""Helpers for tests that run a whole sandbox through the real CLI (a new process per step)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
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


def peek_status(config: Path) -> dict[str, Any]:
    """`status --json`'s contract, built in this process: for polling, where a new CLI process
    per poll (about 0.8 s of CPU) would compete with the sandbox it waits for on 2 cores."""
    from regionguard.config import load_topology
    from regionguard.worlds.local import LocalWorld

    return LocalWorld().status(load_topology(config))


def read_journal(config: Path) -> list[dict[str, Any]]:
    """The journal's entries, read from its file (what `events --json --last 0` prints), for
    polling; the CLI itself is checked by `assert_a_report_for_every_plan`."""
    path = state_dir(config) / "journal.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


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

    url = peek_status(config)["ops"]["metrics_url"]
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


def wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = 45,
             every_s: float = 0.1) -> None:
    """Poll `predicate` until it holds; an AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


@contextlib.contextmanager
def running_sandbox(tmp_path: Path, print_events: bool = False,
                    **overrides: str) -> Iterator[Path]:
    """A sandbox of the example topology (with `overrides`) up for the block, then purged;
    the journal's last events are printed when the block fails (or always, when asked)."""
    path = write_topology(tmp_path, **overrides)
    cli(path, "up", "--embedded")
    try:
        yield path
    except BaseException:
        print(cli(path, "events", "--last", "80", check=False).stdout)
        raise
    finally:
        if print_events:
            print(cli(path, "events", "--last", "60", check=False).stdout)
        cli(path, "down", "--purge", check=False)


def kill_region(config: Path, name: str) -> list[int]:
    """SIGKILL a region's database and app processes; returns their pids."""
    r = region(status(config), name)
    pids = r["db"]["pids"] + r["compute"]["pids"]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids
