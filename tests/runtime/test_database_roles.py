"""`mlops-runtime database-bootstrap` on the real PostgreSQL: one role per purpose, each owning
its database, the other's unreadable; a second run changes nothing; no password is ever printed.

The local server trusts every login, so these tests prove privileges (who may open which
database, read which table), not passwords or IAM tokens; `rds_iam` is made here as RDS has it.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import psycopg2
import pytest
from psycopg2 import sql
from typer.testing import CliRunner

from runtime.cli import app
from runtime.database_roles import RDS_IAM_ROLE
from runtime.settings import render_env
from runtime.spec import DatabaseRoleSpec
from tests.runtime.conftest import POSTGRES_URL, REGION

runner = CliRunner()
SECRET_PASSWORD = "pw-Never-Printed-7f3a"


def _admin() -> object:
    try:
        connection = psycopg2.connect(POSTGRES_URL, connect_timeout=3)
    except psycopg2.OperationalError as error:
        if os.environ.get("CI", "").lower() == "true" or "MLOPS_TEST_POSTGRES_URL" in os.environ:
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable: {error}")
        pytest.skip(
            f"PostgreSQL at {POSTGRES_URL} is unreachable and MLOPS_TEST_POSTGRES_URL is unset"
        )
    connection.autocommit = True
    return connection


@dataclass(frozen=True)
class Roles:
    mlflow: DatabaseRoleSpec
    feast: DatabaseRoleSpec

    @property
    def all(self) -> list[DatabaseRoleSpec]:
        return [self.mlflow, self.feast]


def login_uri(spec: DatabaseRoleSpec, database: str | None = None) -> str:
    base = POSTGRES_URL.split("://", 1)[1].split("@", 1)[-1].rsplit("/", 1)[0]
    return f"postgresql://{spec.role}@{base}/{database or spec.database}"


@pytest.fixture
def roles() -> Iterator[Roles]:
    """Two uniquely named roles (roles are the whole server's), dropped with their databases."""
    admin = _admin()
    suffix = uuid.uuid4().hex[:8]
    made = Roles(
        DatabaseRoleSpec(role=f"mlflow_{suffix}", database=f"mlflow_{suffix}"),
        DatabaseRoleSpec(role=f"feast_{suffix}", database=f"feast_registry_{suffix}"),
    )
    with admin.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RDS_IAM_ROLE,))
        if cursor.fetchone() is None:
            with contextlib.suppress(psycopg2.errors.DuplicateObject):
                cursor.execute(
                    sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(RDS_IAM_ROLE))
                )
    try:
        yield made
    finally:
        with admin.cursor() as cursor:  # type: ignore[attr-defined]
            for spec in made.all:
                cursor.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                        sql.Identifier(spec.database)
                    )
                )
                cursor.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(spec.role)))
        admin.close()  # type: ignore[attr-defined]


def bootstrap(
    monkeypatch: pytest.MonkeyPatch, roles: list[DatabaseRoleSpec], **settings: object
) -> tuple[int, str]:
    env = render_env(database_admin_uri=POSTGRES_URL, database_roles=roles, **settings)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = runner.invoke(app, ["database-bootstrap"])
    return result.exit_code, result.output


def test_roles_own_their_databases_and_cannot_read_each_other(
    roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, output = bootstrap(monkeypatch, roles.all)
    assert code == 0, output
    for spec in roles.all:
        assert f"{spec.role}: role created" in output
        assert f"{spec.role}: database {spec.database} created, owned by it" in output
        assert f"{spec.role}: member of {RDS_IAM_ROLE}" in output

    # Each role creates, writes and reads tables in its own database.
    for spec in roles.all:
        with psycopg2.connect(login_uri(spec)) as connection, connection.cursor() as cursor:
            cursor.execute("CREATE TABLE secrets_of_mine (value text)")
            cursor.execute("INSERT INTO secrets_of_mine VALUES (%s)", (spec.role,))
            cursor.execute("SELECT value FROM secrets_of_mine")
            assert cursor.fetchall() == [(spec.role,)]
            cursor.execute("SELECT current_user, pg_has_role(%s, 'MEMBER')", (RDS_IAM_ROLE,))
            assert cursor.fetchone() == (spec.role, True)

    # Neither opens the other's database.
    for spec, other in ((roles.feast, roles.mlflow), (roles.mlflow, roles.feast)):
        with pytest.raises(psycopg2.OperationalError, match="permission denied for database"):
            psycopg2.connect(login_uri(spec, other.database))

    # Nor would it read the tables if it got in (a superuser lets it connect, nothing more).
    admin = _admin()
    with admin.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(roles.mlflow.database), sql.Identifier(roles.feast.role)
            )
        )
    admin.close()  # type: ignore[attr-defined]
    with (
        psycopg2.connect(login_uri(roles.feast, roles.mlflow.database)) as connection,
        connection.cursor() as cursor,
        pytest.raises(psycopg2.errors.InsufficientPrivilege, match="permission denied for table"),
    ):
        cursor.execute("SELECT * FROM secrets_of_mine")


def test_second_run_changes_nothing(roles: Roles, monkeypatch: pytest.MonkeyPatch) -> None:
    assert bootstrap(monkeypatch, roles.all)[0] == 0
    code, output = bootstrap(monkeypatch, roles.all)
    assert code == 0, output
    assert "changed" not in output
    assert output.strip().endswith("nothing to change")


def test_adopts_an_existing_database_and_adds_a_role(
    roles: Roles, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stack that turns on the SQL Feast registry later: MLflow's role stays as it was; a
    database made by someone else becomes the role's and closed to PUBLIC."""
    assert bootstrap(monkeypatch, [roles.mlflow])[0] == 0
    admin = _admin()
    with admin.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(roles.feast.database)))
    admin.close()  # type: ignore[attr-defined]
    code, output = bootstrap(monkeypatch, roles.all)
    assert code == 0, output
    assert not [
        line for line in output.splitlines() if line.startswith(f"changed {roles.mlflow.role}:")
    ]
    assert f"database {roles.feast.database} now owned by it" in output
    assert f"PUBLIC may no longer connect to {roles.feast.database}" in output


def test_master_secret_is_read_never_printed(
    roles: Roles, monkeypatch: pytest.MonkeyPatch, moto_endpoint: str
) -> None:
    """The Job's path: the password from the RDS-managed secret (moto); trust auth ignores it,
    so a wrong port plays the failure, whose message must not carry it either."""
    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, region_name=REGION)
    user = POSTGRES_URL.split("://", 1)[1].split("@", 1)[0]
    arn = secrets.create_secret(
        Name=f"rds!db-{uuid.uuid4()}",
        SecretString=json.dumps({"username": user, "password": SECRET_PASSWORD}),
    )["ARN"]
    common = {"database_master_secret_arn": arn, "aws_endpoint_url": moto_endpoint}
    code, output = bootstrap(monkeypatch, roles.all, **common)
    assert code == 0, output
    assert SECRET_PASSWORD not in output

    monkeypatch.setenv("MLOPS_DATABASE_ADMIN_URI", "postgresql://127.0.0.1:1/test")
    result = runner.invoke(app, ["database-bootstrap"])
    assert result.exit_code == 1
    assert "cannot log in to the database as the admin user" in result.output
    assert SECRET_PASSWORD not in result.output
    assert "Traceback" not in result.output


def test_clear_errors(monkeypatch: pytest.MonkeyPatch, roles: Roles) -> None:
    code, output = bootstrap(monkeypatch, [])
    assert (code, "MLOPS_DATABASE_ROLES is empty" in output) == (1, True)

    monkeypatch.setattr("runtime.database_roles.RDS_IAM_ROLE", "rds_iam_not_here")
    code, output = bootstrap(monkeypatch, roles.all)
    assert code == 1
    assert "no 'rds_iam_not_here' role: IAM database authentication is an RDS feature" in output
    assert "MLOPS_DATABASE_IAM_AUTH=false" in output

    code, output = bootstrap(monkeypatch, roles.all, database_iam_auth=False)
    assert code == 0, output
    assert "member of" not in output

    monkeypatch.setenv("MLOPS_DATABASE_ROLES", '[{"role": "Robert; DROP", "database": "x"}]')
    result = runner.invoke(app, ["database-bootstrap"])
    assert result.exit_code == 1
    assert "invalid runtime settings: MLOPS_DATABASE_ROLES" in result.output
