"""Backends for runtime tests: embedded (tmp home) and production (PostgreSQL + moto S3/DynamoDB)."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from runtime.demo_data import demo_settings, write_demo_data
from runtime.feast_config import online_table_name
from runtime.settings import ENV_PREFIX, Settings, library_env, render_env

POSTGRES_URL = os.environ.get(
    "MLOPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REGION = "us-east-1"
DEMO_ROWS = 1500


@pytest.fixture(scope="session")
def aws_credentials() -> Iterator[None]:
    """Fake credentials so nothing can reach a real AWS account."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
        }.items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        yield


@pytest.fixture(scope="session")
def moto_endpoint(aws_credentials: None) -> Iterator[str]:
    """A moto server (S3, DynamoDB, CloudWatch, ...) on a free localhost port."""
    from moto.server import ThreadedMotoServer

    # One access-log line per request drowns the output of a failing test.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh, uniquely named PostgreSQL database for this session, dropped afterwards."""
    yield from _fresh_database()


@pytest.fixture
def own_postgres_database() -> Iterator[str]:
    """A database of the test's own: for a test that plays a stack with its real names (its
    experiments keep the stack bucket as their artifact root, which the session's other tests
    must not inherit)."""
    yield from _fresh_database()


def _fresh_database() -> Iterator[str]:
    import psycopg2
    from psycopg2 import sql

    try:
        admin = psycopg2.connect(POSTGRES_URL, connect_timeout=3)
    except psycopg2.OperationalError as error:
        if os.environ.get("CI", "").lower() == "true" or "MLOPS_TEST_POSTGRES_URL" in os.environ:
            pytest.fail(f"PostgreSQL at {POSTGRES_URL} is unreachable: {error}")
        pytest.skip(
            f"PostgreSQL at {POSTGRES_URL} is unreachable and MLOPS_TEST_POSTGRES_URL is unset"
        )
    admin.autocommit = True
    name = f"mlops_test_{uuid.uuid4().hex[:10]}"
    with admin.cursor() as cursor:
        cursor.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base, _, _ = POSTGRES_URL.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.cursor() as cursor:
            cursor.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        admin.close()


@pytest.fixture(scope="session")
def mlflow_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite database with its schema migrated once; tests copy it (migration is slow)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


def use_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    """Put ``settings`` into MLOPS_* env (as a pod would get it) plus the derived library env."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    fields = settings.model_dump(exclude_defaults=True)
    values: dict[str, Any] = {name: getattr(settings, name) for name in fields}
    for name, value in render_env(**values).items():
        monkeypatch.setenv(name, str(value))
    for name, value in library_env(settings).items():
        monkeypatch.setenv(name, value)


@dataclass
class Team:
    settings: Settings
    uris: dict[str, str]

    @property
    def pipeline(self) -> Any:
        return self.settings.pipelines[0]

    def with_pipeline(self, **changes: Any) -> Team:
        """The same team with its first pipeline changed (nested specs via model_copy)."""
        pipeline = self.pipeline.model_copy(update=changes)
        return Team(self.settings.model_copy(update={"pipelines": [pipeline]}), self.uris)


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_template: Path) -> Team:
    """The fraud demo team on embedded defaults: everything under a tmp home."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(mlflow_template, home / "mlflow.db")
    settings = demo_settings("fraud", home=home)
    use_env(monkeypatch, settings)
    return Team(settings, write_demo_data(settings, "fraud", rows=DEMO_ROWS))


@pytest.fixture
def production(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    postgres_database: str,
) -> Team:
    """The fraud demo team on production backends: PostgreSQL registry, S3, DynamoDB (moto).

    Names are unique per test (bucket, Feast project, model), as on a shared real backend.
    """
    suffix = uuid.uuid4().hex[:8]
    bucket = f"mlops-test-{suffix}"
    boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION).create_bucket(Bucket=bucket)
    base = demo_settings("fraud")
    settings = demo_settings(
        "fraud",
        home=tmp_path / "home",
        aws_region=REGION,
        aws_endpoint_url=moto_endpoint,
        tracking_uri=postgres_database,
        artifact_uri=f"s3://{bucket}/mlflow",
        offline_store_uri=f"s3://{bucket}/offline",
        online_store="dynamodb",
        feast_registry_uri=postgres_database,
        metrics_sink="cloudwatch",
        feature_store=base.feature_store.model_copy(update={"project": f"fraud_{suffix}"}),
        pipelines=[base.pipelines[0].model_copy(update={"model": f"fraud-{suffix}"})],
    )
    use_env(monkeypatch, settings)
    return Team(settings, write_demo_data(settings, "fraud", rows=DEMO_ROWS))


def create_online_tables(settings: Settings) -> list[str]:
    """What the stack does: one DynamoDB table per online feature view, Feast's key schema."""
    client = boto3.client(
        "dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=settings.aws_region
    )
    names = [
        online_table_name(settings, view.name)
        for view in settings.feature_store.feature_views
        if view.online
    ]
    for name in names:
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "entity_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "entity_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            Tags=[{"Key": "team", "Value": settings.team}],
        )
    return names
