"""The app's configuration, from the environment (the same in a sandbox and on Lambda).

The databases come one of two ways: `RG_DSNS` (the local world: every region's DSN, the
sandbox's password file) or, on AWS, this Region's endpoint (`RG_DB_HOST`, `RG_DB_PORT`,
`RG_DB_NAME`) with the credentials from the Secrets Manager secret replicated to this Region
(`RG_DB_SECRET_ID`, `RG_DB_SECRET_REGION`). `RG_DB_ENGINE` says which: `postgres` (default)
or `mysql` (AWS only). On AWS the app writes to its own Region's database
only while the arbiter names its Region (the write lease), so it needs no other Region's DSN.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field

from regionguard.app.engines import ENGINES, EngineName


class SettingsError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AppSettings:
    region: str
    dsns: dict[str, str]  # region -> DSN of that region's database (libpq's, or a mysql:// URL)
    engine: EngineName = "postgres"  # RG_DB_ENGINE: the database engine (app/engines)
    pool_max: int = 8
    db_timeout_s: float = 1.5
    # AWS: the arbiter table whose `state` item names the writer region (the write lease),
    # its replica Regions nearest first, and how long a confirmation lasts
    arbiter_table: str | None = None
    arbiter_regions: tuple[str, ...] = ()
    lease_s: float = 30.0
    lease_refresh_s: float | None = None  # default: min(5 s, lease_s / 3)
    # self-managed sites: the etcd members (site -> client URL, this site's first) whose
    # writer key names the writer region while its agent's lease lives (the write lease), and
    # the application's key prefix there
    arbiter_etcd: dict[str, str] = field(default_factory=dict)
    arbiter_app: str = ""
    arbiter_etcd_tls: tuple[str | None, str | None, str | None] = (None, None, None)
    # the credential for DELETE and the canary (app/admin.py): a file, or the token itself
    admin_token_file: str | None = None
    admin_token: str | None = None
    # AWS: each Region's regional host (`<region>.<domain>`), where a Region without the write
    # lease forwards writes (app/forward.py); empty: such writes are refused (503)
    region_hosts: dict[str, str] = field(default_factory=dict)
    # AWS serverless: the value CloudFront sends in X-Regionguard-Origin (app/origin.py); API
    # calls without it are refused, so none bypasses the edge's web ACL
    origin_secret: str | None = None
    # AWS: the sessions' DynamoDB global table and this app's own Region, whose replica alone
    # it reads and writes (app/sessions); none: sessions live in the primary's database
    sessions_table: str | None = None
    sessions_region: str | None = None

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AppSettings:
        env = dict(os.environ) if env is None else env
        region = env.get("RG_REGION", "")
        if not region:
            raise SettingsError("RG_REGION is not set; set it to this process's region name")
        engine = env.get("RG_DB_ENGINE") or "postgres"
        if engine not in ENGINES:
            raise SettingsError(f"RG_DB_ENGINE={engine} is not a database engine: use "
                                f"{' or '.join(ENGINES)}")
        dsns = _dsns(env, region)
        table = env.get("RG_ARBITER_TABLE") or None
        regions = tuple(r for r in env.get("RG_ARBITER_REGIONS", "").split(",") if r)
        if table and not regions:
            raise SettingsError("RG_ARBITER_REGIONS must list the arbiter's replica Regions "
                                "(comma-separated, nearest first) when RG_ARBITER_TABLE is set")
        if env.get("RG_ARBITER_ETCD") and not env.get("RG_APP"):
            raise SettingsError("RG_APP is not set; with RG_ARBITER_ETCD set it to the "
                                "application's name (the topology's `app`), whose writer key "
                                "the app reads")
        try:
            lease_s = float(env.get("RG_LEASE_S", "30"))
        except ValueError:
            raise SettingsError("RG_LEASE_S must be a number of seconds, e.g. 30") from None
        try:
            refresh = env.get("RG_LEASE_REFRESH_S")
            lease_refresh_s = float(refresh) if refresh else None
        except ValueError:
            raise SettingsError("RG_LEASE_REFRESH_S must be a number of seconds, e.g. 0.25"
                                ) from None
        sessions_table = env.get("RG_SESSIONS_TABLE") or None
        sessions_region = env.get("RG_SESSIONS_REGION") or None
        if sessions_table and not sessions_region:
            raise SettingsError("RG_SESSIONS_REGION must name this app's own AWS Region (whose "
                                "replica of RG_SESSIONS_TABLE it uses), e.g. us-west-2")
        return cls(
            region=region,
            sessions_table=sessions_table, sessions_region=sessions_region,
            dsns=dsns,
            engine=engine,
            pool_max=int(env.get("RG_POOL_MAX", "8")),
            db_timeout_s=float(env.get("RG_DB_TIMEOUT_S", "1.5")),
            arbiter_table=table, arbiter_regions=regions, lease_s=lease_s,
            lease_refresh_s=lease_refresh_s,
            arbiter_etcd=_pairs("RG_ARBITER_ETCD", env.get("RG_ARBITER_ETCD", ""),
                                "east=http://10.0.0.1:2379,witness=http://10.0.0.3:2379"),
            arbiter_app=env.get("RG_APP", ""),
            arbiter_etcd_tls=(env.get("RG_ARBITER_ETCD_CA") or None,  # CA, cert, key files
                              env.get("RG_ARBITER_ETCD_CERT") or None,
                              env.get("RG_ARBITER_ETCD_KEY") or None),
            admin_token_file=env.get("RG_ADMIN_TOKEN_FILE") or None,
            admin_token=env.get("RG_ADMIN_TOKEN") or _admin_from_secret(env),
            region_hosts=_pairs("RG_REGION_HOSTS", env.get("RG_REGION_HOSTS", ""),
                                "east=east.app.example.com,west=west.app.example.com"),
            origin_secret=_origin_secret(env),
        )


def _dsns(env: dict[str, str], region: str) -> dict[str, str]:
    if "RG_DSNS" not in env and env.get("RG_DB_SECRET_ID"):
        from regionguard.app.db_secret import SecretError, secret_dsn

        try:
            return {region: secret_dsn(env)}
        except SecretError as exc:
            raise SettingsError(str(exc)) from None
    if "RG_DSNS" not in env:
        raise SettingsError("no database configured: set RG_DSNS (the local world) or "
                            "RG_DB_HOST, RG_DB_NAME and RG_DB_SECRET_ID (AWS)")
    try:
        dsns = json.loads(env["RG_DSNS"])
    except json.JSONDecodeError:
        raise SettingsError(
            'RG_DSNS must be JSON mapping region to DSN, e.g. {"east": "host=... port=..."}'
        ) from None
    if not isinstance(dsns, dict) or region not in dsns:
        raise SettingsError(f"RG_DSNS must be a JSON object with an entry for {region!r}")
    return {str(k): str(v) for k, v in dsns.items()}


def _pairs(name: str, text: str, example: str) -> dict[str, str]:
    """`a=x,b=y`, in order (no quotes: it passes through a systemd environment file
    unchanged)."""
    pairs: dict[str, str] = {}
    for pair in filter(None, text.split(",")):
        key, _, value = pair.partition("=")
        if not key or not value:
            raise SettingsError(f"{name} must be name=value pairs separated by commas, e.g. "
                                f"{example}")
        pairs[key.strip()] = value.strip()
    return pairs


def _secret(env: dict[str, str], key: str) -> str | None:
    """The secret named by `env[key]`, read in this Region (RG_DB_SECRET_REGION); None when
    the key is unset. Raises SecretError when it cannot be read."""
    name = env.get(key)
    if not name:
        return None
    from regionguard.app.db_secret import secret_string

    return secret_string(name, env.get("RG_DB_SECRET_REGION", ""))


def _origin_secret(env: dict[str, str]) -> str | None:
    """AWS serverless: CloudFront's origin header value, from its secret in this Region
    (RG_ORIGIN_SECRET). Unreadable: the app does not start (fail closed; the Lambda answers 503
    until it can), never serving without the check it was deployed with."""
    from regionguard.app.db_secret import SecretError

    try:
        return _secret(env, "RG_ORIGIN_SECRET")
    except SecretError as exc:
        raise SettingsError(str(exc)) from None


def _admin_from_secret(env: dict[str, str]) -> str | None:
    """AWS: the canary's credential from its secret in this Region (RG_ADMIN_TOKEN_SECRET).
    Unreadable: the canary stays disabled (403, which `verify` reports), the app still serves."""
    from regionguard.app.db_secret import SecretError

    try:
        return _secret(env, "RG_ADMIN_TOKEN_SECRET")
    except SecretError as exc:
        logging.getLogger("regionguard.app").error("%s; the canary is disabled", exc)
        return None
