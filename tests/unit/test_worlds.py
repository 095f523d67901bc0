"""The world registry as the CLI sees it (a command a world lacks is one line naming the worlds
that run it), and the one duration parser behind both of its call sites."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from regionguard import worlds
from regionguard.cli import app
from regionguard.config import parse_topology
from regionguard.durations import parse_duration
from regionguard.errors import ConfigError

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(("args", "line"), [
    (["--world", "aws", "failback"],
     "error: `failback` is not available with --world aws; it runs with: local"),
    (["--world", "aws-emulated", "approve", "p1"],
     "error: `approve` is not available with --world aws-emulated; it runs with: local, aws"),
    (["backup", "status"],
     "error: `backup` is not available with --world local; it runs with: aws "
     "(`regionguard --world aws backup status`)"),
])
def test_a_command_the_world_lacks_is_one_line_naming_the_worlds_that_run_it(
        args: list[str], line: str) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [line]


def test_a_refused_command_still_answers_help() -> None:
    result = CliRunner().invoke(app, ["--world", "aws", "failback", "--help"])
    assert result.exit_code == 0 and "Rebuild the home primary" in result.stdout


def test_every_command_runs_in_some_world_and_every_world_validates() -> None:
    registered = {c.name or getattr(c.callback, "__name__", "") for c in app.registered_commands}
    assert registered == set().union(*(w.commands for w in worlds.REGISTRY.values()))
    assert all("validate" in w.commands for w in worlds.REGISTRY.values())


@pytest.mark.parametrize(("text", "seconds"), [
    ("500ms", 0.5), ("30s", 30.0), (" 2m", 120.0), ("12h", 43_200.0), ("7d", 604_800.0),
    ("1.5", 1.5), (".5s", 0.5), ("10 S", 10.0),
])
def test_one_duration_parser(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "s", "-1s", "1e3", "3 weeks", "nan"])
def test_not_a_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration(text)


def test_a_bad_duration_in_the_topology_names_its_field_in_one_line() -> None:
    data = tomllib.loads((REPO / "regionguard.toml").read_text())
    data["readiness"] = {"max_drill_age": "soon"}
    with pytest.raises(ConfigError) as raised:
        parse_topology(data, "t.toml")
    assert str(raised.value).startswith("t.toml: readiness.max_drill_age: 'soon' is not a "
                                        "duration") and "\n" not in str(raised.value)


def test_the_version_is_one_line_and_needs_no_topology() -> None:
    from importlib.metadata import version

    from typer.testing import CliRunner

    from regionguard.cli import app

    shown = CliRunner().invoke(app, ["-c", "/nonexistent.toml", "--version"])
    assert shown.exit_code == 0 and shown.stdout == f"regionguard {version('regionguard')}\n"


@pytest.mark.parametrize(("typed", "given"), [
    (["status", "-c", "x.toml"], ["-c", "x.toml", "status"]),
    (["lab", "status", "--config=x.toml", "--json"],
     ["--config=x.toml", "lab", "status", "--json"]),
    (["-c", "a.toml", "drill", "--world", "aws-emulated", "--fault", "f"],
     ["-c", "a.toml", "--world", "aws-emulated", "drill", "--fault", "f"]),
    (["report", "--", "-c"], ["report", "--", "-c"]),
    (["status", "-c"], ["status", "-c"]),  # no value: left for Click to say so
])
def test_the_global_options_are_taken_after_the_command_too(typed: list[str],
                                                             given: list[str]) -> None:
    from regionguard.cli import global_options_first

    assert global_options_first(typed) == given


def test_every_commands_help_answers_and_shows_no_type_beside_a_flag() -> None:
    from typer.testing import CliRunner

    from regionguard.cli import app

    commands = [["--help"], *[[c, "--help"] for c in (
        "validate", "up", "down", "status", "failover", "switchover", "failback", "events",
        "readiness", "approve", "reject", "report", "drill", "synth", "backup", "agent",
        "rejoin")], ["lab", "up", "--help"], ["lab", "fault", "--help"]]
    for args in commands:
        shown = CliRunner().invoke(app, args)
        assert shown.exit_code == 0, (args, shown.output)
        assert "<bool>" not in shown.output, (args, shown.output)

