"""The role a witness probes the primary with: least privilege for a site that holds no
database. Its agent only asks whether the primary answers (`SELECT pg_is_in_recovery()`), so
it needs to log in and nothing else: no superuser, no replication, no table. The regions'
sites hold the superuser's secret as well (replication, pg_rewind, the agent's own upkeep);
the witness holds only this role's (`Site.install_db_secret`).

The primary's agent creates the role, or sets its password again, from the line for it in its
own site's pgpass, once per start; a site without that line (a deployment from before) keeps
probing as it did.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg import sql

from regionguard.providers.local.postgres.files import password_in

if TYPE_CHECKING:
    from regionguard.providers.local.postgres import PostgresCluster

MONITOR_USER = "regionguard_monitor"


def ensure_role(c: PostgresCluster) -> bool:
    """Create the monitoring role on primary `c` (or set its password again) from the site's
    pgpass; False when the site has no line for it."""
    password = password_in(c.passfile, MONITOR_USER)
    if password is None:
        return False
    with c.connect("postgres") as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                        (MONITOR_USER,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(MONITOR_USER)))
        conn.execute(sql.SQL("ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                             "NOREPLICATION NOBYPASSRLS PASSWORD {}").format(
            sql.Identifier(MONITOR_USER), sql.Literal(password)))
    return True
