"""Production backends: MLflow on PostgreSQL + S3 artifacts, Feast on S3 + DynamoDB (moto)."""

from __future__ import annotations

import boto3
import mlflow
import pytest

from runtime import features, registry
from runtime.errors import ConfigurationError
from runtime.feast_config import online_table_name
from runtime.serving.model import RegistryModelSource
from runtime.train import train
from tests.runtime.conftest import Team, create_online_tables

pytestmark = [pytest.mark.postgres, pytest.mark.moto]


def _dynamodb(team: Team) -> object:
    return boto3.client(
        "dynamodb", endpoint_url=team.settings.aws_endpoint_url, region_name="us-east-1"
    )


def test_materialize_uses_the_stack_tables_and_serves_online(production: Team) -> None:
    settings = production.settings
    [table] = create_online_tables(settings)
    dynamodb = _dynamodb(production)
    before = set(dynamodb.list_tables()["TableNames"])
    arn = dynamodb.describe_table(TableName=table)["Table"]["TableArn"]

    [fresh] = features.materialize(settings)

    assert table == f"{settings.feature_store.project}.card_txn_stats"
    assert set(dynamodb.list_tables()["TableNames"]) == before
    # The stack's tags survive apply (Feast's own store would reconcile them away).
    assert dynamodb.list_tags_of_resource(ResourceArn=arn)["Tags"] == [
        {"Key": "team", "Value": "fraud"}
    ]
    assert dynamodb.scan(TableName=table, Select="COUNT")["Count"] > 0
    online = (
        features.open_store(settings)
        .get_online_features(
            features=["card_txn_stats:avg_amount_7d"], entity_rows=[{"card_id": 1}, {"card_id": 2}]
        )
        .to_dict()
    )
    assert all(value is not None for value in online["avg_amount_7d"])
    assert fresh.age_seconds is not None
    listed = boto3.client(
        "cloudwatch", endpoint_url=settings.aws_endpoint_url, region_name="us-east-1"
    ).list_metrics(Namespace=settings.metrics_namespace, MetricName="FeatureFreshness")
    assert listed["Metrics"]


def test_apply_without_the_stack_tables_names_them(production: Team) -> None:
    table = online_table_name(production.settings, "card_txn_stats")

    with pytest.raises(
        ConfigurationError, match=rf"DynamoDB online table\(s\) {table} do not exist"
    ):
        features.apply(production.settings)

    assert table not in _dynamodb(production).list_tables()["TableNames"]


def test_train_promote_rollback_on_postgresql_and_s3(production: Team) -> None:
    settings, model = production.settings, production.pipeline.model_name
    create_online_tables(settings)

    first = train(settings, "fraud-model")
    registry.promote(settings, model)
    second = train(settings, "fraud-model")

    assert (first.version, second.version) == ("1", "2")
    # Loadable by serving under its trust rules (skops, scikit-learn types, the artifact root).
    source = RegistryModelSource(settings, model, fast_path=False)
    loaded = source.load(str(source.version_of("challenger")))
    row = dict.fromkeys(["txn_count_7d", "avg_amount_7d", "max_amount_7d", "share_foreign_7d"], 1.0)
    assert len(loaded.predict([row]).predictions) == 1
    # The experiment may predate this test (one registry database per session): its artifact
    # root, not this test's bucket, is where the run's artifacts and logged model are.
    run = mlflow.get_run(second.run_id)
    artifacts = mlflow.get_experiment(run.info.experiment_id).artifact_location
    assert artifacts.startswith("s3://")
    bucket, _, prefix = artifacts.removeprefix("s3://").partition("/")
    keys = [
        o["Key"]
        for o in boto3.client("s3", endpoint_url=settings.aws_endpoint_url).list_objects_v2(
            Bucket=bucket, Prefix=prefix
        )["Contents"]
    ]
    assert any(k.endswith("MLmodel") for k in keys)
    assert any(k.endswith("training_reference.parquet") for k in keys)
    assert registry.promote(settings, model).champion == "2"
    assert registry.rollback(settings, model).champion == "1"
    assert registry.tracking_uri(settings).startswith("postgresql+psycopg2://")
