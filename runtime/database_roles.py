"""The registry database's roles: one login role per purpose, each owning one database.

The stack's bootstrap Job runs this (`mlops-runtime database-bootstrap`) as the RDS master user,
the one pod of the team that may read the master secret. For every role of
``MLOPS_DATABASE_ROLES`` it makes sure that

- the role exists and may log in, with no password: with IAM authentication (the default) it
  is a member of RDS's `rds_iam` role, so it logs in only with a token that `rds-db:connect`
  on exactly this user signs (the workloads' credentials sidecar writes one every few minutes);
- its database exists and is owned by it, and PUBLIC may not connect to it (nor create temporary
  tables in it): no other role of the instance opens it, so none reads its tables.

Idempotent: every step looks first and changes only what differs, so a second run reports
nothing changed. Roles and databases that are no longer declared are left alone (they hold
data). No password is ever printed: the master password exists only in the connection, and any
error text is scrubbed of it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runtime.errors import ConfigurationError, RuntimeUserError
from runtime.spec import DatabaseRoleSpec

if TYPE_CHECKING:
    from runtime.settings import Settings

RDS_IAM_ROLE = "rds_iam"
"""RDS's built-in role: its members authenticate with IAM tokens only."""


class DatabaseBootstrapError(RuntimeUserError):
    """The roles could not be made (no connection, no privilege, no rds_iam role, ...)."""


@dataclass(frozen=True)
class Change:
    """One thing the bootstrap changed (for its report)."""

    role: str
    what: str

    def __str__(self) -> str:
        return f"{self.role}: {self.what}"


def _public_privileges(cursor: Any, database: str) -> list[str]:
    """What PUBLIC may do on ``database`` (privilege letters; empty: nothing)."""
    cursor.execute(
        """
        SELECT acl.privilege_type
        FROM pg_database d,
             aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) AS acl
        WHERE d.datname = %s AND acl.grantee = 0
        """,
        (database,),
    )
    return sorted(row[0] for row in cursor.fetchall())


def _one(cursor: Any, query: str, *params: Any) -> Any:
    cursor.execute(query, params)
    row = cursor.fetchone()
    return row[0] if row else None


def ensure_roles(
    connection: Any, roles: Sequence[DatabaseRoleSpec], *, iam_auth: bool
) -> list[Change]:
    """Make ``roles`` as the module says, on an autocommit psycopg2 ``connection``; the changes."""
    from psycopg2 import sql

    changes: list[Change] = []
    with connection.cursor() as cursor:
        if iam_auth and not _one(cursor, "SELECT 1 FROM pg_roles WHERE rolname = %s", RDS_IAM_ROLE):
            raise DatabaseBootstrapError(
                f"the server has no {RDS_IAM_ROLE!r} role: IAM database authentication is an RDS "
                "feature; on another PostgreSQL set MLOPS_DATABASE_IAM_AUTH=false (the roles then "
                "log in however the server's pg_hba.conf says)"
            )
        for spec in roles:
            role, database = sql.Identifier(spec.role), sql.Identifier(spec.database)
            can_login = _one(
                cursor, "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", spec.role
            )
            if can_login is None:
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN").format(role))
                changes.append(Change(spec.role, "role created (login, no password)"))
            elif not can_login:
                cursor.execute(sql.SQL("ALTER ROLE {} LOGIN").format(role))
                changes.append(Change(spec.role, "role may log in"))
            # Creating a database owned by the role needs membership in it (RDS's master user is
            # no superuser; PostgreSQL 16 no longer grants a role's creator membership).
            if not _one(cursor, "SELECT pg_has_role(current_user, %s, 'MEMBER')", spec.role):
                cursor.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
                changes.append(Change(spec.role, "granted to the admin user (to own databases)"))
            if iam_auth and not _one(
                cursor,
                "SELECT 1 FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
                "JOIN pg_roles r ON r.oid = m.member WHERE g.rolname = %s AND r.rolname = %s",
                RDS_IAM_ROLE,
                spec.role,
            ):
                cursor.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(RDS_IAM_ROLE), role))
                changes.append(Change(spec.role, f"member of {RDS_IAM_ROLE} (IAM tokens only)"))
            owner = _one(
                cursor,
                "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                spec.database,
            )
            if owner is None:
                cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
                changes.append(Change(spec.role, f"database {spec.database} created, owned by it"))
            elif owner != spec.role:
                cursor.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, role))
                changes.append(
                    Change(spec.role, f"database {spec.database} now owned by it (was {owner})")
                )
            if _public_privileges(cursor, spec.database):
                cursor.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
                changes.append(
                    Change(spec.role, f"PUBLIC may no longer connect to {spec.database}")
                )
    return changes


@dataclass(frozen=True)
class AdminLogin:
    """How the bootstrap logs in: a libpq URI without password, and the password if any."""

    uri: str
    username: str | None = None
    password: str | None = None

    def scrub(self, text: str) -> str:
        """``text`` without the password (libpq never echoes it, but be sure)."""
        return text.replace(self.password, "********") if self.password else text


def master_login(
    uri: str, secret_arn: str | None, read_secret: Callable[[str], str] | None = None
) -> AdminLogin:
    """The admin URI, with the username and password of the RDS-managed secret ``secret_arn``."""
    if not secret_arn:
        return AdminLogin(uri)
    if read_secret is None:
        raise ConfigurationError("a master secret needs a Secrets Manager client")
    try:
        secret = json.loads(read_secret(secret_arn))
        return AdminLogin(uri, str(secret["username"]), str(secret["password"]))
    except (ValueError, KeyError, TypeError):
        raise DatabaseBootstrapError(
            f"the master secret {secret_arn} is not the JSON RDS writes (username, password)"
        ) from None


def connect(login: AdminLogin) -> Any:
    import psycopg2

    extra = {"user": login.username, "password": login.password} if login.password else {}
    try:
        connection = psycopg2.connect(login.uri, connect_timeout=15, **extra)
    except psycopg2.Error as error:
        raise DatabaseBootstrapError(
            f"cannot log in to the database as the admin user: {login.scrub(str(error).strip())}"
        ) from None
    # CREATE DATABASE cannot run in a transaction block.
    connection.autocommit = True
    return connection


def bootstrap(settings: Settings) -> list[Change]:
    """Log in as the master user (its secret, through the pod's IAM role) and ensure the roles."""
    import psycopg2

    if not settings.database_admin_uri:
        raise ConfigurationError(
            "MLOPS_DATABASE_ADMIN_URI is not set: the bootstrap needs the admin login's "
            "libpq URI (host, port, database; the password comes from the master secret)"
        )
    if not settings.database_roles:
        raise ConfigurationError("MLOPS_DATABASE_ROLES is empty: no role to make")
    read_secret = None
    if settings.database_master_secret_arn:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError

        client = boto3.client(
            "secretsmanager",
            region_name=settings.aws_region,
            endpoint_url=settings.aws_endpoint_url,
        )

        def read_secret(arn: str) -> str:
            try:
                return str(client.get_secret_value(SecretId=arn)["SecretString"])
            except (BotoCoreError, ClientError) as error:
                raise DatabaseBootstrapError(
                    f"cannot read the master secret {arn}: {error}"
                ) from None

    login = master_login(
        settings.database_admin_uri, settings.database_master_secret_arn, read_secret
    )
    connection = connect(login)
    try:
        return ensure_roles(
            connection, settings.database_roles, iam_auth=settings.database_iam_auth
        )
    except psycopg2.Error as error:
        raise DatabaseBootstrapError(
            f"making the database roles failed: {login.scrub(str(error).strip())}"
        ) from None
    finally:
        connection.close()
