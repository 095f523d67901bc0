"""The local providers' error boundary: what PostgreSQL, the OS, a subprocess or HTTP raise
becomes a one-line `ProviderError` naming the operation, which a step retries within its
deadline. Nothing of psycopg or the OS reaches the engine, the agent's loop or the CLI."""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import psutil
import psycopg

from regionguard.errors import ProviderError, RegionGuardError

BACKEND_ERRORS = (psycopg.Error, OSError, subprocess.SubprocessError, psutil.Error,
                  httpx.HTTPError, json.JSONDecodeError)
C = TypeVar("C", bound=type)


def _guarded(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except RegionGuardError:
            raise
        except BACKEND_ERRORS as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            raise ProviderError(f"{name}: {type(exc).__name__}: {first}") from exc

    return guarded


def provider_boundary(cls: C) -> C:
    """Wrap every public method of a provider class."""
    for attr, value in list(vars(cls).items()):
        if callable(value) and not attr.startswith("_"):
            setattr(cls, attr, _guarded(f"{cls.__name__}.{attr}", value))
    return cls
