"""The two halves fit: `serve` started with the env of fraud-dev's planned serving Deployment.

AWS is the local moto server (buckets and tables created from the plan), MLflow's backend the
local PostgreSQL; a model is trained and promoted there by the runtime with the planned training
CronJob's env, then the real server answers, inline and by entity key from the online store.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import httpx
import mlflow
import numpy as np
import pandas as pd
import pytest

from runtime import registry
from runtime.features import materialize
from runtime.prediction_log import read_prediction_log
from runtime.settings import ENV_PREFIX, Settings, library_env
from runtime.storage import write_parquet
from runtime.train import train
from tests.conftest import planned
from tests.runtime.test_serve_support import free_port, running_server

pytestmark = [pytest.mark.postgres, pytest.mark.moto, pytest.mark.slow]
STACK = "fraud-dev"


def _container_env(resource: Any, path: tuple[str, ...]) -> dict[str, str]:
    spec = resource.inputs
    for key in path:
        spec = spec[key]
    (container,) = spec["containers"]
    return {item["name"]: str(item["value"]) for item in container["env"]}


def _local(env: dict[str, str], moto: str, database: str, home: Path) -> dict[str, str]:
    """The planned env with the cluster's endpoints replaced by the local stand-ins."""
    local = dict(env)
    local["MLOPS_AWS_ENDPOINT_URL"] = moto
    local["MLOPS_TRACKING_URI"] = database
    local["MLOPS_HOME"] = str(home)
    if local.get("MLOPS_FEAST_REGISTRY_URI", "").startswith("postgresql"):
        local["MLOPS_FEAST_REGISTRY_URI"] = database
    return local


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    for name, value in library_env(settings).items():
        monkeypatch.setenv(name, value)
    return settings


def _create_planned_aws(plan: Any, settings: Settings, env: dict[str, str]) -> None:
    region = settings.aws_region
    s3 = boto3.client("s3", endpoint_url=settings.aws_endpoint_url, region_name=region)
    buckets = {
        value.removeprefix("s3://").split("/", 1)[0]
        for value in env.values()
        if value.startswith("s3://")
    }
    for bucket in sorted(buckets):
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    dynamodb = boto3.client("dynamodb", endpoint_url=settings.aws_endpoint_url, region_name=region)
    for table in plan.of_type("aws:dynamodb/table:Table"):
        inputs = table.inputs
        dynamodb.create_table(
            TableName=inputs["name"],
            KeySchema=[{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": a["name"], "AttributeType": a["type"]}
                for a in inputs["attributes"]
            ],
            BillingMode="PAY_PER_REQUEST",
        )


def _write_team_data(settings: Settings, now: datetime, cards: int = 60, rows: int = 600) -> None:
    """Daily feature snapshots for every declared view and labels that depend on them."""
    rng = np.random.default_rng(3)
    days = pd.date_range(end=now, periods=10, freq="D", tz="UTC")
    risk = rng.normal(size=cards)
    for view in settings.feature_store.feature_views:
        frame: dict[str, Any] = {
            "card_id": np.tile(np.arange(1, cards + 1), len(days)),
            view.source.timestamp_field: np.repeat(days, cards),
        }
        for index, (name, kind) in enumerate(view.features.items()):
            signal_ = np.tile(risk, len(days)) * (index + 1) + rng.normal(0, 0.3, cards * len(days))
            frame[name] = signal_.round().astype("int64") if kind == "int64" else signal_
        write_parquet(settings, pd.DataFrame(frame), f"{view.source.path}part-0.parquet")
    pipeline = settings.pipelines[0]
    card = rng.integers(0, cards, rows)
    stamps = pd.to_datetime(rng.integers(days[2].value, days[-1].value, rows), utc=True).floor("s")
    labels = pd.DataFrame(
        {
            "card_id": card + 1,
            pipeline.labels.timestamp_field: stamps,
            pipeline.labels.target: (risk[card] + rng.normal(0, 0.3, rows) > 0.5).astype("int64"),
            pipeline.protected_attribute or "group": rng.choice(["a", "b"], rows),
        }
    )
    write_parquet(settings, labels, f"{pipeline.labels.path}part-0.parquet")


def test_serve_runs_with_the_planned_deployment_env(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    own_postgres_database: str,
) -> None:
    postgres_database = own_postgres_database
    plan = planned(STACK)
    deployment = plan.one("kubernetes:apps/v1:Deployment", "endpoint-scorer-deployment")
    serve_env = _container_env(deployment, ("spec", "template", "spec"))
    [cronjob] = [
        r for r in plan.of_type("kubernetes:batch/v1:CronJob") if r.name.startswith("training-")
    ]
    train_env = _container_env(cronjob, ("spec", "jobTemplate", "spec", "template", "spec"))
    home = tmp_path / "home"

    # Train and promote as the planned training job would, on the same backends.
    trainer = _settings(monkeypatch, _local(train_env, moto_endpoint, postgres_database, home))
    _create_planned_aws(plan, trainer, {**train_env, **serve_env})
    now = datetime.now(UTC).replace(microsecond=0)
    _write_team_data(trainer, now - timedelta(hours=1))
    result = train(trainer, trainer.pipelines[0].name)
    registry.promote(trainer, result.model)
    materialize(trainer, end=now)

    port = free_port()
    env = _local(serve_env, moto_endpoint, postgres_database, home) | {"MLOPS_PORT": str(port)}
    server = _settings(monkeypatch, env)
    assert server.endpoint is not None and server.endpoint.model == result.model
    process_env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)} | env
    # The test's reference prediction: loaded by the test itself, which trusts what it trained
    # (MLflow asks for this opt-in before it unpickles; serving has its own trust rules).
    # Only around this load: the server below gets the environment without it.
    with monkeypatch.context() as trusted:
        trusted.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "true")
        champion = mlflow.sklearn.load_model(f"models:/{result.model}@champion")
    names = list(champion.feature_names_in_)
    row = dict.fromkeys(names, 1.0)

    with running_server(process_env, port, timeout=240) as process:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            ready = http.get("/ready").json()
            inline = http.post("/predict", json={"rows": [row]}).json()
            by_key = http.post("/predict", json={"rows": [{"card_id": 7}]})
            ping = http.get("/ping")
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)

    assert ready["champion"] == result.version
    assert ping.status_code == 200
    expected = champion.predict_proba(pd.DataFrame([row], columns=names))[0]
    assert inline["version"] == result.version
    assert inline["variant"] in ("champion", "challenger")
    assert np.allclose(inline["probabilities"][0], expected, atol=1e-4)
    assert by_key.status_code == 200, by_key.text
    assert len(by_key.json()["predictions"]) == 1
    log = read_prediction_log(server.prediction_log_uri or "", settings=server)
    assert len(log) == 2
    assert set(log["endpoint"]) == {"scorer"}
