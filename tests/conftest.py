"""Shared fixtures: real PostgreSQL clusters on free loopback ports, stopped afterwards."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from regionguard.app.migrate import migrate
from regionguard.providers.local import pgbin
from regionguard.providers.local.netutil import free_port
from regionguard.providers.local.postgres import PostgresCluster

# Every test carries exactly one tier marker (registered in pyproject.toml); `pytest -m TIER`
# runs one tier. Tighter per-test ceilings than pyproject's `timeout` where obviously safe.
TIERS = ("unit", "local", "aws", "emulated", "iac", "lab")
TIER_TIMEOUT_S = {"unit": 30, "aws": 60}  # their slowest took 3 s and 5 s under load


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: every collected test is checked
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wrong = []
    for item in items:
        tiers = sorted({m.name for m in item.iter_markers() if m.name in TIERS})
        if len(tiers) != 1:
            wrong.append(f"{item.nodeid} has {', '.join(tiers) or 'none'}")
        elif (tiers[0] in TIER_TIMEOUT_S and config.pluginmanager.hasplugin("timeout")
              and item.get_closest_marker("timeout") is None):
            item.add_marker(pytest.mark.timeout(TIER_TIMEOUT_S[tiers[0]]))
    if wrong:
        more = f" (and {len(wrong) - 3} more)" if len(wrong) > 3 else ""
        raise pytest.UsageError(f"each test needs exactly one tier marker of {', '.join(TIERS)}: "
                                f"{'; '.join(wrong[:3])}{more}")


@dataclass
class PgPair:
    primary: PostgresCluster
    standby: PostgresCluster

    def dsns(self) -> dict[str, str]:
        return {c.name: c.dsn() for c in (self.primary, self.standby)}


@pytest.fixture(scope="module")
def pg_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgPair]:
    """east = primary with the app's schema; west = a synchronous hot standby (pg_basebackup -R)."""
    with a_pg_pair(tmp_path_factory.mktemp("pgpair")) as pair:
        yield pair


@contextlib.contextmanager
def a_pg_pair(state_dir: Path) -> Iterator[PgPair]:
    """`pg_pair`'s pair in `state_dir`, for a test that must have one of its own."""
    root = pgbin.data_root(state_dir)
    primary = PostgresCluster("east", root / "east", "127.0.0.1", free_port(), "orders")
    standby = PostgresCluster("west", root / "west", "127.0.0.1", free_port(), "orders")
    try:
        primary.create_primary()
        migrate(primary.dsn())
        primary.set_sync_standby("west")
        standby.create_standby(primary)
        yield PgPair(primary, standby)
    finally:
        for cluster in (standby, primary):
            cluster.remove()
        shutil.rmtree(root, ignore_errors=True)
        assert not primary.processes() and not standby.processes()


