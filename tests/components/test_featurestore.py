"""The FeatureStore component: planning functions, every example stack's plan, and real Feast on it."""

from __future__ import annotations

import json
import os
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml

from components.config import load_stack_file
from components.config.featurestore import FeatureStoreConfig, Lifecycle
from components.featurestore import (
    FeatureStoreArns,
    feature_store_spec,
    job_deadline,
    reader_document,
    writer_document,
)
from components.storage import lifecycle_rules
from runtime.feast_config import online_table_name
from runtime.settings import ENV_PREFIX, Settings, library_env, render_env
from runtime.spec import FeatureStoreSpec
from runtime.storage import write_parquet
from tests.components._data_plane_helpers import (
    bucket_child,
    container,
    data_key,
    env_of,
    kms_key_arns,
    own_arns,
    role_policy,
    scoping_problems,
    stack_config,
)
from tests.components.test_training import assert_registry_login
from tests.conftest import planned
from tooling.plan import Plan, plan_stack, stack_file

TABLE = "aws:dynamodb/table:Table"
BUCKET = "aws:s3/bucket:Bucket"
ARNS = FeatureStoreArns(
    bucket_arn="arn:aws:s3:::fraud-dev-features-abc",
    table_arns=["arn:aws:dynamodb:eu-west-1:123456789012:table/fraud.card_profile"],
    metrics_namespace="MLOps/fraud",
)


# -- planning functions, no mocks -------------------------------------------------------------


def settings_from_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    """The runtime's Settings as a process with exactly ``env`` would read them."""
    for name in list(os.environ):
        if name.startswith(ENV_PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith(ENV_PREFIX):
            monkeypatch.setenv(name, value)
    return Settings()


def test_feature_store_spec_keeps_only_what_the_runtime_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = FeatureStoreConfig.model_validate(
        {
            "entities": [{"name": "card", "joinKey": "card_id"}],
            "featureViews": [
                {
                    "name": "card_profile",
                    "entities": ["card"],
                    "source": {"path": "card_profile/"},
                    "features": {"credit_limit": "float64"},
                }
            ],
            "pointInTimeRecovery": True,
            "materialization": {"schedule": "*/5 * * * *"},
        }
    )
    spec = feature_store_spec(config, "fraud")
    assert type(spec) is FeatureStoreSpec
    assert spec.project == "fraud"
    # Round trip through the contract: the runtime's Settings forbid unknown keys.
    assert settings_from_env(monkeypatch, render_env(feature_store=spec)).feature_store == spec


@pytest.mark.parametrize(
    ("arns", "extra_sids"),
    [
        pytest.param(ARNS, set(), id="s3-registry"),
        pytest.param(
            FeatureStoreArns(
                bucket_arn=ARNS.bucket_arn,
                table_arns=ARNS.table_arns,
                metrics_namespace="MLOps/fraud",
                kms_key_arn="arn:aws:kms:eu-west-1:123456789012:key/k",
                registry_connect_arn="arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-X/feast",
            ),
            {"DataKey", "DatabaseLogin"},
            id="sql-registry-with-key",
        ),
    ],
)
def test_reader_and_writer_documents_are_scoped(
    arns: FeatureStoreArns, extra_sids: set[str]
) -> None:
    own = {
        ARNS.bucket_arn,
        *ARNS.table_arns,
        arns.kms_key_arn or "",
        arns.registry_connect_arn or "",
    }
    for document in (reader_document(arns), writer_document(arns)):
        assert scoping_problems(document, own) == []
        assert extra_sids <= {s["Sid"] for s in document["Statement"]}
    reader_actions = {a for s in reader_document(arns)["Statement"] for a in s["Action"]}
    assert not {a for a in reader_actions if a.startswith(("dynamodb:Put", "dynamodb:BatchWrite"))}
    assert "dynamodb:CreateTable" not in {
        a for s in writer_document(arns)["Statement"] for a in s["Action"]
    }
    (metrics,) = [s for s in writer_document(arns)["Statement"] if s["Resource"] == ["*"]]
    assert metrics["Action"] == ["cloudwatch:PutMetricData"]
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": "MLOps/fraud"}}


def test_sql_registry_drops_the_s3_registry_statements() -> None:
    sql = FeatureStoreArns(
        bucket_arn=ARNS.bucket_arn,
        table_arns=ARNS.table_arns,
        metrics_namespace="MLOps/fraud",
        registry_connect_arn="arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-X/feast",
    )
    assert "RegistryWrite" not in {s["Sid"] for s in writer_document(sql)["Statement"]}
    assert "RegistryRead" not in {s["Sid"] for s in reader_document(sql)["Statement"]}


@pytest.mark.parametrize(
    ("schedule", "deadline"),
    [
        pytest.param("0 * * * *", timedelta(hours=1), id="hourly"),
        pytest.param("*/5 * * * *", timedelta(minutes=10), id="at-least-ten-minutes"),
        pytest.param("15 */2 * * *", timedelta(hours=2), id="two-hourly"),
    ],
)
def test_a_materialization_run_ends_before_the_next_is_due(
    schedule: str, deadline: timedelta
) -> None:
    assert job_deadline(schedule) == deadline


def test_lifecycle_rules_follow_the_config() -> None:
    rules = lifecycle_rules(
        Lifecycle(
            noncurrent_version_expiration_days=14,
            infrequent_access_after_days=60,
            expiration_days=400,
        )
    )
    assert [r.id for r in rules] == ["noncurrent-versions", "infrequent-access", "expiration"]
    assert [r.id for r in lifecycle_rules(Lifecycle())] == ["noncurrent-versions"]


# -- every example stack under the mock engine ---------------------------------------------------


def test_offline_bucket_is_hardened(example_stack: str) -> None:
    plan, config = planned(example_stack), stack_config(example_stack)
    bucket = plan.one(BUCKET, "features-offline-bucket")
    name = bucket.outputs["bucket"]
    assert name.startswith(f"{config.team}-{config.environment}-features-")
    assert bucket.protect is (config.environment == "prod")
    assert bucket.inputs["forceDestroy"] is (config.environment != "prod")

    versioning = bucket_child(plan, "bucketVersioning", name)
    assert versioning.inputs["versioningConfiguration"]["status"] == "Enabled"
    (rule,) = bucket_child(plan, "bucketServerSideEncryptionConfiguration", name).inputs["rules"]
    by_default = rule["applyServerSideEncryptionByDefault"]
    if config.feature_store.customer_managed_key:
        assert by_default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": kms_key_arns(plan)[0]}
    else:
        assert by_default == {"sseAlgorithm": "AES256"}
    block = bucket_child(plan, "bucketPublicAccessBlock", name).inputs
    assert all(
        block[k] is True
        for k in (
            "blockPublicAcls",
            "blockPublicPolicy",
            "ignorePublicAcls",
            "restrictPublicBuckets",
        )
    )
    ownership = bucket_child(plan, "bucketOwnershipControls", name).inputs["rule"]
    assert ownership == {"objectOwnership": "BucketOwnerEnforced"}
    policy = json.loads(bucket_child(plan, "bucketPolicy", name).inputs["policy"])
    (deny,) = policy["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [bucket.outputs["arn"], f"{bucket.outputs['arn']}/*"]
    rules = {
        r["id"]: r for r in bucket_child(plan, "bucketLifecycleConfiguration", name).inputs["rules"]
    }
    lifecycle = config.feature_store.offline_lifecycle
    assert rules["noncurrent-versions"]["noncurrentVersionExpiration"] == {
        "noncurrentDays": lifecycle.noncurrent_version_expiration_days
    }
    assert ("infrequent-access" in rules) is (lifecycle.infrequent_access_after_days is not None)


def test_one_online_table_per_online_view_named_as_feast_names_it(example_stack: str) -> None:
    plan, config = planned(example_stack), stack_config(example_stack)
    store = config.feature_store
    tables = {t.inputs["name"]: t for t in plan.of_type(TABLE)}
    # The runtime names its tables with the same function Feast's template fills.
    settings = Settings(
        team=config.team, feature_store=feature_store_spec(store, config.feast_project)
    )
    expected = {online_table_name(settings, v.name) for v in store.feature_views if v.online}
    assert set(tables) == expected
    assert expected == {f"{config.feast_project}.{v.name}" for v in store.feature_views if v.online}
    assert plan.outputs["onlineTables"] == {
        v.name: f"{config.feast_project}.{v.name}" for v in store.feature_views if v.online
    }
    prod = config.environment == "prod"
    keys = kms_key_arns(plan)
    for table in tables.values():
        inputs = table.inputs
        assert inputs["hashKey"] == "entity_id"
        assert "rangeKey" not in inputs
        assert inputs["attributes"] == [{"name": "entity_id", "type": "S"}]
        assert inputs["billingMode"] == (
            "PROVISIONED" if store.online_capacity.billing == "provisioned" else "PAY_PER_REQUEST"
        )
        assert inputs["pointInTimeRecovery"] == {"enabled": store.point_in_time_recovery}
        assert inputs["serverSideEncryption"] == (
            {"enabled": True, "kmsKeyArn": keys[0]}
            if store.customer_managed_key
            else {"enabled": True}
        )
        assert inputs["deletionProtectionEnabled"] is prod
        assert table.protect is prod
        # Feast writes no expiry attribute: a DynamoDB TTL would never fire.
        assert "ttl" not in inputs


def test_prod_is_safe_and_dev_is_cheap(example_stack: str) -> None:
    plan, config = planned(example_stack), stack_config(example_stack)
    key = data_key(plan)
    if config.environment == "prod":
        assert config.feature_store.point_in_time_recovery
        assert key is not None
        assert key.inputs["enableKeyRotation"] is True
        assert key.protect
    else:
        assert key is None
        assert all(not t.protect for t in plan.of_type(TABLE))


def test_iam_documents_parse_and_are_scoped_to_this_stack(example_stack: str) -> None:
    plan, config = planned(example_stack), stack_config(example_stack)
    own = own_arns(plan)
    writer = role_policy(plan, "features-writer-policy")
    reader = json.loads(plan.outputs["featureReaderPolicy"])
    for document in (writer, reader):
        assert scoping_problems(document, own) == []
    table_arns = {t.outputs["arn"] for t in plan.of_type(TABLE)}
    (online_write,) = [s for s in writer["Statement"] if s["Sid"] == "OnlineWrite"]
    assert set(online_write["Resource"]) == table_arns
    (online_read,) = [s for s in reader["Statement"] if s["Sid"] == "OnlineRead"]
    assert set(online_read["Resource"]) == table_arns
    sql = config.feature_store.registry.type == "sql"
    assert ("DatabaseLogin" in {s["Sid"] for s in writer["Statement"]}) is sql


def test_feature_store_yaml_comes_from_the_contract(example_stack: str) -> None:
    plan, config = planned(example_stack), stack_config(example_stack)
    config_map = plan.one("kubernetes:core/v1:ConfigMap", "features-config").inputs
    rendered = yaml.safe_load(config_map["data"]["feature_store.yaml"])
    assert rendered["project"] == config.feast_project
    assert rendered["provider"] == "aws"
    assert rendered["online_store"]["type"] == "runtime.online_store.ProvisionedDynamoDBOnlineStore"
    assert rendered["online_store"]["region"] == load_stack_file(stack_file(example_stack)).region
    assert "endpoint_url" not in rendered["online_store"]
    offline = plan.one(BUCKET, "features-offline-bucket").outputs["bucket"]
    if config.feature_store.registry.type == "sql":
        assert rendered["registry"]["registry_type"] == "sql"
        # The Feast role's own database, never the master user's.
        assert rendered["registry"]["path"].startswith("postgresql+psycopg2://feast@")
        assert rendered["registry"]["path"].split("?")[0].endswith("/feast_registry")
        assert ":" not in rendered["registry"]["path"].split("@")[0].removeprefix(
            "postgresql+psycopg2://"
        )
    else:
        assert rendered["registry"]["path"] == f"s3://{offline}/feast/registry.pb"


def test_materialization_cronjob(example_stack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    plan, config = planned(example_stack), stack_config(example_stack)
    cronjob = plan.one("kubernetes:batch/v1:CronJob", "features-materialize").inputs
    spec = cronjob["spec"]
    assert cronjob["metadata"]["namespace"] == f"ml-{config.team}"
    assert spec["schedule"] == config.feature_store.materialization.schedule
    assert spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["securityContext"]["runAsNonRoot"] is True
    # The writer identity: the service account whose role carries the writer policy.
    sa = plan.one("kubernetes:core/v1:ServiceAccount", "features-writer-sa")
    assert pod["serviceAccountName"] == sa.inputs["metadata"]["name"]
    role = plan.one("aws:iam/role:Role", "features-writer-role")
    assert sa.inputs["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": role.outputs["arn"]
    }
    main = container(pod, "materialize")
    assert main["args"] == ["materialize"]
    assert main["securityContext"]["readOnlyRootFilesystem"] is True
    assert (
        main["resources"]["limits"]["memory"]
        == config.feature_store.materialization.resources.memory
    )
    env = env_of(main)
    settings = settings_from_env(monkeypatch, env)
    assert settings.online_store == "dynamodb"
    assert settings.metrics_sink == "cloudwatch"
    assert settings.feature_store.project == config.feast_project
    assert settings.offline_store_uri == f"s3://{plan.outputs['offlineBucket']}/offline"
    assert settings.feast_registry_uri == plan.outputs["featureRegistry"]
    # Above one share an Indexed Job: each index materializes its views, retried on its own.
    run, job = config.feature_store.materialization, spec["jobTemplate"]["spec"]
    assert settings.materialize_shards == run.completions
    if run.completions > 1:
        assert job["completionMode"] == "Indexed"
        assert job["completions"] == run.completions
        assert job["parallelism"] == (run.parallelism or run.completions)
        assert job["backoffLimitPerIndex"] == 2 and "backoffLimit" not in job
    else:
        assert "completionMode" not in job and job["backoffLimit"] == 2
    sql = config.feature_store.registry.type == "sql"
    writer = role_policy(plan, "features-writer-policy")
    assert_registry_login(plan, pod, "materialize", writer, sql=sql)
    mounts = {m["name"]: m["mountPath"] for m in main["volumeMounts"]}
    assert mounts["feast-config"] == "/etc/feast"


def test_provisioned_capacity_scales_between_floor_and_ceiling(tmp_path: Path) -> None:
    document = yaml.safe_load(Path("stacks/Pulumi.fraud-dev.yaml").read_text())
    document["config"]["mlops:featureStore"]["onlineCapacity"] = {
        "billing": "provisioned",
        "readCapacity": 2,
        "maxReadCapacity": 50,
        "writeCapacity": 3,
        "maxWriteCapacity": 30,
        "targetUtilization": 60,
    }
    file = tmp_path / "Pulumi.fraud-dev.yaml"
    file.write_text(yaml.safe_dump(document))
    plan: Plan = plan_stack(file)
    targets = plan.of_type("aws:appautoscaling/target:Target")
    policies = plan.of_type("aws:appautoscaling/policy:Policy")
    for table in plan.of_type(TABLE):
        name = table.inputs["name"]
        assert table.inputs["billingMode"] == "PROVISIONED"
        assert (table.inputs["readCapacity"], table.inputs["writeCapacity"]) == (2, 3)
        mine = {
            t.inputs["scalableDimension"]: t.inputs
            for t in targets
            if t.inputs["resourceId"] == f"table/{name}"
        }
        assert (
            mine["dynamodb:table:ReadCapacityUnits"]["minCapacity"],
            mine["dynamodb:table:ReadCapacityUnits"]["maxCapacity"],
        ) == (2, 50)
        assert (
            mine["dynamodb:table:WriteCapacityUnits"]["minCapacity"],
            mine["dynamodb:table:WriteCapacityUnits"]["maxCapacity"],
        ) == (3, 30)
        tracking = [p.inputs for p in policies if p.inputs["resourceId"] == f"table/{name}"]
        assert {
            p["targetTrackingScalingPolicyConfiguration"]["predefinedMetricSpecification"][
                "predefinedMetricType"
            ]
            for p in tracking
        } == {
            "DynamoDBReadCapacityUtilization",
            "DynamoDBWriteCapacityUtilization",
        }
        assert all(
            p["targetTrackingScalingPolicyConfiguration"]["targetValue"] == 60 for p in tracking
        )


# -- real Feast on the tables and bucket the plan declares (moto) --------------------------------

_SAMPLES = {
    "int64": lambda i: i,
    "int32": lambda i: i,
    "float64": lambda i: i + 0.5,
    "float32": lambda i: i + 0.25,
    "string": lambda i: f"v{i}",
    "bool": lambda i: i % 2 == 0,
}


def _write_sources(settings: Settings, now: datetime, rows: int = 5) -> None:
    """A few rows per feature view, shaped as the view declares (join keys, timestamp, features)."""
    keys = {e.name: e for e in settings.feature_store.entities}
    for view in settings.feature_store.feature_views:
        frame: dict[str, list[object]] = {}
        for entity in view.entities:
            key = keys[entity]
            frame[key.join_key] = [i if key.value_type == "int64" else f"k{i}" for i in range(rows)]
        frame[view.source.timestamp_field] = [now - timedelta(hours=1)] * rows
        for feature, kind in view.features.items():
            frame[feature] = [_SAMPLES[kind](i) for i in range(rows)]
        write_parquet(settings, pd.DataFrame(frame), f"{view.source.path}part-0.parquet")


@pytest.mark.moto
@pytest.mark.slow
@pytest.mark.parametrize("stack", ["fraud-dev", "forecasting-prod"])
def test_real_feast_applies_materializes_and_reads_on_the_planned_tables(
    stack: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from feast import FeatureStore as Feast
    from moto.server import ThreadedMotoServer

    from runtime.features import feature_definitions

    plan = planned(stack)
    region = load_stack_file(stack_file(stack)).region
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": region,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        # What `pulumi up` would have created, from the plan's inputs (not by Feast).
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, region_name=region)
        for table in plan.of_type(TABLE):
            inputs = table.inputs
            capacity = (
                {
                    "ProvisionedThroughput": {
                        "ReadCapacityUnits": int(inputs["readCapacity"]),
                        "WriteCapacityUnits": int(inputs["writeCapacity"]),
                    }
                }
                if inputs["billingMode"] == "PROVISIONED"
                else {}
            )
            dynamodb.create_table(
                TableName=inputs["name"],
                KeySchema=[{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}],
                AttributeDefinitions=[
                    {"AttributeName": a["name"], "AttributeType": a["type"]}
                    for a in inputs["attributes"]
                ],
                BillingMode=inputs["billingMode"],
                **capacity,
            )
        bucket = plan.one(BUCKET, "features-offline-bucket").outputs["bucket"]
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name=region)
        location = {} if region == "us-east-1" else {"LocationConstraint": region}
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration=location)

        # The materialization pod's env, with the emulator endpoint and a local home.
        cronjob = plan.one("kubernetes:batch/v1:CronJob", "features-materialize").inputs
        pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        env = env_of(container(pod, "materialize"))
        env |= {"MLOPS_AWS_ENDPOINT_URL": endpoint, "MLOPS_HOME": str(tmp_path / "home")}
        settings = settings_from_env(monkeypatch, env)
        for name, value in library_env(settings).items():
            monkeypatch.setenv(name, value)
        now = datetime.now(UTC).replace(microsecond=0)
        _write_sources(settings, now)

        # The ConfigMap's feature_store.yaml, endpoint pointed at moto.
        config_map = plan.one("kubernetes:core/v1:ConfigMap", "features-config").inputs
        rendered = yaml.safe_load(config_map["data"]["feature_store.yaml"])
        rendered["online_store"]["endpoint_url"] = endpoint
        repo = tmp_path / "repo"
        repo.mkdir()
        (repo / "feature_store.yaml").write_text(yaml.safe_dump(rendered))
        store = Feast(repo_path=str(repo))
        store.apply(feature_definitions(settings))
        store.materialize(start_date=now - timedelta(days=2), end_date=now)

        keys = {e.name: e.join_key for e in settings.feature_store.entities}
        for view in (v for v in settings.feature_store.feature_views if v.online):
            join_keys = [keys[e] for e in view.entities]
            types = {e.join_key: e.value_type for e in settings.feature_store.entities}
            entity_rows = [{k: 3 if types[k] == "int64" else "k3" for k in join_keys}]
            refs = [f"{view.name}:{feature}" for feature in view.features]
            online = store.get_online_features(features=refs, entity_rows=entity_rows).to_dict()
            for feature, kind in view.features.items():
                assert online[feature] == [_SAMPLES[kind](3)], (view.name, feature)
            table = online_table_name(settings, view.name)
            assert dynamodb.scan(TableName=table)["Count"] == 5
        # Feast used the registry location the stack declared.
        registry_key = rendered["registry"]["path"].removeprefix(f"s3://{bucket}/")
        assert s3.head_object(Bucket=bucket, Key=registry_key)["ContentLength"] > 0
    finally:
        # moto keeps one state per process: the stack's buckets would outlive this server.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
        server.stop()
