"""Bad input never reaches a 5xx: schemathesis fuzzes the API through the front door of a real
sandbox (its coverage phase: every field's boundaries and wrong types; its fuzzing phase:
generated requests), and the run must find no server error. The seed is fixed so that CI is
reproducible; run `schemathesis run URL/openapi.json --checks not_a_server_error` by hand with
other seeds to look further."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .sandbox_helpers import running_sandbox, status

pytestmark = pytest.mark.local


@pytest.fixture
def config(tmp_path: Path) -> Iterator[Path]:
    with running_sandbox(tmp_path) as path:
        yield path


def test_fuzzing_the_api_through_the_front_door_finds_no_server_error(config: Path) -> None:
    url = status(config)["front_door"]["url"]
    # with the operator's credential, so the admin-only operations are fuzzed past the check
    token = (config.parent / "state" / "secrets" / "admin-token").read_text().strip()
    schemathesis = str(Path(sys.executable).with_name("schemathesis"))
    proc = subprocess.run(
        [schemathesis, "run", f"{url}/openapi.json", "--checks", "not_a_server_error",
         "--phases", "coverage,fuzzing", "--max-examples", "100", "--seed", "20261123",
         # one worker: CPython 3.11's ast is not thread-safe (schemathesis)
         "--workers", "1", "--header", f"Authorization: Bearer {token}"],
        capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "No issues found" in proc.stdout, proc.stdout[-3000:]
