"""Shared benchmark helpers: a percentile summary line."""

from __future__ import annotations

import statistics
from pathlib import Path

from regionguard.drill.stats import percentile

__all__ = ["REPO", "percentile", "summary"]

REPO = Path(__file__).resolve().parents[1]


def summary(values: list[float]) -> str:
    return (f"p50 {percentile(values, 50):.3f}  p95 {percentile(values, 95):.3f}  "
            f"max {max(values):.3f}  mean {statistics.fmean(values):.3f}  (n={len(values)})")
