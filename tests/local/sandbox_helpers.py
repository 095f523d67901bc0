"""Helpers for tests that run the sandbox through the real CLI (`regionguard up`: the
topology's regions as self-managed sites on loopback)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

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
    """`regionguard -c CONFIG ARGS` as a person types it: a process of its own."""
    proc = subprocess.run(
        [sys.executable, "-m", "regionguard", "-c", str(config), *args],
        capture_output=True, text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"regionguard {' '.join(args)} exited {proc.returncode}:\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def wait_for(what: str, predicate: Callable[[], bool], timeout_s: float = 45,
             every_s: float = 0.1) -> None:
    """Poll `predicate` until it holds; an AssertionError naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(every_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
