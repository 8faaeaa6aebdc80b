"""The drift monitor: one CronJob per real-time endpoint (`mlops-runtime monitor`) and its
identity."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import iam, naming, workload
from components.config.monitoring import Drift
from components.config.resources import ContainerResources
from components.config.serving import RealtimeEndpoint
from components.config.training import TrainingPipeline
from components.team import ClusterInfo, DataPlane, Team
from runtime import metrics
from runtime.spec import EndpointSpec, PipelineSpec

DRIFT_MONITOR_RESOURCES = ContainerResources(cpu="250m", memory="1Gi")
DRIFT_MONITOR_SERVICE_ACCOUNT = "drift-monitor"
DRIFT_MONITOR_MAX_RUNTIME = timedelta(hours=1)


def _bucket_and_prefix(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    return bucket, prefix


def drift_monitor_policy(
    *,
    partition: str,
    prediction_log_uris: Sequence[str],
    artifact_uri: str,
    metrics_namespace: str,
    topic_arn: str,
    topic_key_arn: str,
    data_key_arns: Sequence[str],
    region: str,
    events_uris: Sequence[str] = (),
    live_labels_uris: Sequence[str] = (),
) -> dict[str, Any]:
    """Exactly what `mlops-runtime monitor` needs: read logs and models, read the endpoints'
    error counts (the canary guard), publish, notify; with continuous training, also read the
    arrived labels and write (and read back) the models' decisions in the event log."""
    prefixes: dict[str, list[str]] = {}
    for uri in [
        *prediction_log_uris,
        artifact_uri.rstrip("/") + "/",
        *events_uris,
        *live_labels_uris,
    ]:
        bucket, prefix = _bucket_and_prefix(uri)
        prefixes.setdefault(bucket, []).append(prefix)
    statements = [
        iam.statement(
            "ReadPredictionLogsAndModels",
            ["s3:GetObject"],
            [
                naming.s3_arn(f"s3://{bucket}/{prefix}*", partition)
                for bucket, listed in prefixes.items()
                for prefix in listed
            ],
        ),
        *(
            iam.statement(
                f"List{index}",
                ["s3:ListBucket"],
                [naming.s3_arn(f"s3://{bucket}", partition)],
                {"StringLike": {"s3:prefix": [f"{prefix}*" for prefix in listed]}},
            )
            for index, (bucket, listed) in enumerate(sorted(prefixes.items()), start=1)
        ),
        iam.statement(
            "PublishMetrics",
            ["cloudwatch:PutMetricData"],
            ["*"],  # PutMetricData has no resource; the namespace condition scopes it
            {"StringEquals": {"cloudwatch:namespace": metrics_namespace}},
        ),
        # GetMetricStatistics has no resource-level permissions: scoped to the stack's region.
        iam.statement(
            "ReadCanaryErrorCounts",
            ["cloudwatch:GetMetricStatistics"],
            ["*"],
            {"StringEquals": {"aws:RequestedRegion": region}},
        ),
        iam.statement("NotifyCanaryRollback", ["sns:Publish"], [topic_arn]),
        # Publishing into an encrypted topic encrypts with its key.
        iam.statement(
            "EncryptNotifications", ["kms:GenerateDataKey", "kms:Decrypt"], [topic_key_arn]
        ),
    ]
    if events_uris:
        # Continuous training's decisions (promoted, rolled back, quarantined): only created.
        statements.append(
            iam.statement(
                "WriteContinuousTrainingEvents",
                ["s3:PutObject"],
                [naming.s3_arn(f"{uri}*", partition) for uri in events_uris],
            )
        )
    if data_key_arns:
        statements.append(iam.statement("DecryptData", ["kms:Decrypt"], list(data_key_arns)))
    return iam.policy_document(*statements)


def _under(path: str) -> Callable[[Any], str]:
    """`<root>/<path>` for a root URI (with or without its trailing '/')."""
    return lambda root: f"{str(root).rstrip('/')}/{path}"


def _spec_of(model: Any, spec: type[Any]) -> Any:
    """The runtime's view of a config model: only the fields the runtime spec declares."""
    return spec.model_validate(model.model_dump(include=set(spec.model_fields)))


def drift_monitors(
    name: str,
    *,
    team: Team,
    cluster: ClusterInfo,
    namespace: pulumi.Input[str],
    data: DataPlane,
    drift: Drift,
    endpoints: Sequence[RealtimeEndpoint],
    pipelines: Sequence[TrainingPipeline],
    resources: ContainerResources,
    topic_arn: pulumi.Output[str],
    topic_key_arn: pulumi.Input[str],
    parent: pulumi.Resource,
) -> pulumi.Output[str]:
    """The drift monitor of each endpoint, and the identity they share (its role's ARN)."""
    log_uris = {e.name: data.prediction_log_uri(e.name) for e in endpoints}
    # MLflow keeps model artifacts under artifact_uri (default: the whole artifact bucket).
    artifact_uri = data.settings.get("artifact_uri") or data.artifact_bucket.apply(
        lambda bucket: f"s3://{bucket}/"
    )
    # Continuously trained models served here: their events, and where their labels arrive.
    continuous = [
        p
        for p in pipelines
        if p.continuous_training is not None and p.model_name in {e.model for e in endpoints}
    ]
    events_root = data.events_uri()
    events_uris = [events_root.apply(_under(p.model_name + "/")) for p in continuous]
    offline_root = pulumi.Output.from_input(data.settings.get("offline_store_uri") or "")
    live_labels_uris = [
        offline_root.apply(_under(p.continuous_training.live_labels))
        for p in continuous
        if p.continuous_training is not None and p.continuous_training.live_labels
    ]
    policy = pulumi.Output.all(
        data.artifact_bucket_arn,
        pulumi.Output.all(*log_uris.values()),
        artifact_uri,
        topic_arn,
        topic_key_arn,
        data.kms_key_arns,
        pulumi.Output.all(*events_uris),
        pulumi.Output.all(*live_labels_uris),
    ).apply(
        lambda v: json.dumps(
            drift_monitor_policy(
                partition=naming.arn_partition(v[0]),
                prediction_log_uris=v[1],
                artifact_uri=v[2],
                metrics_namespace=metrics.namespace(team.name),
                topic_arn=v[3],
                topic_key_arn=v[4],
                data_key_arns=v[5],
                region=team.region,
                events_uris=v[6],
                live_labels_uris=v[7],
            )
        )
    )
    # Reads what the endpoints logged and the models' references; publishes drift; notifies.
    identity = iam.WorkloadIdentity(
        f"{name}-drift-identity",
        team=team,
        cluster=cluster,
        namespace=namespace,
        service_account=DRIFT_MONITOR_SERVICE_ACCOUNT,
        policy=policy,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    period = naming.schedule_period(drift.schedule)
    deadline = int(min(period, DRIFT_MONITOR_MAX_RUNTIME).total_seconds())
    for e in endpoints:
        served_by = {p.name for p in pipelines if p.model_name == e.model}
        settings = {
            **data.settings,
            **workload.team_settings(team),
            "endpoint": _spec_of(e, EndpointSpec),
            "pipelines": [_spec_of(p, PipelineSpec) for p in pipelines if p.name in served_by],
            "alert_topic_arn": topic_arn,
            "prediction_log_uri": log_uris[e.name],
            "events_uri": events_root if any(p.model_name == e.model for p in continuous) else None,
        }
        labels = workload.labels(team.labels, "drift-monitor", e.name)
        container = workload.runtime_container(
            "monitor",
            image=team.image,
            args=[
                "monitor",
                "--endpoint",
                e.name,
                "--psi-threshold",
                str(drift.psi_threshold),
            ],
            env_vars=workload.env(**settings),
            spec=resources,
        )
        # Measures drift of one endpoint's traffic and guards its canary, on the schedule.
        workload.cron_job(
            f"{name}-drift-monitor-{e.name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=naming.cronjob_name("drift", e.name),
                namespace=namespace,
                labels=labels,
            ),
            labels=labels,
            schedule=drift.schedule,
            pod=workload.pod_spec(
                [container],
                service_account=DRIFT_MONITOR_SERVICE_ACCOUNT,
                restart_policy="Never",
            ),
            retries=1,
            deadline_seconds=deadline,
            starting_deadline_seconds=min(deadline, 600),
            opts=pulumi.ResourceOptions(
                parent=parent, provider=cluster.provider, depends_on=[identity]
            ),
        )
    return identity.role.arn
