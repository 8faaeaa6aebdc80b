"""A pod's login to the registry database: URI without password, sidecar, password file."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pulumi
import pytest
from moto import mock_aws

from components.database import CREDENTIALS_SCRIPT, DatabaseLogin, database_login
from components.iam import login_statements
from components.team import DatabaseAccess, postgres_uri


def test_postgres_uri_never_carries_a_password() -> None:
    uri = postgres_uri("db.example", 5432, "mlops", "mlops")
    assert uri == "postgresql://mlops@db.example:5432/mlops?sslmode=require"


def test_without_database_access_a_pod_gets_no_login_pieces() -> None:
    login = database_login(None, "runtime:1")
    assert login == DatabaseLogin()
    assert login.init_containers is None, "no initContainers field at all"
    assert login_statements(None, None) == []


def test_with_database_access_a_pod_gets_sidecar_password_file_and_memory_volume() -> None:
    access = DatabaseAccess(
        host=pulumi.Output.from_input("db.example"),
        port=pulumi.Output.from_input(5432),
        secret_arn=pulumi.Output.from_input("arn:aws:secretsmanager:eu-west-1:1:secret:rds!x"),
        secret_kms_key_arn=None,
        database="mlops",
        username="mlops",
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
    (statement,) = login_statements("arn:aws:secretsmanager:eu-west-1:1:secret:rds!x", None)
    assert statement["Action"] == ["secretsmanager:GetSecretValue"]


def test_credentials_script_writes_an_escaped_pgpass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        arn = boto3.client("secretsmanager").create_secret(
            Name="rds!db-test",
            SecretString=json.dumps({"username": "mlops", "password": r"p:a\ss"}),
        )["ARN"]
        pgpass = tmp_path / "pgpass"
        monkeypatch.setenv("PGPASSFILE", str(pgpass))
        monkeypatch.setenv("DB_SECRET_ARN", arn)
        monkeypatch.setenv("DB_HOST", "db.example")
        monkeypatch.setenv("DB_PORT", "5432")
        monkeypatch.setenv("REFRESH_SECONDS", "0")
        exec(compile(CREDENTIALS_SCRIPT, "credentials", "exec"), {})
    assert pgpass.read_text() == "db.example:5432:*:mlops:p\\:a\\\\ss\n"
    assert pgpass.stat().st_mode & 0o777 == 0o600
