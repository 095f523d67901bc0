"""What every command shares: one-line errors, the consoles, the context a command runs in
(the topology file and the world, kept on Typer's context object rather than in a module
global), and small output helpers."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import typer
from rich.console import Console

from regionguard.config import Topology, load_topology
from regionguard.errors import ConfigError, RegionGuardError
from regionguard.orchestrator.ports import Ports
from regionguard.worlds import World

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class CliState:
    """The global options, as the callback resolved them: set once per invocation."""

    config: Path
    world: World

    def user_topology(self) -> Topology:
        """The topology file as written (`validate`, `lab up`, `up`)."""
        return load_topology(self.config)

    def topology(self) -> Topology:
        """The topology a person's command acts on: in the local world, the sandbox's sites'
        (etcd, one address per site) while they exist (`regionguard up` made them, `down`
        removes them), else the file as written. The processes that run from the file
        (`agent`, the watchdog) and `validate`, `synth` and `lab up`
        read `user_topology()`; the other worlds never see the sandbox's sites."""
        user = self.user_topology()
        sites = self.sandbox_sites(user)
        if sites is None:
            return user
        try:
            return load_topology(sites / "regionguard.toml")
        except RegionGuardError as exc:
            raise ConfigError(f"the sandbox's sites in {sites} have a topology that cannot be "
                              f"read ({str(exc).splitlines()[0]}); `regionguard down` removes "
                              "them") from None

    def sandbox_sites(self, user: Topology | None = None) -> Path | None:
        """The directory of the sandbox's sites when `regionguard up` made them (local world
        only)."""
        from regionguard.lab.sandbox_sites import running_sites

        if self.world.name != "local":
            return None
        return running_sites(user or self.user_topology())

    def engine_ports(self) -> Ports:
        """The engine's ports for a person's command in the selected world."""
        return self.world.engine_ports(self.topology())


def state(ctx: typer.Context) -> CliState:
    """The running command's global options, which the app's callback put on the context."""
    found = ctx.find_object(CliState)
    if found is None:  # a command called outside the app: a bug, not a user error
        raise RuntimeError("no CliState on the context; run the command through the app")
    return found


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
        except (typer.Exit, typer.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: one line, the traceback only when asked for
            if os.environ.get("RG_DEBUG"):
                raise
            err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} (a bug; rerun "
                      "with RG_DEBUG=1 for the traceback and report it)", highlight=False,
                      soft_wrap=True)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def print_json(data: object) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def progress_reporter() -> Callable[[str], None]:
    """Print each step of a long operation with the time since the command started."""
    started = time.monotonic()

    def report(message: str) -> None:
        out.print(f"[dim]{time.monotonic() - started:6.1f}s[/dim]  {message}", highlight=False)

    return report


def who(by: str | None) -> str:
    """Who asks, for the journal: `--by`, else user@host."""
    import getpass
    import socket

    return by or f"{getpass.getuser()}@{socket.gethostname()}"
