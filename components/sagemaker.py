"""A real-time endpoint on SageMaker (`backend: sagemaker`): a model per variant running the
stack's runtime image, an endpoint configuration, the endpoint with blue/green deployments that
roll back on its alarms, and autoscaling per variant.

Which model version a variant serves stays a registry decision: each variant's container serves
one alias (`MLOPS_SERVE_ALIAS`, champion or challenger) and resolves it at run time with hot
reload, as the Kubernetes backend does. SageMaker splits the traffic between the variants by
weight (a canary) or copies it to a shadow variant; the runtime itself splits nothing here.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import naming
from components.config.serving import RealtimeEndpoint, SageMakerInstances
from components.iam import policy_document, statement
from components.registry import TRACKING_PORT
from components.team import ClusterInfo, DataPlane, Team
from runtime import metrics
from runtime.settings import render_env
from runtime.spec import EndpointSpec

CONTAINER_HOME = "/opt/ml/mlops"
"""MLOPS_HOME in a SageMaker container: under /opt/ml, which SageMaker mounts writable (the
image makes it writable by the runtime user)."""
HTTPS_PORT = 443
DATA_CAPTURE_PREFIX = "data-capture"
"""Prefix of the artifact bucket SageMaker writes captured requests and responses under."""
DATA_CAPTURE_PERCENT = 100
"""Every request captured (as the prediction log records every row): drift and audits see all."""
CAPTURE_JSON = ["application/json"]
CAPTURE_CSV = ["text/csv"]
CANARY_WAIT_SECONDS = 600
"""Blue/green canary: how long the new fleet serves its share, watched by the alarms, before the
rest of the traffic moves (SageMaker's default baking period is as long)."""
CANARY_PERCENT = 10
"""Share of the capacity that takes traffic first in a blue/green deployment."""
SHUTDOWN_DRAIN_SECONDS = 20
"""SageMaker stops a container with SIGTERM and SIGKILLs it 30 s later: in-flight requests get
20 s, the prediction log's flush the rest (a pod drains for 40 s of its 60)."""
TERMINATION_WAIT_SECONDS = 300
"""The old fleet stays up this long after the shift, for a rollback without a cold start."""
SCALE_IN_COOLDOWN = 300
SCALE_OUT_COOLDOWN = 60
DESIRED_INSTANCE_COUNT = "sagemaker:variant:DesiredInstanceCount"
INVOCATIONS_PER_INSTANCE = "SageMakerVariantInvocationsPerInstance"
SAGEMAKER_PRINCIPAL = "sagemaker.amazonaws.com"


def endpoint_name(team: Team, endpoint: str) -> str:
    """The SageMaker endpoint's name; its alarms bind to it as the `EndpointName` dimension."""
    return naming.physical_name(team.name, team.environment, endpoint, naming.SAGEMAKER_NAME_MAX)


def variants(endpoint: RealtimeEndpoint) -> list[str]:
    """The variants of the endpoint, each serving the alias of its name: the champion, and the
    challenger for a canary (a weighted production variant) or a shadow (a shadow variant)."""
    if endpoint.canary is not None or endpoint.shadow:
        return [metrics.VARIANT_CHAMPION, metrics.VARIANT_CHALLENGER]
    return [metrics.VARIANT_CHAMPION]


def weights(endpoint: RealtimeEndpoint) -> dict[str, float]:
    """Production variant -> its share of the requests (a shadow variant has no weight)."""
    if endpoint.canary is None:
        return {metrics.VARIANT_CHAMPION: 1.0}
    share = endpoint.canary.weight / 100
    return {metrics.VARIANT_CHAMPION: 1.0 - share, metrics.VARIANT_CHALLENGER: share}


def variant_spec(endpoint: RealtimeEndpoint) -> EndpointSpec:
    """What a variant's runtime reads: the endpoint without its canary (SageMaker splits the
    traffic by variant weight; each variant scores with its own alias only). ``shadow`` stays:
    the challenger variant is then SageMaker's shadow variant and logs its rows as shadow rows,
    which the monitor keeps apart from the answers."""
    return EndpointSpec(
        name=endpoint.name,
        model=endpoint.model,
        shadow=endpoint.shadow,
        slo=endpoint.slo,
        trust_model_code=endpoint.trust_model_code,
    )


def container_env(
    settings: dict[str, Any], *, endpoint: RealtimeEndpoint, alias: str
) -> dict[str, Any]:
    """The variant container's env: the contract the Kubernetes pod gets, plus its alias."""
    return render_env(
        home=CONTAINER_HOME,
        **{
            **settings,
            "endpoint": variant_spec(endpoint),
            "serve_alias": alias,
            "shutdown_drain_seconds": SHUTDOWN_DRAIN_SECONDS,
        },
    )


def execution_policy(
    *,
    base: dict[str, Any],
    partition: str,
    region: str,
    account: str,
    artifact_bucket: str,
    endpoint: str,
    repository_arn: str | None,
    subnet_ids: Sequence[str],
    security_group_id: str,
) -> dict[str, Any]:
    """What the serving pod's role may do (``base``), plus what SageMaker does with the role:
    pull the image, write the endpoint's log group, manage the variant's network interfaces in
    the given subnets, write captured data."""
    ec2 = f"arn:{partition}:ec2:{region}:{account}"
    in_region = {"StringEquals": {"aws:RequestedRegion": region}}
    extra = [
        # No resource-level permission exists for these: scoped to the stack's region.
        statement("EcrLogin", ["ecr:GetAuthorizationToken"], ["*"], in_region),
        statement(
            "DescribeNetwork",
            [
                "ec2:DescribeDhcpOptions",
                "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeSecurityGroups",
                "ec2:DescribeSubnets",
                "ec2:DescribeVpcs",
            ],
            ["*"],
            in_region,
        ),
        statement(
            "VariantNetworkInterfaces",
            [
                "ec2:CreateNetworkInterface",
                "ec2:CreateNetworkInterfacePermission",
                "ec2:DeleteNetworkInterface",
                "ec2:DeleteNetworkInterfacePermission",
            ],
            [
                f"{ec2}:network-interface/*",
                f"{ec2}:security-group/{security_group_id}",
                *(f"{ec2}:subnet/{subnet}" for subnet in subnet_ids),
            ],
        ),
        statement(
            "EndpointLogs",
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:DescribeLogStreams",
                "logs:PutLogEvents",
            ],
            [
                f"arn:{partition}:logs:{region}:{account}:log-group:/aws/sagemaker/Endpoints/"
                f"{endpoint}:*"
            ],
        ),
    ]
    if repository_arn:
        extra.append(
            statement(
                "PullRuntimeImage",
                [
                    "ecr:BatchCheckLayerAvailability",
                    "ecr:BatchGetImage",
                    "ecr:GetDownloadUrlForLayer",
                ],
                [repository_arn],
            )
        )
    extra.append(
        statement(
            "WriteDataCapture",
            ["s3:PutObject"],
            [f"arn:{partition}:s3:::{artifact_bucket}/{DATA_CAPTURE_PREFIX}/{endpoint}/*"],
        )
    )
    return policy_document(*base["Statement"], *extra)


def trust_policy(account: str, partition: str, region: str) -> dict[str, Any]:
    """SageMaker, acting for this account only (the confused-deputy guard)."""
    return policy_document(
        {
            "Sid": "SageMaker",
            "Effect": "Allow",
            "Principal": {"Service": SAGEMAKER_PRINCIPAL},
            "Action": "sts:AssumeRole",
            "Condition": {
                "StringEquals": {"aws:SourceAccount": account},
                "ArnLike": {"aws:SourceArn": f"arn:{partition}:sagemaker:{region}:{account}:*"},
            },
        }
    )


@dataclass(frozen=True, kw_only=True)
class SageMakerArgs:
    team: Team
    cluster: ClusterInfo
    data_plane: DataPlane
    endpoint: RealtimeEndpoint
    settings: dict[str, Any]
    """The runtime Settings the Kubernetes pod of this endpoint would get (the contract)."""
    policy: pulumi.Output[str]
    """The serving pod's role policy (JSON): the execution role gets the same reads."""
    repository_arn: pulumi.Input[str] | None
    """The stack's ECR repository the image comes from (None: `mlops:image` elsewhere)."""
    rollback_alarms: Sequence[pulumi.Input[str]]
    """Names of the alarms that roll a blue/green deployment back."""
    registry_security_group_id: pulumi.Input[str] | None = None
    """The security group of MLflow's internal NLB (settings' tracking_uri points at it): the
    variants may connect to it on the tracking port, and it admits them."""


def sagemaker_endpoint(
    name: str, args: SageMakerArgs, parent: pulumi.Resource
) -> pulumi.Output[str]:
    """The endpoint's resources, children of ``parent``; returns the execution role's ARN."""
    team, endpoint, data = args.team, args.endpoint, args.data_plane
    child = pulumi.ResourceOptions(parent=parent)
    physical = endpoint_name(team, endpoint.name)
    capacity = endpoint.sagemaker_settings.instances
    key_arn = data.kms_key_arns.apply(lambda arns: arns[0] if arns else None)
    account = args.cluster.oidc_provider_arn.apply(naming.arn_account)
    partition = args.cluster.oidc_provider_arn.apply(naming.arn_partition)

    # The variants' network: the cluster's private subnets, out to the AWS APIs and the registry.
    security_group = aws.ec2.SecurityGroup(
        f"{name}-sg",
        description=f"SageMaker endpoint {physical}: no inbound; HTTPS and MLflow out",
        vpc_id=args.cluster.vpc_id,
        tags={**team.tags, "Name": naming.fit(f"{physical}-sagemaker", 255)},
        opts=child,
    )
    aws.vpc.SecurityGroupEgressRule(
        f"{name}-https-out",
        security_group_id=security_group.id,
        cidr_ipv4="0.0.0.0/0",
        ip_protocol="tcp",
        from_port=HTTPS_PORT,
        to_port=HTTPS_PORT,
        description="HTTPS to the AWS APIs (S3, DynamoDB, CloudWatch, ECR)",
        tags=team.tags,
        opts=child,
    )
    if args.registry_security_group_id is not None:
        # MLflow, through its internal NLB: out from the variants, into the NLB from them only.
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-mlflow-out",
            security_group_id=security_group.id,
            referenced_security_group_id=args.registry_security_group_id,
            description="MLflow through its internal load balancer",
            tags=team.tags,
            ip_protocol="tcp",
            from_port=TRACKING_PORT,
            to_port=TRACKING_PORT,
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-mlflow-in",
            security_group_id=args.registry_security_group_id,
            referenced_security_group_id=security_group.id,
            description=f"From the variants of SageMaker endpoint {physical}",
            tags=team.tags,
            ip_protocol="tcp",
            from_port=TRACKING_PORT,
            to_port=TRACKING_PORT,
            opts=child,
        )
    # SageMaker's identity for this endpoint: the serving pod's reads, the image, its logs.
    role = aws.iam.Role(
        f"{name}-execution-role",
        name=team.physical(f"sagemaker-{endpoint.name}"),
        assume_role_policy=pulumi.Output.all(account, partition).apply(
            lambda v: json.dumps(trust_policy(v[0], v[1], team.region))
        ),
        max_session_duration=3600,
        tags=team.tags,
        opts=child,
    )
    policy = pulumi.Output.all(
        base=args.policy,
        partition=partition,
        account=account,
        bucket=data.artifact_bucket,
        repository=args.repository_arn,
        subnets=args.cluster.private_subnet_ids,
        sg=security_group.id,
    ).apply(
        lambda v: json.dumps(
            execution_policy(
                base=json.loads(v["base"]),
                partition=v["partition"],
                region=team.region,
                account=v["account"],
                artifact_bucket=v["bucket"],
                endpoint=physical,
                repository_arn=v["repository"],
                subnet_ids=v["subnets"],
                security_group_id=v["sg"],
            )
        )
    )
    role_policy = aws.iam.RolePolicy(
        f"{name}-execution-policy", role=role.name, policy=policy, opts=child
    )

    def rendered(settings: dict[str, Any], alias: str) -> dict[str, str]:
        env = container_env(settings, endpoint=endpoint, alias=alias)
        return {k: str(v) for k, v in env.items()}

    models: dict[str, aws.sagemaker.Model] = {}
    for alias in variants(endpoint):
        env = pulumi.Output.all(**args.settings).apply(functools.partial(rendered, alias=alias))
        # One model per variant: the runtime image serving one alias (no model data: the
        # variant loads the alias's version from the registry and follows it).
        models[alias] = aws.sagemaker.Model(
            f"{name}-{alias}-model",
            execution_role_arn=role.arn,
            primary_container=aws.sagemaker.ModelPrimaryContainerArgs(
                image=team.image, mode="SingleModel", environment=env
            ),
            vpc_config=aws.sagemaker.ModelVpcConfigArgs(
                subnets=args.cluster.private_subnet_ids,
                security_group_ids=[security_group.id],
            ),
            tags=team.tags,
            # The role's policy first: SageMaker checks it can pull the image on create.
            opts=pulumi.ResourceOptions(parent=parent, depends_on=[role_policy]),
        )

    def variant(alias: str, weight: float | None) -> dict[str, Any]:
        fields: dict[str, Any] = dict(
            variant_name=alias,
            model_name=models[alias].name,
            instance_type=capacity.instance_type,
            initial_instance_count=capacity.initial_count,
            volume_size_in_gb=endpoint.sagemaker_settings.volume_size_gb,
        )
        if weight is not None:
            fields["initial_variant_weight"] = weight
        return fields

    shares = weights(endpoint)
    production = [
        aws.sagemaker.EndpointConfigurationProductionVariantArgs(**variant(a, w))
        for a, w in shares.items()
    ]
    shadow = (
        [
            aws.sagemaker.EndpointConfigurationShadowProductionVariantArgs(
                **variant(metrics.VARIANT_CHALLENGER, 1.0)
            )
        ]
        if endpoint.shadow
        else None
    )
    capture_uri = data.artifact_bucket.apply(
        lambda bucket: f"s3://{bucket}/{DATA_CAPTURE_PREFIX}/{physical}/"
    )
    # Immutable: a change makes a new configuration (auto-named), which the endpoint deploys
    # blue/green.
    config = aws.sagemaker.EndpointConfiguration(
        f"{name}-config",
        production_variants=production,
        shadow_production_variants=shadow,
        # The ML storage volume of each instance.
        kms_key_arn=key_arn,
        data_capture_config=aws.sagemaker.EndpointConfigurationDataCaptureConfigArgs(
            enable_capture=True,
            initial_sampling_percentage=DATA_CAPTURE_PERCENT,
            destination_s3_uri=capture_uri,
            kms_key_id=key_arn,
            capture_options=[
                aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureOptionArgs(
                    capture_mode=mode
                )
                for mode in ("Input", "Output")
            ],
            capture_content_type_header=aws.sagemaker.EndpointConfigurationDataCaptureConfigCaptureContentTypeHeaderArgs(
                json_content_types=CAPTURE_JSON, csv_content_types=CAPTURE_CSV
            ),
        ),
        tags=team.tags,
        opts=child,
    )
    # A new configuration reaches traffic in steps: a canary share of the new fleet first,
    # rolled back if an alarm fires while it bakes.
    sagemaker_endpoint = aws.sagemaker.Endpoint(
        f"{name}-endpoint",
        name=physical,
        endpoint_config_name=config.name,
        deployment_config=aws.sagemaker.EndpointDeploymentConfigArgs(
            blue_green_update_policy=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyArgs(
                traffic_routing_configuration=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationArgs(
                    type="CANARY",
                    wait_interval_in_seconds=CANARY_WAIT_SECONDS,
                    canary_size=aws.sagemaker.EndpointDeploymentConfigBlueGreenUpdatePolicyTrafficRoutingConfigurationCanarySizeArgs(
                        type="CAPACITY_PERCENT", value=CANARY_PERCENT
                    ),
                ),
                termination_wait_in_seconds=TERMINATION_WAIT_SECONDS,
            ),
            auto_rollback_configuration=aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationArgs(
                alarms=[
                    aws.sagemaker.EndpointDeploymentConfigAutoRollbackConfigurationAlarmArgs(
                        alarm_name=alarm
                    )
                    for alarm in args.rollback_alarms
                ]
            )
            if args.rollback_alarms
            else None,
        ),
        tags=team.tags,
        opts=child,
    )
    for alias in shares:
        _autoscaling(name, alias, sagemaker_endpoint, capacity, parent)
    return role.arn


def _autoscaling(
    name: str,
    alias: str,
    endpoint: aws.sagemaker.Endpoint,
    capacity: SageMakerInstances,
    parent: pulumi.Resource,
) -> None:
    resource_id = endpoint.name.apply(lambda e: f"endpoint/{e}/variant/{alias}")
    # The autoscaler owns the variant's instance count between the configured bounds.
    target = aws.appautoscaling.Target(
        f"{name}-{alias}-scaling",
        service_namespace="sagemaker",
        scalable_dimension=DESIRED_INSTANCE_COUNT,
        resource_id=resource_id,
        min_capacity=capacity.min_count,
        max_capacity=capacity.max_count,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    aws.appautoscaling.Policy(
        f"{name}-{alias}-invocations",
        policy_type="TargetTrackingScaling",
        service_namespace=target.service_namespace,
        scalable_dimension=target.scalable_dimension,
        resource_id=target.resource_id,
        target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
            target_value=capacity.target_invocations_per_instance,
            predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                predefined_metric_type=INVOCATIONS_PER_INSTANCE
            ),
            scale_in_cooldown=SCALE_IN_COOLDOWN,
            scale_out_cooldown=SCALE_OUT_COOLDOWN,
        ),
        opts=pulumi.ResourceOptions(parent=parent),
    )
