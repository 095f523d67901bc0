"""The app's configuration, from the environment (the same in a sandbox and on Lambda)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AppSettings:
    region: str
    dsns: dict[str, str]  # region -> libpq DSN of that region's database
    pool_max: int = 8
    db_timeout_s: float = 1.5
    # AWS: the arbiter table whose `state` item names the writer region (the write lease),
    # its replica Regions nearest first, and how long a confirmation lasts
    arbiter_table: str | None = None
    arbiter_regions: tuple[str, ...] = ()
    lease_s: float = 30.0
    # the local world: the sandbox's state store, where a write without a fencing token
    # learns the live route's writer and epoch
    state_file: str | None = None
    # the credential for DELETE and the canary (app/admin.py): a file, or the token itself
    admin_token_file: str | None = None
    admin_token: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AppSettings:
        env = dict(os.environ) if env is None else env
        region = env.get("RG_REGION", "")
        if not region:
            raise SettingsError("RG_REGION is not set; set it to this process's region name")
        try:
            dsns = json.loads(env.get("RG_DSNS", ""))
        except json.JSONDecodeError:
            raise SettingsError(
                'RG_DSNS must be JSON mapping region to DSN, e.g. {"east": "host=... port=..."}'
            ) from None
        if not isinstance(dsns, dict) or region not in dsns:
            raise SettingsError(f"RG_DSNS must be a JSON object with an entry for {region!r}")
        table = env.get("RG_ARBITER_TABLE") or None
        regions = tuple(r for r in env.get("RG_ARBITER_REGIONS", "").split(",") if r)
        if table and not regions:
            raise SettingsError("RG_ARBITER_REGIONS must list the arbiter's replica Regions "
                                "(comma-separated, nearest first) when RG_ARBITER_TABLE is set")
        try:
            lease_s = float(env.get("RG_LEASE_S", "30"))
        except ValueError:
            raise SettingsError("RG_LEASE_S must be a number of seconds, e.g. 30") from None
        return cls(
            region=region,
            dsns={str(k): str(v) for k, v in dsns.items()},
            pool_max=int(env.get("RG_POOL_MAX", "8")),
            db_timeout_s=float(env.get("RG_DB_TIMEOUT_S", "1.5")),
            arbiter_table=table, arbiter_regions=regions, lease_s=lease_s,
            state_file=env.get("RG_STATE_FILE") or None,
            admin_token_file=env.get("RG_ADMIN_TOKEN_FILE") or None,
            admin_token=env.get("RG_ADMIN_TOKEN") or None,
        )
