"""The IaC <-> runtime contract: settings env, feature_store.yaml, metric catalogue and sinks."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
import yaml

from runtime import metrics
from runtime.demo_data import demo_settings
from runtime.feast_config import (
    PROVISIONED_DYNAMODB_STORE,
    feature_store_config,
    online_table_name,
    render_feature_store_yaml,
)
from runtime.publish import CloudWatchPublisher, UnknownMetricError, datum, publisher
from runtime.settings import Settings, env_var, library_env, render_env


def test_rendered_env_round_trips_into_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    declared = demo_settings("fraud", online_store="dynamodb", aws_endpoint_url="http://x:1")
    env = render_env(
        team=declared.team,
        feature_store=declared.feature_store,
        pipelines=declared.pipelines,
        online_store=declared.online_store,
        aws_endpoint_url=declared.aws_endpoint_url,
        port=9000,
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    settings = Settings()

    assert settings.feature_store == declared.feature_store
    assert settings.pipelines == declared.pipelines
    assert (settings.online_store, settings.port) == ("dynamodb", 9000)


def test_env_var_names_only_settings_fields() -> None:
    assert env_var("tracking_uri") == "MLOPS_TRACKING_URI"
    with pytest.raises(KeyError, match="no field 'tracking_url'"):
        env_var("tracking_url")


def test_library_env_points_every_library_at_the_emulator() -> None:
    env = library_env(Settings(aws_endpoint_url="http://127.0.0.1:5000", aws_region="eu-west-1"))

    assert env["MLFLOW_S3_ENDPOINT_URL"] == env["FEAST_S3_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert env["AWS_ENDPOINT_URL"] == "http://127.0.0.1:5000"
    assert env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert "AWS_ENDPOINT_URL" not in library_env(Settings())


def test_embedded_feature_store_yaml(tmp_path: Path) -> None:
    rendered = yaml.safe_load(render_feature_store_yaml(demo_settings("fraud", home=tmp_path)))

    assert rendered["project"] == "fraud"
    assert rendered["provider"] == "local"
    assert rendered["online_store"] == {"type": "sqlite", "path": "online_store.db"}
    assert rendered["registry"]["path"] == "registry.db"
    assert rendered["offline_store"] == {"type": "dask"}


def test_production_feature_store_yaml() -> None:
    settings = demo_settings(
        "fraud",
        online_store="dynamodb",
        aws_region="eu-west-1",
        feast_registry_uri="postgresql://feast@db:5432/feast",
    )

    config = feature_store_config(settings)

    assert config["online_store"] == {
        "type": PROVISIONED_DYNAMODB_STORE,
        "region": "eu-west-1",
        "table_name_template": "{project}.{table_name}",
    }
    assert config["registry"]["registry_type"] == "sql"
    assert config["registry"]["path"] == "postgresql+psycopg2://feast@db:5432/feast"
    assert online_table_name(settings, "card_txn_stats") == "fraud.card_txn_stats"


def test_feast_accepts_the_rendered_production_config(tmp_path: Path) -> None:
    from feast.repo_config import RepoConfig

    settings = demo_settings(
        "fraud", online_store="dynamodb", feast_registry_uri="s3://bucket/feast/registry.pb"
    )

    config = RepoConfig(repo_path=tmp_path, **feature_store_config(settings))

    assert type(config.online_store).__name__ == "ProvisionedDynamoDBOnlineStoreConfig"


@pytest.mark.parametrize(
    ("metric", "dimensions", "message"),
    [
        pytest.param("Nope", {"Pipeline": "p"}, "not in the catalogue", id="unknown-metric"),
        pytest.param(
            metrics.MODEL_QUALITY, {"Endpoint": "e"}, "takes dimensions", id="wrong-dimension"
        ),
        pytest.param(
            metrics.PREDICTIONS, {"Endpoint": "e"}, "takes dimensions", id="missing-dimension"
        ),
        pytest.param(metrics.MODEL_QUALITY, {"Pipeline": ""}, "empty value", id="empty-value"),
    ],
)
def test_only_catalogue_metrics_can_be_published(
    metric: metrics.Metric | str, dimensions: dict[str, str], message: str
) -> None:
    with pytest.raises(UnknownMetricError, match=message):
        datum(metric, 1.0, dimensions)


def test_file_sink_writes_json_lines(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, metrics_namespace="MLOps/fraud")

    with publisher(settings) as sink:
        sink.publish(metrics.MODEL_QUALITY, 0.9, {metrics.Dimension.pipeline: "fraud-model"})
        sink.publish("TrainingRunsSucceeded", 1, {"Pipeline": "fraud-model"})

    lines = (tmp_path / "metrics" / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["metric"], r["value"], r["namespace"]) for r in records] == [
        ("ModelQuality", 0.9, "MLOps/fraud"),
        ("TrainingRunsSucceeded", 1.0, "MLOps/fraud"),
    ]
    assert records[0]["dimensions"] == {"Pipeline": "fraud-model"}


def test_none_sink_writes_nothing(tmp_path: Path) -> None:
    with publisher(Settings(home=tmp_path, metrics_sink="none")) as sink:
        sink.publish(metrics.MODEL_QUALITY, 0.9, {"Pipeline": "p"})

    assert not (tmp_path / "metrics").exists()


class _RecordingCloudWatch:
    def __init__(self) -> None:
        self.calls: list[dict] = []

    def put_metric_data(self, **kwargs: object) -> None:
        self.calls.append(kwargs)


def test_cloudwatch_sink_batches() -> None:
    client = _RecordingCloudWatch()
    sink = CloudWatchPublisher(Settings(metrics_sink="cloudwatch"), client=client)

    for i in range(2500):
        sink.publish(metrics.FEATURE_DRIFT, 0.1, {"Endpoint": "scorer", "Feature": f"f{i}"})
    sink.flush()

    assert [len(call["MetricData"]) for call in client.calls] == [1000, 1000, 500]


@pytest.mark.moto
def test_cloudwatch_sink_reaches_the_emulator(moto_endpoint: str) -> None:
    settings = Settings(
        metrics_sink="cloudwatch", metrics_namespace="MLOps/fraud", aws_endpoint_url=moto_endpoint
    )

    with publisher(settings) as sink:
        sink.publish(metrics.FEATURE_FRESHNESS, 60, {"FeatureView": "card_txn_stats"})

    listed = boto3.client("cloudwatch", endpoint_url=moto_endpoint).list_metrics(
        Namespace="MLOps/fraud"
    )["Metrics"]
    assert {(m["MetricName"], m["Dimensions"][0]["Value"]) for m in listed} == {
        ("FeatureFreshness", "card_txn_stats")
    }
