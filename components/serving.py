"""`mlops:serving:ServingEndpoint`: one model endpoint, real-time (HTTP) or batch (scheduled).

Canary and shadow settings reach the runtime through the contract (`MLOPS_ENDPOINT`), never as
extra Kubernetes objects: the serving process splits traffic between registry aliases itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components import naming, workload
from components.config.resources import ContainerResources
from components.config.serving import BatchEndpoint, Ingress, OidcAuthentication, RealtimeEndpoint
from components.database import database_login, login_grant
from components.iam import (
    WorkloadIdentity,
    feast_registry_statements,
    json_policy,
    kms_statement,
    metrics_statement,
    online_read_statement,
    policy_document,
    read_bucket_statements,
    statement,
)
from components.sagemaker import SageMakerArgs, sagemaker_endpoint
from components.team import ClusterInfo, DataPlane, Team
from components.workload import CRONJOB_STARTING_DEADLINE, runtime_env, team_settings
from runtime.spec import EndpointSpec

HTTP_PORT = 8080
"""The port `mlops-runtime serve` listens on (Settings.port)."""
SERVICE_PORT = 80
READY_PATH = "/ready"
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
TERMINATION_GRACE_SECONDS = 60
"""Time to finish in-flight requests and flush the buffered prediction log after SIGTERM."""
PRE_STOP_SECONDS = 10
"""Keep serving while the Service and the load balancer stop sending new requests."""
MIN_READY_SECONDS = 10
SCALE_DOWN_WINDOW_SECONDS = 300
ZONE_KEY = "topology.kubernetes.io/zone"
HOST_KEY = "kubernetes.io/hostname"
BATCH_RETRIES = 2
ALB_CLASS = "alb"


# --- planning arithmetic: plain functions -------------------------------------------------------


def endpoint_spec(endpoint: RealtimeEndpoint | BatchEndpoint) -> EndpointSpec:
    """The part of the endpoint's config the runtime reads (the contract's EndpointSpec)."""
    return EndpointSpec.model_validate(
        endpoint.model_dump(include=set(EndpointSpec.model_fields), by_alias=True)
    )


def serve_workers(resources: ContainerResources) -> int:
    """Serving processes of a pod: one per whole CPU it requests (rounded down, at least one).

    A prediction is mostly Python (parsing, validation, the answer), so a second core serves
    through a second process; model threads would idle (docs/benchmarks.md).
    """
    return max(1, round(naming.quantity(resources.cpu) * 1000) // 1000)


def service_account_name(endpoint: RealtimeEndpoint | BatchEndpoint) -> str:
    kind = "serve" if isinstance(endpoint, RealtimeEndpoint) else "batch"
    return f"{kind}-{endpoint.name}"


def selector(endpoint: str) -> dict[str, str]:
    """Labels that pick the endpoint's pods (a Deployment's selector is immutable: keep it small)."""
    return {"app.kubernetes.io/component": "serving", "app.kubernetes.io/name": endpoint}


def prefix_arn(uri: str, partition: str) -> str:
    """Every object under an `s3://bucket/prefix/` URI, as an IAM resource."""
    return f"{naming.s3_arn(uri, partition).rstrip('/')}/*"


def realtime_policy(
    *,
    team: str,
    online_table_arns: list[str],
    artifact_bucket_arn: str,
    kms_key_arns: list[str],
    feast_registry_uri: str | None,
    prediction_log_uri: str,
    feast_registry_connect_arn: str | None = None,
) -> dict[str, Any]:
    """Read online features and models, append to its own prediction log, put metrics."""
    partition = naming.arn_partition(artifact_bucket_arn)
    return policy_document(
        *online_read_statement("ReadOnlineFeatures", online_table_arns, describe=False),
        *feast_registry_statements(
            feast_registry_uri,
            partition,
            write=False,
            connect_arn=feast_registry_connect_arn,
        ),
        *read_bucket_statements("ReadArtifacts", artifact_bucket_arn),
        statement(
            "WritePredictionLog", ["s3:PutObject"], [prefix_arn(prediction_log_uri, partition)]
        ),
        *kms_statement(kms_key_arns, encrypt=True),
        metrics_statement(team),
    )


def batch_policy(
    *,
    team: str,
    offline_bucket_arn: str,
    artifact_bucket_arn: str,
    kms_key_arns: list[str],
    feast_registry_uri: str | None,
    output_uri: str,
    feast_registry_connect_arn: str | None = None,
) -> dict[str, Any]:
    """Read offline features, the input and models, write under its output prefix, put metrics."""
    partition = naming.arn_partition(artifact_bucket_arn)
    return policy_document(
        *read_bucket_statements("ReadOfflineFeatures", offline_bucket_arn),
        *feast_registry_statements(
            feast_registry_uri,
            partition,
            write=False,
            connect_arn=feast_registry_connect_arn,
        ),
        *read_bucket_statements("ReadArtifacts", artifact_bucket_arn),
        statement("WritePredictions", ["s3:PutObject"], [prefix_arn(output_uri, partition)]),
        *kms_statement(kms_key_arns, encrypt=True),
        metrics_statement(team),
    )


TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
"""TLS 1.3 and 1.2 with forward-secret ciphers only (the AWS-recommended modern policy)."""


def ingress_annotations(ingress: Ingress, tags: dict[str, str]) -> dict[str, str]:
    """AWS Load Balancer Controller settings: internal unless public, HTTPS only (HTTP answers
    with a redirect), a modern TLS policy, straight to the pods; with an authenticator, the ALB
    signs users in before any request reaches them."""
    if ingress.class_name != ALB_CLASS:
        return {}
    annotations = {
        "alb.ingress.kubernetes.io/scheme": "internet-facing" if ingress.public else "internal",
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/healthcheck-path": READY_PATH,
        "alb.ingress.kubernetes.io/listen-ports": json.dumps([{"HTTP": 80}, {"HTTPS": 443}]),
        "alb.ingress.kubernetes.io/ssl-redirect": "443",
        "alb.ingress.kubernetes.io/certificate-arn": ingress.certificate_arn,
        "alb.ingress.kubernetes.io/ssl-policy": TLS_POLICY,
        "alb.ingress.kubernetes.io/tags": ",".join(f"{k}={v}" for k, v in sorted(tags.items())),
    }
    auth = ingress.authentication
    if auth is not None:
        annotations["alb.ingress.kubernetes.io/auth-type"] = auth.kind
        annotations["alb.ingress.kubernetes.io/auth-on-unauthenticated-request"] = "authenticate"
        if isinstance(auth, OidcAuthentication):
            annotations["alb.ingress.kubernetes.io/auth-idp-oidc"] = json.dumps(
                {
                    "issuer": auth.issuer,
                    "authorizationEndpoint": auth.authorization_endpoint,
                    "tokenEndpoint": auth.token_endpoint,
                    "userInfoEndpoint": auth.user_info_endpoint,
                    "secretName": auth.secret_name,
                }
            )
        else:
            annotations["alb.ingress.kubernetes.io/auth-idp-cognito"] = json.dumps(
                {
                    "userPoolARN": auth.user_pool_arn,
                    "userPoolClientID": auth.user_pool_client_id,
                    "userPoolDomain": auth.user_pool_domain,
                }
            )
    return annotations


def spread(endpoint: str, *, prod: bool) -> list[k8s.core.v1.TopologySpreadConstraintArgs]:
    """Replicas across zones (strictly in prod: a zone outage leaves the others) and hosts."""
    pods = k8s.meta.v1.LabelSelectorArgs(match_labels=selector(endpoint))
    return [
        k8s.core.v1.TopologySpreadConstraintArgs(
            topology_key=key,
            max_skew=1,
            when_unsatisfiable=when,
            label_selector=pods,
            match_label_keys=["pod-template-hash"],
        )
        for key, when in (
            (ZONE_KEY, "DoNotSchedule" if prod else "ScheduleAnyway"),
            (HOST_KEY, "ScheduleAnyway"),
        )
    ]


# --- the component ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ServingEndpointArgs:
    team: Team
    cluster: ClusterInfo
    namespace: pulumi.Input[str]
    """The team namespace (an output, so workloads wait for it)."""
    data_plane: DataPlane
    endpoint: RealtimeEndpoint | BatchEndpoint
    repository_arn: pulumi.Input[str] | None = None
    """The stack's ECR repository (a SageMaker endpoint's execution role pulls from it)."""
    rollback_alarms: Sequence[pulumi.Input[str]] = ()
    """Alarm names that roll a SageMaker endpoint's blue/green deployment back."""
    sagemaker_tracking_uri: pulumi.Input[str] | None = None
    """MLflow through its internal NLB: the tracking URI of a SageMaker endpoint's variants."""
    registry_load_balancer_security_group_id: pulumi.Input[str] | None = None
    """That NLB's security group, which a SageMaker endpoint admits its variants to."""


class ServingEndpoint(pulumi.ComponentResource):
    """A model endpoint: an autoscaled, disruption-safe HTTP service, or a scheduled batch job."""

    role_arn: pulumi.Output[str]
    """ARN of the IAM role the endpoint's pods assume."""
    service_name: pulumi.Output[str] | None
    """Kubernetes Service of a real-time endpoint (None for batch)."""
    url: pulumi.Output[str] | None
    """In-cluster URL of a real-time endpoint (None for batch)."""
    cronjob: pulumi.Output[str] | None
    """CronJob of a batch endpoint (None for real-time)."""

    def __init__(
        self, name: str, args: ServingEndpointArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:serving:ServingEndpoint", name, None, opts)
        self.service_name = self.url = self.cronjob = None
        endpoint = args.endpoint
        if isinstance(endpoint, RealtimeEndpoint) and endpoint.on_sagemaker:
            self.role_arn = self._sagemaker(name, args, endpoint)
        elif isinstance(endpoint, RealtimeEndpoint):
            self.role_arn = self._realtime(name, args, endpoint)
        else:
            self.role_arn = self._batch(name, args, endpoint)
        self.register_outputs(
            {
                "roleArn": self.role_arn,
                "serviceName": self.service_name,
                "url": self.url,
                "cronjob": self.cronjob,
            }
        )

    def _identity(
        self, name: str, args: ServingEndpointArgs, policy: pulumi.Output[str]
    ) -> WorkloadIdentity:
        # The endpoint's own identity: no other workload shares its permissions.
        return WorkloadIdentity(
            f"{name}-identity",
            team=args.team,
            cluster=args.cluster,
            namespace=args.namespace,
            service_account=service_account_name(args.endpoint),
            policy=policy,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _sagemaker(
        self, name: str, args: ServingEndpointArgs, endpoint: RealtimeEndpoint
    ) -> pulumi.Output[str]:
        """`backend: sagemaker`: the same contract and reads as the pod, on SageMaker."""
        team, data = args.team, args.data_plane
        log_uri = data.prediction_log_uri(endpoint.name)
        settings = {
            **data.settings,
            **team_settings(team),
            "prediction_log_uri": log_uri,
            "port": HTTP_PORT,
        }
        if args.sagemaker_tracking_uri is not None:
            # The cluster's service name does not resolve outside the cluster.
            settings["tracking_uri"] = args.sagemaker_tracking_uri
        policy = _serving_policy(args, log_uri)
        return sagemaker_endpoint(
            name,
            SageMakerArgs(
                team=team,
                cluster=args.cluster,
                data_plane=data,
                endpoint=endpoint,
                settings=settings,
                policy=policy,
                repository_arn=args.repository_arn,
                rollback_alarms=args.rollback_alarms,
                registry_security_group_id=args.registry_load_balancer_security_group_id,
            ),
            parent=self,
        )

    def _realtime(
        self, name: str, args: ServingEndpointArgs, endpoint: RealtimeEndpoint
    ) -> pulumi.Output[str]:
        team, data = args.team, args.data_plane
        log_uri = data.prediction_log_uri(endpoint.name)
        identity = self._identity(name, args, _serving_policy(args, log_uri))
        # A SQL Feast registry: the database login (sidecar, password file) comes along.
        login = database_login(data.feast_registry_database, team.image)
        k8s_opts = pulumi.ResourceOptions(parent=self, provider=args.cluster.provider)
        labels = workload.labels(team.labels, "serving", endpoint.name)
        metadata = k8s.meta.v1.ObjectMetaArgs(
            name=endpoint.name, namespace=args.namespace, labels=labels
        )
        http = k8s.core.v1.HTTPGetActionArgs
        container = workload.runtime_container(
            "serve",
            image=team.image,
            args=["serve"],
            env_vars=[
                *runtime_env(
                    data,
                    team,
                    endpoint=endpoint_spec(endpoint),
                    prediction_log_uri=log_uri,
                    port=HTTP_PORT,
                    serve_workers=serve_workers(endpoint.resources),
                ),
                *login.env,
            ],
            spec=endpoint.resources,
            extra_mounts=login.mounts,
            ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=HTTP_PORT)],
            # Loading the model may take a while; liveness starts counting after it.
            startup_probe=k8s.core.v1.ProbeArgs(
                http_get=http(path=HEALTH_PATH, port="http"),
                period_seconds=5,
                failure_threshold=60,
            ),
            readiness_probe=k8s.core.v1.ProbeArgs(
                http_get=http(path=READY_PATH, port="http"),
                period_seconds=5,
                failure_threshold=2,
            ),
            liveness_probe=k8s.core.v1.ProbeArgs(
                http_get=http(path=HEALTH_PATH, port="http"),
                period_seconds=10,
                failure_threshold=3,
            ),
            lifecycle=k8s.core.v1.LifecycleArgs(
                pre_stop=k8s.core.v1.LifecycleHandlerArgs(
                    sleep=k8s.core.v1.SleepActionArgs(seconds=PRE_STOP_SECONDS)
                )
            ),
        )
        pod = workload.pod_spec(
            [container],
            service_account=workload.name_of(identity.service_account),
            volumes=login.volumes,
            init_containers=login.init_containers,
            termination_grace_period_seconds=TERMINATION_GRACE_SECONDS,
            topology_spread_constraints=spread(endpoint.name, prod=args.team.prod),
        )
        # The serving pods: rolled one extra pod at a time, never below the current capacity.
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=metadata,
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=endpoint.replicas.min,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(endpoint.name)),
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(
                        max_unavailable=0, max_surge=1
                    ),
                ),
                min_ready_seconds=MIN_READY_SECONDS,
                revision_history_limit=5,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels={**labels, **login.labels},
                        annotations={
                            "prometheus.io/scrape": "true",
                            "prometheus.io/port": str(HTTP_PORT),
                            "prometheus.io/path": METRICS_PATH,
                        },
                    ),
                    spec=pod,
                ),
            ),
            # The autoscaler owns the replica count once the Deployment exists.
            opts=pulumi.ResourceOptions.merge(
                k8s_opts, pulumi.ResourceOptions(ignore_changes=["spec.replicas"])
            ),
        )
        # A stable in-cluster name for callers (and the load balancer's target).
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata,
            spec=k8s.core.v1.ServiceSpecArgs(
                type="ClusterIP",
                selector=selector(endpoint.name),
                ports=[
                    k8s.core.v1.ServicePortArgs(
                        name="http", port=SERVICE_PORT, target_port="http", protocol="TCP"
                    )
                ],
            ),
            opts=k8s_opts,
        )
        self.service_name = workload.name_of(service)
        self.url = pulumi.Output.concat(
            "http://", self.service_name, ".", args.namespace, f".svc.cluster.local:{SERVICE_PORT}"
        )
        # Replicas follow CPU between the configured bounds; scale-down waits out short dips.
        k8s.autoscaling.v2.HorizontalPodAutoscaler(
            f"{name}-hpa",
            metadata=metadata,
            spec=k8s.autoscaling.v2.HorizontalPodAutoscalerSpecArgs(
                scale_target_ref=k8s.autoscaling.v2.CrossVersionObjectReferenceArgs(
                    api_version="apps/v1", kind="Deployment", name=workload.name_of(deployment)
                ),
                min_replicas=endpoint.replicas.min,
                max_replicas=endpoint.replicas.max,
                metrics=[
                    k8s.autoscaling.v2.MetricSpecArgs(
                        type="Resource",
                        resource=k8s.autoscaling.v2.ResourceMetricSourceArgs(
                            name="cpu",
                            target=k8s.autoscaling.v2.MetricTargetArgs(
                                type="Utilization",
                                average_utilization=endpoint.target_cpu_percent,
                            ),
                        ),
                    )
                ],
                behavior=k8s.autoscaling.v2.HorizontalPodAutoscalerBehaviorArgs(
                    scale_down=k8s.autoscaling.v2.HPAScalingRulesArgs(
                        stabilization_window_seconds=SCALE_DOWN_WINDOW_SECONDS
                    )
                ),
            ),
            opts=k8s_opts,
        )
        if team.prod:
            # Node drains and cluster upgrades take one replica at a time.
            k8s.policy.v1.PodDisruptionBudget(
                f"{name}-pdb",
                metadata=metadata,
                spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                    max_unavailable=1,
                    selector=k8s.meta.v1.LabelSelectorArgs(match_labels=selector(endpoint.name)),
                    unhealthy_pod_eviction_policy="AlwaysAllow",
                ),
                opts=k8s_opts,
            )
        if endpoint.ingress is not None:
            self._ingress(name, args, endpoint.ingress, labels)
        return identity.role.arn

    def _ingress(
        self, name: str, args: ServingEndpointArgs, ingress: Ingress, labels: dict[str, str]
    ) -> None:
        endpoint = args.endpoint.name
        # Reachable from outside the cluster over HTTPS (inside the VPC unless `public: true`).
        k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=endpoint,
                namespace=args.namespace,
                labels=labels,
                annotations=ingress_annotations(ingress, args.team.tags),
            ),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=ingress.class_name,
                rules=[
                    k8s.networking.v1.IngressRuleArgs(
                        host=ingress.host,
                        http=k8s.networking.v1.HTTPIngressRuleValueArgs(
                            paths=[
                                k8s.networking.v1.HTTPIngressPathArgs(
                                    path="/",
                                    path_type="Prefix",
                                    backend=k8s.networking.v1.IngressBackendArgs(
                                        service=k8s.networking.v1.IngressServiceBackendArgs(
                                            name=endpoint,
                                            port=k8s.networking.v1.ServiceBackendPortArgs(
                                                name="http"
                                            ),
                                        )
                                    ),
                                )
                            ]
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, provider=args.cluster.provider),
        )

    def _batch(
        self, name: str, args: ServingEndpointArgs, endpoint: BatchEndpoint
    ) -> pulumi.Output[str]:
        team, data = args.team, args.data_plane
        output_uri = data.artifact_bucket.apply(
            lambda bucket: f"s3://{bucket}/{endpoint.output.rstrip('/')}/"
        )
        identity = self._identity(
            name,
            args,
            json_policy(
                batch_policy,
                team=team.name,
                offline_bucket_arn=data.offline_bucket_arn,
                artifact_bucket_arn=data.artifact_bucket_arn,
                kms_key_arns=data.kms_key_arns,
                feast_registry_uri=data.settings.get("feast_registry_uri"),
                output_uri=output_uri,
                **login_grant(data.feast_registry_database),
            ),
        )
        # A SQL Feast registry: the database login (sidecar, password file) comes along.
        login = database_login(data.feast_registry_database, team.image)
        labels = {**workload.labels(team.labels, "batch-serving", endpoint.name), **login.labels}
        container = workload.runtime_container(
            "batch-predict",
            image=team.image,
            args=["batch-predict"],
            env_vars=[
                *runtime_env(
                    data,
                    team,
                    endpoint=endpoint_spec(endpoint),
                    batch_input=endpoint.input,
                    batch_output_uri=output_uri,
                    batch_shards=endpoint.completions,
                ),
                workload.job_name_env("batch_run"),
                *login.env,
            ],
            spec=endpoint.resources,
            extra_mounts=login.mounts,
        )
        pod = workload.pod_spec(
            [container],
            service_account=workload.name_of(identity.service_account),
            volumes=login.volumes,
            init_containers=login.init_containers,
            restart_policy="Never",
        )
        # A run must end before the next one is due.
        deadline = int(naming.schedule_period(endpoint.schedule).total_seconds())
        # The scheduled scoring run: one at a time, bounded in time and retries.
        cronjob = workload.cron_job(
            f"{name}-cronjob",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=naming.cronjob_name("batch", endpoint.name),
                namespace=args.namespace,
                labels=labels,
            ),
            labels=labels,
            schedule=endpoint.schedule,
            pod=pod,
            retries=BATCH_RETRIES,
            deadline_seconds=deadline,
            starting_deadline_seconds=CRONJOB_STARTING_DEADLINE,
            opts=pulumi.ResourceOptions(parent=self, provider=args.cluster.provider),
            completions=endpoint.completions,
            parallelism=endpoint.parallelism,
        )
        self.cronjob = workload.name_of(cronjob)
        return identity.role.arn


def _serving_policy(args: ServingEndpointArgs, log_uri: pulumi.Input[str]) -> pulumi.Output[str]:
    """What a real-time endpoint's identity may do, a pod's or a SageMaker variant's alike."""
    data = args.data_plane
    return json_policy(
        realtime_policy,
        team=args.team.name,
        online_table_arns=data.online_table_arns,
        artifact_bucket_arn=data.artifact_bucket_arn,
        kms_key_arns=data.kms_key_arns,
        feast_registry_uri=data.settings.get("feast_registry_uri"),
        prediction_log_uri=log_uri,
        **login_grant(data.feast_registry_database),
    )
