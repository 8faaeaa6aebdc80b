"""`mlops:featurestore:FeatureStore`: the team's Feast infrastructure.

The stack owns every table and bucket; Feast only reads and writes them (its online store type
`runtime.online_store.ProvisionedDynamoDBOnlineStore` never creates or deletes a table), so the
runtime roles carry no CreateTable/DeleteTable permission.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import naming, workload
from components.config.featurestore import FeatureStoreConfig, Provisioned, SqlRegistry
from components.database import database_login, login_grant
from components.iam import (
    Statement,
    WorkloadIdentity,
    login_statements,
    policy_document,
    statement,
)
from components.storage import SecureBucket
from components.team import ClusterInfo, DatabaseAccess, Team
from runtime.feast_config import render_feature_store_yaml
from runtime.metrics import namespace as metrics_namespace
from runtime.settings import Settings
from runtime.spec import FeatureStoreSpec, FeatureView

HASH_KEY = "entity_id"
"""Partition key of every Feast DynamoDB table (a string: the serialized entity key)."""
OFFLINE_PREFIX = "offline"
REGISTRY_KEY = "feast/registry.pb"
CONFIG_DIR = "/etc/feast"
CONFIG_FILE = "feature_store.yaml"
SERVICE_ACCOUNT = "feast-materializer"
MIN_JOB_DEADLINE = timedelta(minutes=10)
CAPACITY_DIMENSIONS = {
    "read": ("dynamodb:table:ReadCapacityUnits", "DynamoDBReadCapacityUtilization"),
    "write": ("dynamodb:table:WriteCapacityUnits", "DynamoDBWriteCapacityUtilization"),
}


# -- plain planning functions (unit-tested without mocks) ----------------------------------------


def feature_store_spec(config: FeatureStoreConfig, project: str) -> FeatureStoreSpec:
    """The runtime's part of the config (no infrastructure fields), with the project made explicit."""
    fields = config.model_dump(include=set(FeatureStoreSpec.model_fields))
    return FeatureStoreSpec.model_validate({**fields, "project": project})


def online_views(config: FeatureStoreConfig) -> list[FeatureView]:
    return [view for view in config.feature_views if view.online]


def offline_store_uri(bucket: str) -> str:
    return f"s3://{bucket}/{OFFLINE_PREFIX}"


def s3_registry_uri(bucket: str) -> str:
    return f"s3://{bucket}/{REGISTRY_KEY}"


def job_deadline(schedule: str) -> timedelta:
    """A materialization run may take until the next one is due (at least ten minutes)."""
    return max(naming.schedule_period(schedule), MIN_JOB_DEADLINE)


@dataclass(frozen=True)
class FeatureStoreArns:
    """Resolved ARNs the IAM documents are scoped to."""

    bucket_arn: str
    table_arns: Sequence[str]
    metrics_namespace: str
    kms_key_arn: str | None = None
    registry_connect_arn: str | None = None
    """The registry database login, when the Feast registry is SQL."""


def _common_statements(arns: FeatureStoreArns) -> list[Statement]:
    statements: list[Statement] = []
    if arns.kms_key_arn:
        statements.append(
            statement("DataKey", ["kms:Decrypt", "kms:GenerateDataKey"], [arns.kms_key_arn])
        )
    statements += login_statements(arns.registry_connect_arn)
    return statements


def reader_document(arns: FeatureStoreArns) -> dict[str, Any]:
    """Serving: read online values and the registry; nothing else."""
    statements: list[Statement] = []
    if arns.table_arns:
        statements.append(
            statement(
                "OnlineRead",
                ["dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:DescribeTable"],
                list(arns.table_arns),
            )
        )
    if not arns.registry_connect_arn:
        statements.append(
            statement("RegistryRead", ["s3:GetObject"], [f"{arns.bucket_arn}/{REGISTRY_KEY}"])
        )
    return policy_document(*statements, *_common_statements(arns))


def writer_document(arns: FeatureStoreArns) -> dict[str, Any]:
    """Materialization: read the offline store, write online tables and the registry, publish
    freshness metrics (PutMetricData has no resource ARNs: the namespace condition scopes it)."""
    statements: list[Statement] = [
        statement("OfflineList", ["s3:ListBucket", "s3:GetBucketLocation"], [arns.bucket_arn]),
        statement("OfflineRead", ["s3:GetObject"], [f"{arns.bucket_arn}/{OFFLINE_PREFIX}/*"]),
    ]
    if arns.table_arns:
        statements.append(
            statement(
                "OnlineWrite",
                [
                    "dynamodb:BatchWriteItem",
                    "dynamodb:PutItem",
                    "dynamodb:UpdateItem",
                    "dynamodb:DeleteItem",
                    "dynamodb:BatchGetItem",
                    "dynamodb:GetItem",
                    "dynamodb:DescribeTable",
                ],
                list(arns.table_arns),
            )
        )
    if not arns.registry_connect_arn:
        statements.append(
            statement(
                "RegistryWrite",
                ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                [f"{arns.bucket_arn}/{REGISTRY_KEY}"],
            )
        )
    statements.append(
        statement(
            "FreshnessMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],
            {"StringEquals": {"cloudwatch:namespace": arns.metrics_namespace}},
        )
    )
    return policy_document(*statements, *_common_statements(arns))


# -- the component ---------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class FeatureStoreArgs:
    config: FeatureStoreConfig
    project: str
    """The Feast project (`StackConfig.feast_project`); it prefixes every online table."""
    team: Team
    cluster: ClusterInfo
    namespace: pulumi.Input[str]
    """The team namespace (pass the TeamNamespace output so objects wait for it)."""
    kms_key_arn: pulumi.Input[str] | None = None
    """The team's KMS key; None: AWS-managed keys."""
    registry_database: DatabaseAccess | None = None
    """The model registry's database; required when `config.registry` is SQL."""


class FeatureStore(pulumi.ComponentResource):
    """Offline bucket, one online table per online view, registry, IAM, and the materialization job."""

    offline_bucket: pulumi.Output[str]
    """Name of the offline (S3) bucket."""
    offline_bucket_arn: pulumi.Output[str]
    offline_store_uri: pulumi.Output[str]
    """Root of the offline sources (`s3://<bucket>/offline`)."""
    registry_uri: pulumi.Output[str]
    """Feast registry: `s3://<bucket>/feast/registry.pb` or `postgresql://...` (no password)."""
    online_table_names: dict[str, pulumi.Output[str]]
    """Online feature view -> its DynamoDB table (`<project>.<view>`)."""
    online_table_arns: pulumi.Output[list[str]]
    reader_policy: pulumi.Output[str]
    """IAM policy JSON for serving (online reads, registry read)."""
    writer_policy: pulumi.Output[str]
    """IAM policy JSON for materialization (offline read, online write, registry write, metrics)."""
    feature_store_yaml: pulumi.Output[str]
    """The rendered feature_store.yaml (also in the ConfigMap `feast-config`)."""
    settings: dict[str, pulumi.Input[Any]]
    """runtime Settings fields that describe this feature store."""
    registry_database: DatabaseAccess | None
    """The database the Feast registry lives in (SQL registry); None: it is an S3 object."""
    writer_role_arn: pulumi.Output[str]
    """IRSA role of the materialization job (the one writer of the online tables)."""

    def __init__(
        self, name: str, args: FeatureStoreArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:featurestore:FeatureStore", name, None, opts)
        config, team, project = args.config, args.team, args.project
        sql_registry = isinstance(config.registry, SqlRegistry)
        if sql_registry and args.registry_database is None:
            raise ValueError("a SQL Feast registry needs the model registry's database")
        child = pulumi.ResourceOptions(parent=self)

        # Offline store (parquet sources) and, with an S3 registry, the Feast registry file.
        bucket = SecureBucket(
            f"{name}-offline",
            team=team,
            role="features",
            lifecycle=config.offline_lifecycle,
            kms_key_arn=args.kms_key_arn,
            opts=child,
        )

        tables = {
            view.name: self._online_table(name, team, project, view, config, args.kms_key_arn)
            for view in online_views(config)
        }
        self.online_table_names = {view: table.name for view, table in tables.items()}
        self.online_table_arns = pulumi.Output.all(*(t.arn for t in tables.values())).apply(
            lambda arns: [str(a) for a in arns]
        )

        database = self.registry_database = args.registry_database if sql_registry else None
        self.registry_uri = database.uri() if database else bucket.name.apply(s3_registry_uri)
        self.offline_store_uri = bucket.name.apply(offline_store_uri)
        spec = feature_store_spec(config, project)
        login = login_grant(database)
        arns = pulumi.Output.all(
            bucket_arn=bucket.arn,
            table_arns=self.online_table_arns,
            kms_key_arn=args.kms_key_arn,
            registry_connect_arn=login["feast_registry_connect_arn"],
        ).apply(lambda v: FeatureStoreArns(metrics_namespace=metrics_namespace(team.name), **v))
        self.reader_policy = arns.apply(lambda a: json.dumps(reader_document(a)))
        self.writer_policy = arns.apply(lambda a: json.dumps(writer_document(a)))
        self.settings = {
            "team": team.name,
            "environment": str(team.environment),
            "aws_region": team.region,
            "feature_store": spec,
            "offline_store_uri": self.offline_store_uri,
            "online_store": "dynamodb",
            "feast_registry_uri": self.registry_uri,
            "metrics_sink": "cloudwatch",
            "metrics_namespace": metrics_namespace(team.name),
        }
        self.feature_store_yaml = self.registry_uri.apply(
            lambda registry: render_feature_store_yaml(
                Settings(
                    team=team.name,
                    environment=str(team.environment),
                    aws_region=team.region,
                    aws_endpoint_url=None,
                    feature_store=spec,
                    online_store="dynamodb",
                    feast_registry_uri=registry,
                )
            )
        )

        k8s_child = pulumi.ResourceOptions(parent=self, provider=args.cluster.provider)
        labels = workload.labels(team.labels, "feature-store", "feast")
        # The Feast config every runtime process and the `feast` CLI read, rendered by the contract.
        config_map = k8s.core.v1.ConfigMap(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="feast-config", namespace=args.namespace, labels=labels
            ),
            data={CONFIG_FILE: self.feature_store_yaml},
            opts=k8s_child,
        )
        # Materialization writes online tables: it alone gets the writer policy.
        writer = WorkloadIdentity(
            f"{name}-writer",
            team=team,
            cluster=args.cluster,
            namespace=args.namespace,
            service_account=SERVICE_ACCOUNT,
            policy=self.writer_policy,
            opts=child,
        )
        self._materialization(name, args, spec, writer, config_map, database, k8s_child)
        self.writer_role_arn = writer.role.arn

        self.offline_bucket = bucket.name
        self.offline_bucket_arn = bucket.arn
        self.register_outputs(
            {
                "offlineBucket": self.offline_bucket,
                "offlineStoreUri": self.offline_store_uri,
                "registryUri": self.registry_uri,
                "onlineTableNames": self.online_table_names,
                "onlineTableArns": self.online_table_arns,
                "readerPolicy": self.reader_policy,
                "writerPolicy": self.writer_policy,
                "featureStoreYaml": self.feature_store_yaml,
                "writerRoleArn": self.writer_role_arn,
            }
        )

    def _online_table(
        self,
        name: str,
        team: Team,
        project: str,
        view: FeatureView,
        config: FeatureStoreConfig,
        kms_key_arn: pulumi.Input[str] | None,
    ) -> aws.dynamodb.Table:
        capacity = config.online_capacity
        provisioned = isinstance(capacity, Provisioned)
        table_name = naming.online_table_name(project, view.name)
        # Online values of one feature view, keyed exactly as Feast's DynamoDB store writes them.
        # Feast writes no expiry attribute, so DynamoDB TTL cannot apply; Feast's view ttl governs.
        table = aws.dynamodb.Table(
            f"{name}-online-{view.name}",
            name=table_name,
            hash_key=HASH_KEY,
            attributes=[aws.dynamodb.TableAttributeArgs(name=HASH_KEY, type="S")],
            billing_mode="PROVISIONED" if provisioned else "PAY_PER_REQUEST",
            read_capacity=capacity.read_capacity if isinstance(capacity, Provisioned) else None,
            write_capacity=capacity.write_capacity if isinstance(capacity, Provisioned) else None,
            point_in_time_recovery=aws.dynamodb.TablePointInTimeRecoveryArgs(
                enabled=config.point_in_time_recovery
            ),
            server_side_encryption=aws.dynamodb.TableServerSideEncryptionArgs(
                enabled=True, kms_key_arn=kms_key_arn
            ),
            deletion_protection_enabled=team.prod,
            tags={
                **team.tags,
                "feast-project": project,
                "feast-feature-view": view.name,
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=team.prod,
                # Autoscaling moves provisioned capacity; the stack sets only the floor.
                ignore_changes=["readCapacity", "writeCapacity"] if provisioned else None,
            ),
        )
        if isinstance(capacity, Provisioned):
            bounds = {
                "read": (capacity.read_capacity, capacity.max_read_capacity),
                "write": (capacity.write_capacity, capacity.max_write_capacity),
            }
            for kind, (dimension, metric) in CAPACITY_DIMENSIONS.items():
                low, high = bounds[kind]
                # Provisioned capacity follows the load between the configured floor and ceiling.
                target = aws.appautoscaling.Target(
                    f"{name}-online-{view.name}-{kind}-target",
                    service_namespace="dynamodb",
                    resource_id=table.name.apply(lambda t: f"table/{t}"),
                    scalable_dimension=dimension,
                    min_capacity=low,
                    max_capacity=high,
                    tags=team.tags,
                    opts=pulumi.ResourceOptions(parent=self),
                )
                aws.appautoscaling.Policy(
                    f"{name}-online-{view.name}-{kind}-policy",
                    policy_type="TargetTrackingScaling",
                    service_namespace=target.service_namespace,
                    resource_id=target.resource_id,
                    scalable_dimension=target.scalable_dimension,
                    target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                        target_value=capacity.target_utilization,
                        predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                            predefined_metric_type=metric
                        ),
                    ),
                    opts=pulumi.ResourceOptions(parent=self),
                )
        return table

    def _materialization(
        self,
        name: str,
        args: FeatureStoreArgs,
        spec: FeatureStoreSpec,
        writer: WorkloadIdentity,
        config_map: k8s.core.v1.ConfigMap,
        database: DatabaseAccess | None,
        opts: pulumi.ResourceOptions,
    ) -> None:
        team, config = args.team, args.config
        labels = workload.labels(team.labels, "feature-store", "materialize")
        config_volume = k8s.core.v1.VolumeArgs(
            name="feast-config",
            config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(
                name=config_map.metadata.apply(lambda m: m.name or "feast-config")
            ),
        )
        config_mount = k8s.core.v1.VolumeMountArgs(
            name="feast-config", mount_path=CONFIG_DIR, read_only=True
        )
        # A SQL registry: the database login (sidecar, password file) comes along.
        login = database_login(database, team.image)
        labels = {**labels, **login.labels}
        run = config.materialization
        shares = {"materialize_shards": run.completions} if run.completions > 1 else {}
        container = workload.runtime_container(
            "materialize",
            image=team.image,
            args=["materialize"],
            env_vars=[*workload.env(**self.settings, **shares), *login.env],
            spec=config.materialization.resources,
            extra_mounts=[config_mount, *login.mounts],
        )
        deadline = int(job_deadline(config.materialization.schedule).total_seconds())
        # New feature values reach the online tables on the configured schedule, one run at a time.
        workload.cron_job(
            f"{name}-materialize",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=naming.cronjob_name("materialize", "features"),
                namespace=args.namespace,
                labels=labels,
            ),
            labels=labels,
            schedule=run.schedule,
            pod=workload.pod_spec(
                [container],
                service_account=writer.service_account.metadata.apply(
                    lambda m: m.name or SERVICE_ACCOUNT
                ),
                volumes=[config_volume, *login.volumes],
                init_containers=login.init_containers,
                restart_policy="Never",
            ),
            retries=2,
            deadline_seconds=deadline,
            starting_deadline_seconds=300,
            opts=opts,
            completions=run.completions,
            parallelism=run.parallelism,
        )


def table_names(config: FeatureStoreConfig, project: str) -> Mapping[str, str]:
    """Online feature view -> DynamoDB table name, as Feast names it."""
    return {
        view.name: naming.online_table_name(project, view.name) for view in online_views(config)
    }
