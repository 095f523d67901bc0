"""Where the controller names its ops endpoint: `<state>/controller/ops.json`."""

from __future__ import annotations

import json
from pathlib import Path


def ops_file(state_dir: Path) -> Path:
    return state_dir / "controller" / "ops.json"


def read_ops(state_dir: Path) -> dict[str, str] | None:
    """The endpoint's URLs (`url`, `metrics_url`, `status_url`, `api_url`), or None."""
    try:
        data = json.loads(ops_file(state_dir).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
