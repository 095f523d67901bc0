"""Every command, on every state of a sandbox (nothing up, half up, after `down --purge`),
answers with its documented exit code and, when it fails, one line on stderr: never a
traceback (0 ok, 1 failed, 2 bad input, 3 refused as unsafe, 4 not available yet)."""

from __future__ import annotations

import contextlib
import os
import signal
import traceback
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regionguard.cli import app

from .sandbox_helpers import cli, region, status, write_topology

pytestmark = pytest.mark.local

# command -> {state: the exit codes it may end with}
COMMANDS: dict[tuple[str, ...], dict[str, set[int]]] = {
    ("validate",): {"nothing": {0}, "half": {0}, "purged": {0}},
    ("status",): {"nothing": {4}, "half": {0}, "purged": {4}},
    ("status", "--json"): {"nothing": {4}, "half": {0}, "purged": {4}},
    ("events",): {"nothing": {0}, "half": {0}, "purged": {0}},
    ("failover", "--to", "west", "--yes"): {"nothing": {4}, "half": {3}, "purged": {4}},
    ("switchover", "--to", "mars", "--yes"): {"nothing": {4}, "half": {2}, "purged": {4}},
    ("switchover", "--to", "west", "--yes"): {"nothing": {4}, "half": {3}, "purged": {4}},
    # half up: the writer is home but its database is down: refused until it is back
    ("failback", "--yes"): {"nothing": {4}, "half": {3}, "purged": {4}},
    ("failover", "--to", "west", "--dry-run"): {"nothing": {4}, "half": {3}, "purged": {4}},
    ("drill", "--fault", "no-such-fault"): {"nothing": {2}, "half": {2}, "purged": {2}},
    ("synth", "--no-such-option"): {"nothing": {2}, "half": {2}, "purged": {2}},
}


def run_all(config: Path, state: str) -> None:
    """Every command, in this process (Typer's runner: the same app `main()` runs, without a
    Python start per command; `down` at the end goes through the real entry point)."""
    for args, expected in COMMANDS.items():
        result = CliRunner().invoke(app, ["-c", str(config), *args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise AssertionError(f"{state}: regionguard {' '.join(args)} raised "
                                 f"{''.join(traceback.format_exception(result.exception))}")
        assert result.exit_code in expected[state], (
            f"{state}: regionguard {' '.join(args)} exited {result.exit_code}:\n"
            f"{result.stdout}\n{result.stderr}")
        assert "Traceback" not in result.stdout + result.stderr, (state, args, result.stderr)
        if result.exit_code not in (0, 2):  # a failure is one line (usage errors: Typer's box)
            lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
            assert len(lines) == 1, (state, args, result.stderr)


def test_every_command_on_every_state_is_one_line_and_its_exit_code(tmp_path: Path) -> None:
    # manual mode: with its databases killed the sandbox stays half up; nobody acts on it
    config = write_topology(tmp_path, **{'mode = "automatic"': 'mode = "manual"'})
    run_all(config, "nothing")
    cli(config, "up", "--embedded")
    try:
        data = status(config)
        for name in ("east", "west"):  # half up: the databases die, the rest runs on
            for pid in region(data, name)["db"]["pids"]:
                with contextlib.suppress(ProcessLookupError):  # a child gone with its parent
                    os.kill(pid, signal.SIGKILL)
        run_all(config, "half")
    finally:
        cli(config, "down", "--purge", check=False)
    run_all(config, "purged")
    assert cli(config, "down").returncode == 0  # nothing is up: says so, exit 0
