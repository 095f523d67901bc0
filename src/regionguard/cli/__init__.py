"""The `regionguard` command line (Typer + Rich).

Every command turns a `RegionGuardError` into one line on stderr and its exit code
(0 ok, 1 failed, 2 bad input, 3 refused as unsafe, 4 not available yet): never a traceback.
The commands live by group (sandbox.py, plans.py, drill.py, infra.py, agent.py, lab.py); this module
holds the app, the global options and `main`. `--world` is looked up in the registry
(regionguard/worlds): a command the world lacks is refused here, in one line naming the worlds
that have it (after its options are parsed, so its `--help` still answers).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any

import typer

from regionguard import worlds
from regionguard.cli import agent, drill, infra, lab, plans, sandbox
from regionguard.cli.common import CliState, err, state
from regionguard.config import DEFAULT_CONFIG_FILE
from regionguard.errors import UsageError


def _flags_show_no_type() -> None:
    """Typer 0.29's help prints `<bool>` beside every flag (`--json <bool>`), as if it took a
    value. A flag takes none: its type column stays empty (tests/unit/test_worlds.py checks
    every command's help, so a Typer that moves this is noticed)."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag and self.metavar is None else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()

app = typer.Typer(
    help="Keep an application available across two regions and fail it over automatically.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # docstrings are paragraphs: their lines are joined and wrapped to the terminal's width
    rich_markup_mode="markdown",
)

WORLD_HELP = (", ".join(f"{w.name} ({w.summary})" for w in worlds.REGISTRY.values())
              + "; a command a world lacks is refused, naming the worlds it runs in.")


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version

        typer.echo(f"regionguard {version('regionguard')}")
        raise typer.Exit()


@app.callback()
def _main(
    ctx: typer.Context,
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Topology file (default: ./regionguard.toml).")
    ] = DEFAULT_CONFIG_FILE,
    world: Annotated[str, typer.Option("--world", help=WORLD_HELP)] = worlds.DEFAULT,
    show_version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version,
        help="Print regionguard's version and exit.")] = False,
) -> None:
    try:
        ctx.obj = CliState(config, worlds.get(world))
    except UsageError as exc:
        err.print(f"error: {exc}", highlight=False)
        raise typer.Exit(2) from None


def in_its_worlds(command: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse `command` (exit 2, one line) unless the selected world runs it. Every command
    takes Typer's context as `ctx`; Typer passes parameters by keyword."""

    @wraps(command)
    def run(**params: Any) -> Any:
        ctx: typer.Context = params["ctx"]
        refused = worlds.refusal(state(ctx).world, ctx.info_name or command.__name__)
        if refused is not None:
            err.print(f"error: {refused}", highlight=False)
            raise typer.Exit(2)
        return command(**params)

    return run


# in the order `--help` lists them
command: Callable[..., None]
for command in (sandbox.validate, sandbox.up, sandbox.down, sandbox.status, plans.failover,
                plans.switchover, plans.failback, plans.events, plans.readiness, plans.approve,
                plans.reject, plans.report):
    app.command()(in_its_worlds(command))
for command in (drill.drill, infra.synth, infra.backup, agent.agent, agent.rejoin):
    app.command()(in_its_worlds(command))
app.command("_watchdog", hidden=True)(in_its_worlds(agent.watchdog_cmd))
app.add_typer(lab.app, name="lab")
app.command("_lab-init", hidden=True)(in_its_worlds(lab.init_cmd))


GLOBAL_OPTIONS = ("-c", "--config", "--world")  # each takes a value


def global_options_first(argv: list[str]) -> list[str]:
    """`regionguard status -c FILE` as `regionguard -c FILE status`: the global options are
    also taken after the command (where people type them), moved before it for Click; `--`
    ends the scan."""
    head: list[str] = []
    moved: list[str] = []
    rest: list[str] = []
    i, command_seen = 0, False
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest += argv[i:]
            break
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS and ("=" in arg or i + 1 < len(argv)):
            takes = 1 if "=" in arg else 2
            (moved if command_seen else head).extend(argv[i:i + takes])
            i += takes
            continue
        if not command_seen and not arg.startswith("-"):
            command_seen = True
        (rest if command_seen else head).append(arg)
        i += 1
    return head + moved + rest


def main() -> None:
    import sys

    app(args=global_options_first(sys.argv[1:]))
