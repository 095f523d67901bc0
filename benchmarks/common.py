"""Shared benchmark helpers: a throwaway sandbox and a percentile summary line."""

from __future__ import annotations

import shutil
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from regionguard.config import load_topology
from regionguard.drill.report import percentile
from regionguard.providers.local import pgbin
from regionguard.providers.local.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[1]


def summary(values: list[float]) -> str:
    return (f"p50 {percentile(values, 50):.3f}  p95 {percentile(values, 95):.3f}  "
            f"max {max(values):.3f}  mean {statistics.fmean(values):.3f}  (n={len(values)})")


@contextmanager
def temp_sandbox(**replacements: str) -> Iterator[tuple[Sandbox, Path]]:
    """A sandbox from the example topology with `replacements` applied, purged afterwards."""
    with tempfile.TemporaryDirectory(prefix="rg-bench-") as tmp:
        text = (REPO / "regionguard.toml").read_text()
        text = text.replace('state_dir = ".regionguard"', f'state_dir = "{tmp}/state"')
        for old, new in replacements.items():
            assert old in text, old
            text = text.replace(old, new)
        config = Path(tmp) / "regionguard.toml"
        config.write_text(text)
        sandbox = Sandbox(load_topology(config))
        try:
            yield sandbox, config
        except BaseException:
            keep = Path(tempfile.mkdtemp(prefix="rg-bench-failed-"))
            for log in pgbin.data_root(sandbox.state_dir).glob("*/postgres.log"):
                shutil.copy(log, keep / f"{log.parent.name}-postgres.log")
            if (sandbox.state_dir / "journal.jsonl").exists():
                shutil.copy(sandbox.state_dir / "journal.jsonl", keep / "journal.jsonl")
            print(f"benchmark failed; logs kept in {keep}")
            raise
        finally:
            sandbox.down(purge=True)
