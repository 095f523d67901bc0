"""The app's database credentials on AWS: the Secrets Manager secret, read in the app's own
Region.

The secret lives in the primary Region and is replicated to the standby Region under the same
name, so each Region's app reads its own copy: after a failover the new primary's app starts
(or scales out) without a call to the Region that died. The database's endpoint comes from the
environment (the template knows it); the secret gives the user and the password. TLS is
required (`rds.force_ssl` is on).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from psycopg.conninfo import make_conninfo

DEFAULT_SSLMODE = "require"


class SecretError(ValueError):
    """The secret cannot be read or has no usable credentials: one line, naming it."""


DEFAULT_PORTS = {"postgres": "5432", "mysql": "3306"}
SSL_MODES = ("disable", "require", "verify-full")


def secret_dsn(env: Mapping[str, str], client: Any | None = None) -> str:
    """The DSN of this Region's database for its engine (`RG_DB_ENGINE`: libpq's, or a
    mysql:// URL), from `RG_DB_HOST`, `RG_DB_PORT`, `RG_DB_NAME`, the TLS settings
    (`RG_DB_SSLMODE`: require by default, or verify-full with `RG_DB_SSLROOTCERT`, the RDS
    CA bundle) and the secret `RG_DB_SECRET_ID` in `RG_DB_SECRET_REGION`."""
    secret_id = env.get("RG_DB_SECRET_ID", "")
    region = env.get("RG_DB_SECRET_REGION", "")
    engine = env.get("RG_DB_ENGINE") or "postgres"
    host = env.get("RG_DB_HOST", "")
    port = env.get("RG_DB_PORT") or DEFAULT_PORTS.get(engine, "5432")
    if not host and env.get("RG_DB_INSTANCE") and region:
        host, port = _endpoint(env["RG_DB_INSTANCE"], region)
    for name, value in (("RG_DB_SECRET_REGION", region), ("RG_DB_HOST", host),
                        ("RG_DB_NAME", env.get("RG_DB_NAME", ""))):
        if not value:
            raise SecretError(f"{name} is not set; the AWS templates set it next to "
                              "RG_DB_SECRET_ID")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SecretError(f"RG_DB_PORT must be a TCP port number, not {port!r}")
    sslmode = env.get("RG_DB_SSLMODE") or DEFAULT_SSLMODE
    if sslmode not in SSL_MODES:
        raise SecretError(f"RG_DB_SSLMODE={sslmode} is not one of {', '.join(SSL_MODES)}")
    rootcert = env.get("RG_DB_SSLROOTCERT") or None
    if sslmode == "verify-full" and not rootcert:
        raise SecretError("RG_DB_SSLMODE=verify-full needs RG_DB_SSLROOTCERT, the CA bundle "
                          "file (for RDS: the Region's bundle from the RDS User Guide)")
    username, password = _credentials(secret_id, region, client)
    if engine == "mysql":
        from regionguard.app.engines.mysql import mysql_dsn

        return mysql_dsn(host=host, port=int(port), database=env["RG_DB_NAME"], user=username,
                         password=password, sslmode=sslmode, sslrootcert=rootcert)
    return make_conninfo(host=host, port=int(port), dbname=env["RG_DB_NAME"], user=username,
                         password=password, sslmode=sslmode,
                         **({"sslrootcert": rootcert} if rootcert else {}))


def _endpoint(instance: str, region: str) -> tuple[str, str]:
    """Backup & restore: the restored instance's endpoint, asked of this Region's RDS (it did
    not exist when the template was written)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        rds = boto3.client("rds", region_name=region)
        found = rds.describe_db_instances(DBInstanceIdentifier=instance)["DBInstances"]
        endpoint = found[0]["Endpoint"]
        return str(endpoint["Address"]), str(endpoint["Port"])
    except (ClientError, BotoCoreError, KeyError, IndexError) as exc:
        raise SecretError(f"the database {instance} in {region} has no endpoint yet "
                          f"({type(exc).__name__}): restore it first (a failover of a backup & "
                          "restore topology does)") from None


def _credentials(secret_id: str, region: str, client: Any | None) -> tuple[str, str]:
    where = f"secret {secret_id!r} in {region}"
    text = secret_string(secret_id, region, client)
    try:
        data = json.loads(text)
        username, password = str(data["username"]), str(data["password"])
    except (ValueError, KeyError, TypeError):
        raise SecretError(f"the database {where} is not JSON with \"username\" and "
                          "\"password\" (the form RDS and the CDK app write)") from None
    if not username or not password:
        raise SecretError(f"the database {where} has an empty username or password")
    return username, password


def secret_string(secret_id: str, region: str, client: Any | None = None) -> str:
    """A secret's string, read in `region` (this Region's replica): the database credentials
    (JSON) or the admin token (plain)."""
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    where = f"secret {secret_id!r} in {region or '?'}"
    try:
        sm = client or boto3.client("secretsmanager", region_name=region)
        value = str(sm.get_secret_value(SecretId=secret_id)["SecretString"]).strip()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise SecretError(f"cannot read the {where}: {code}; check that it is replicated to "
                          "this Region and that the role may read it "
                          "(secretsmanager:GetSecretValue, kms:Decrypt)") from None
    except (BotoCoreError, KeyError, ValueError) as exc:
        raise SecretError(f"cannot read the {where}: {type(exc).__name__}") from None
    if not value:
        raise SecretError(f"the {where} is empty")
    return value
