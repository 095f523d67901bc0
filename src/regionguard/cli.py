"""The `regionguard` command line (Typer + Rich).

Every command turns a `RegionGuardError` into one line on stderr and its exit code
(0 ok, 1 failed, 2 bad input, 3 refused as unsafe, 4 not available yet): never a traceback.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from regionguard.config import DEFAULT_CONFIG_FILE, Topology, load_topology
from regionguard.errors import NotAvailable, RegionGuardError

app = typer.Typer(
    help="Keep an application available across two regions and fail it over automatically.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])

class _Ctx:
    config: Path = DEFAULT_CONFIG_FILE


ctx_state = _Ctx()


@app.callback()
def _main(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="Topology file (default: ./regionguard.toml).")
    ] = DEFAULT_CONFIG_FILE,
) -> None:
    ctx_state.config = config


def one_line_errors(func: F) -> F:
    """Run a command; print a RegionGuardError as one line and exit with its code."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except RegionGuardError as exc:
            err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err.print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


def topology() -> Topology:
    return load_topology(ctx_state.config)


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


@app.command()
@one_line_errors
def validate(
    file: Annotated[
        Path | None, typer.Argument(help="Topology file to check (default: the -c file).")
    ] = None,
) -> None:
    """Check a topology file: one line saying it is valid, or one line per problem and exit 2."""
    path = file or ctx_state.config
    topo = load_topology(path)
    regions = ", ".join(f"{n} ({r.home_role.value})" for n, r in topo.regions.items())
    out.print(
        f"{path}: ok — app {topo.app!r}, {topo.strategy.value}, {topo.replication.value} "
        f"replication, regions {regions}",
        highlight=False,
    )


def _not_yet(name: str, issue: str) -> Callable[[], None]:
    def command() -> None:
        err.print(f"error: `regionguard {name}` is not available yet ({issue})", highlight=False)
        raise typer.Exit(NotAvailable.exit_code)

    command.__doc__ = f"(not available yet: {issue})"
    return command


for _name, _issue in [
    ("up", "local sandbox"), ("down", "local sandbox"), ("status", "local sandbox"),
    ("events", "failover engine"), ("failover", "failover engine"),
    ("switchover", "failover engine"), ("failback", "failover engine"),
    ("drill", "drills"), ("synth", "AWS CDK app"),
]:
    app.command(_name)(_not_yet(_name, _issue))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
