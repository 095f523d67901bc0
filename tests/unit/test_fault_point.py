"""The drills' fault point cannot outlive the drill that armed it: a point whose owner has
exited is ignored (and removed), an expired one too, and a hold is bounded and happens once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from regionguard.providers.local import fault_point
from regionguard.providers.local.state import write_json_atomic

pytestmark = pytest.mark.unit


def test_an_armed_point_holds_once_after_its_step_only(tmp_path: Path) -> None:
    fault_point.arm(tmp_path, "promote", hold_s=3600)
    point = fault_point.FileFaultPoint(tmp_path)
    assert point.hold_after("fence") is None
    assert point.hold_after("promote") == fault_point.MAX_HOLD_S  # bounded
    assert point.hold_after("promote") is None  # once


def test_a_point_left_by_a_drill_that_exited_is_ignored_and_removed(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; "
                    "from regionguard.providers.local import fault_point; "
                    "fault_point.arm(Path(sys.argv[1]), 'promote')", str(tmp_path)],
                   check=True)  # the drill armed it, then crashed (exited)
    point = fault_point.FileFaultPoint(tmp_path)
    assert point.hold_after("promote") is None
    assert not fault_point.path_in(tmp_path).exists()


def test_an_expired_point_is_ignored(tmp_path: Path) -> None:
    path = fault_point.arm(tmp_path, "promote", ttl_s=60)
    data = __import__("json").loads(path.read_text())
    write_json_atomic(path, {**data, "expires_at": 0})
    assert fault_point.FileFaultPoint(tmp_path).hold_after("promote") is None
