"""A backend error inside a local provider (the agents' PostgreSQL, probes, notifier) reaches
the engine as a ProviderError it can retry, in one line: never a driver's exception."""

from __future__ import annotations

import psycopg
import pytest

from regionguard.errors import ProviderError
from regionguard.providers.local import boundary

pytestmark = pytest.mark.unit


def test_backend_errors_of_local_providers_become_provider_errors() -> None:
    @boundary.provider_boundary
    class Flaky:
        def status(self) -> None:
            raise psycopg.OperationalError("connection to server at 127.0.0.1 failed\nmore")

        def scale(self) -> None:
            raise OSError(24, "Too many open files")

    with pytest.raises(ProviderError, match=r"Flaky.status: OperationalError: connection"):
        Flaky().status()
    with pytest.raises(ProviderError, match="Too many open files"):
        Flaky().scale()
