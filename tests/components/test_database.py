"""A pod's login to the registry database: URI without password, sidecar, IAM token file."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pulumi
import pytest

from components.database import (
    CREDENTIALS_SCRIPT,
    DATABASE_CLIENT_LABEL,
    DatabaseLogin,
    database_login,
)
from components.iam import db_user_arn, login_statements
from components.team import DatabaseAccess, postgres_uri

CONNECT_ARN = "arn:aws:rds-db:eu-west-1:1:dbuser:db-X/feast"


def test_postgres_uri_never_carries_a_password() -> None:
    uri = postgres_uri("db.example", 5432, "mlops", "mlops")
    assert uri == "postgresql://mlops@db.example:5432/mlops?sslmode=require"


def test_without_database_access_a_pod_gets_no_login_pieces() -> None:
    login = database_login(None, "runtime:1")
    assert login == DatabaseLogin()
    assert login.init_containers is None, "no initContainers field at all"
    assert login_statements(None) == []
    assert login.labels == {}, "not a database client"


def test_with_database_access_a_pod_gets_sidecar_password_file_and_memory_volume() -> None:
    access = DatabaseAccess(
        host=pulumi.Output.from_input("db.example"),
        port=pulumi.Output.from_input(5432),
        database="feast_registry",
        username="feast",
        connect_arn=pulumi.Output.from_input(CONNECT_ARN),
        region="eu-west-1",
    )
    login = database_login(access, "runtime:1")
    assert [(e.name, e.value) for e in login.env] == [("PGPASSFILE", "/var/run/mlops-db/pgpass")]
    (mount,) = login.mounts
    assert (mount.name, mount.mount_path, mount.read_only) == (
        "db-credentials",
        "/var/run/mlops-db",
        True,
    )
    (volume,) = login.volumes
    assert volume.name == "db-credentials" and volume.empty_dir.medium == "Memory"
    (sidecar,) = login.init_containers or []
    assert sidecar.name == "db-credentials" and sidecar.image == "runtime:1"
    assert sidecar.restart_policy == "Always"
    assert login.labels == DATABASE_CLIENT_LABEL
    (statement,) = login_statements(CONNECT_ARN)
    assert (statement["Action"], statement["Resource"]) == (["rds-db:connect"], [CONNECT_ARN])


def test_db_user_arn_names_the_instance_resource_id_and_role() -> None:
    assert db_user_arn(
        "arn:aws:rds:eu-west-1:123456789012:db:fraud-dev-registry", "db-ABC", "mlflow"
    ) == ("arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-ABC/mlflow")
    assert db_user_arn("arn:aws-cn:rds:cn-north-1:1:db:x", "db-Z", "feast").startswith(
        "arn:aws-cn:rds-db:cn-north-1:1:dbuser:db-Z/"
    )


def test_credentials_script_writes_a_fresh_iam_token_as_pgpass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No API call (the token is a SigV4 presign): the pod's credentials, host, port, role."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    }.items():
        monkeypatch.setenv(name, value)
    pgpass = tmp_path / "pgpass"
    monkeypatch.setenv("PGPASSFILE", str(pgpass))
    monkeypatch.setenv("DB_HOST", "db.example")
    monkeypatch.setenv("DB_PORT", "5432")
    monkeypatch.setenv("DB_USER", "feast")
    monkeypatch.setenv("DB_REGION", "eu-west-1")
    monkeypatch.setenv("REFRESH_SECONDS", "0")
    exec(compile(CREDENTIALS_SCRIPT, "credentials", "exec"), {})
    line = pgpass.read_text()
    assert line.endswith("\n") and line.count("\n") == 1
    assert line.startswith("db.example:5432:*:feast:db.example\\:5432/?")
    token = line.removeprefix("db.example:5432:*:feast:").rstrip("\n").replace("\\:", ":")
    query = parse_qs(urlsplit(f"https://{token}").query)
    assert query["Action"] == ["connect"] and query["DBUser"] == ["feast"]
    assert query["X-Amz-Credential"][0].split("/")[2:4] == ["eu-west-1", "rds-db"]
    assert int(query["X-Amz-Expires"][0]) == 900
    assert pgpass.stat().st_mode & 0o777 == 0o600
