"""`mlops:training:TrainingCompute`: the team's training identity, node pools and scheduled pipelines.

The planning arithmetic (node labels, taints, autoscaler tags, AMI, IAM documents) is plain
functions, unit-tested without mocks; the component only turns their answers into resources.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import aws_values, naming, workload
from components.config.resources import ContainerResources
from components.config.training import Capacity, NodePool, TrainingConfig, TrainingPipeline
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
from components.team import ClusterInfo, DataPlane, Team
from components.workload import CRONJOB_STARTING_DEADLINE, runtime_env
from runtime.spec import PipelineSpec

TRAINING_SERVICE_ACCOUNT = "training"
NODE_POOL_LABEL = "mlops.dev/node-pool"
"""Node label (and taint key) naming the team's pool: `<team>.<pool>`, unique in the cluster."""
TEAM_LABEL = "mlops.dev/team"
GPU_TAINT_VALUE = "true"
NODE_MANAGED_POLICIES = (
    "AmazonEKSWorkerNodePolicy",
    "AmazonEKS_CNI_Policy",
    "AmazonEC2ContainerRegistryReadOnly",
)
"""The AWS-managed policies an EKS node needs: join the cluster, run the VPC CNI, pull images."""
AUTOSCALER_PREFIX = "k8s.io/cluster-autoscaler"
NODE_TEMPLATE_PREFIX = f"{AUTOSCALER_PREFIX}/node-template"
NODE_GROUP_PREFIX_MAX = 37  # EKS appends a 26-character unique suffix to a name prefix (63 max)
K8S_EFFECTS = {"NoSchedule": "NO_SCHEDULE", "PreferNoSchedule": "PREFER_NO_SCHEDULE"}


# --- planning arithmetic: plain functions -------------------------------------------------------


@dataclass(frozen=True)
class Taint:
    key: str
    value: str
    effect: str = "NoSchedule"

    @property
    def eks_effect(self) -> str:
        """The effect as the EKS API spells it (`NO_SCHEDULE`)."""
        return K8S_EFFECTS[self.effect]

    def __str__(self) -> str:
        return f"{self.value}:{self.effect}"


def pool_id(team: str, pool: str) -> str:
    """The pool's cluster-wide identity (team pools share the cluster: `cpu` is not unique)."""
    return f"{team}.{pool}"


def pool_gpus(pool: NodePool) -> int:
    """GPUs every node of the pool has for sure (the smallest instance type's count)."""
    return min(naming.gpus_per_instance(t) for t in pool.instance_types)


def node_labels(team: str, pool: NodePool) -> dict[str, str]:
    return {TEAM_LABEL: team, NODE_POOL_LABEL: pool_id(team, pool.name)}


def node_taints(team: str, pool: NodePool) -> list[Taint]:
    """Only pods that ask for the pool land on it; GPU nodes also repel every non-GPU pod."""
    taints = [Taint(NODE_POOL_LABEL, pool_id(team, pool.name))]
    if any(naming.is_gpu_instance(t) for t in pool.instance_types):
        taints.append(Taint(workload.GPU_RESOURCE, GPU_TAINT_VALUE))
    return taints


def ami_type(instance_types: Sequence[str]) -> str:
    """The EKS-optimized AL2023 AMI for the pool's hardware (architecture and accelerator, from
    the AWS table): NVIDIA for GPU types, Neuron for Inferentia/Trainium, ARM for Graviton."""
    known = [h for t in instance_types if (h := aws_values.family(t)) is not None]
    if known:
        architecture = "ARM_64" if known[0].architecture == "arm64" else "x86_64"
        accelerators = {h.accelerator for h in known}
        kind = (
            "NVIDIA"
            if "nvidia" in accelerators
            else "NEURON"
            if "neuron" in accelerators
            else "STANDARD"
        )
        return f"AL2023_{architecture}_{kind}"
    # A type newer than the table: guess from the name (the preflight says if it was wrong).
    if any(naming.is_gpu_instance(t) for t in instance_types):
        return "AL2023_x86_64_NVIDIA"
    family = instance_types[0].split(".", 1)[0]
    graviton = len(family) > 2 and family[1].isdigit() and family[2] == "g"
    return "AL2023_ARM_64_STANDARD" if graviton else "AL2023_x86_64_STANDARD"


def capacity_type(capacity: Capacity) -> str:
    return "SPOT" if capacity == Capacity.spot else "ON_DEMAND"


def autoscaler_tags(cluster: str, team: str, pool: NodePool) -> dict[str, str]:
    """Tags the cluster autoscaler needs: discovery, and what a node would be (scale from zero)."""
    tags = {f"{AUTOSCALER_PREFIX}/enabled": "true", f"{AUTOSCALER_PREFIX}/{cluster}": "owned"}
    tags |= node_template_tags(team, pool)
    return tags


def node_template_tags(team: str, pool: NodePool) -> dict[str, str]:
    """Labels, taints and GPUs of a node the pool does not have yet (it may be at zero)."""
    tags = {f"{NODE_TEMPLATE_PREFIX}/label/{k}": v for k, v in node_labels(team, pool).items()}
    tags |= {f"{NODE_TEMPLATE_PREFIX}/taint/{t.key}": str(t) for t in node_taints(team, pool)}
    if gpus := pool_gpus(pool):
        tags[f"{NODE_TEMPLATE_PREFIX}/resources/{workload.GPU_RESOURCE}"] = str(gpus)
    return tags


def tag_slug(key: str) -> str:
    """A resource-name-safe, stable suffix for a node-template tag key."""
    return key.removeprefix(f"{NODE_TEMPLATE_PREFIX}/").replace("/", "-").replace(".", "-")


def tolerations(team: str, pool: NodePool) -> list[k8s.core.v1.TolerationArgs]:
    return [
        k8s.core.v1.TolerationArgs(key=t.key, operator="Equal", value=t.value, effect=t.effect)
        for t in node_taints(team, pool)
    ]


def pipeline_resources(pipeline: TrainingPipeline, pool: NodePool) -> ContainerResources:
    """The pipeline's requests; on a GPU pool it asks for at least one GPU (else it gets none)."""
    if pool_gpus(pool) and not pipeline.resources.gpu:
        return pipeline.resources.model_copy(update={"gpu": 1})
    return pipeline.resources


def pipeline_spec(pipeline: TrainingPipeline) -> PipelineSpec:
    """The part of the pipeline's config the runtime reads (the contract's PipelineSpec); a
    continuous-training lease lasts the pipeline's deadline unless set."""
    spec = PipelineSpec.model_validate(
        pipeline.model_dump(include=set(PipelineSpec.model_fields), by_alias=True)
    )
    ct = spec.continuous_training
    if ct is not None and ct.lease is None:
        ct = ct.model_copy(update={"lease": pipeline.deadline})
        spec = spec.model_copy(update={"continuous_training": ct})
    return spec


def training_policy(
    *,
    team: str,
    offline_bucket_arn: str,
    online_table_arns: Sequence[str],
    artifact_bucket_arn: str,
    artifact_uri: str,
    kms_key_arns: Sequence[str],
    feast_registry_uri: str | None,
    feast_registry_connect_arn: str | None = None,
) -> dict[str, Any]:
    """Read features, (re)apply the Feast registry, write models under the artifact root, put metrics.

    A SQL Feast registry: also log in to the registry database as the Feast role (IAM token).
    """
    partition = naming.arn_partition(artifact_bucket_arn)
    return policy_document(
        *read_bucket_statements("ReadOfflineFeatures", offline_bucket_arn),
        *feast_registry_statements(
            feast_registry_uri,
            partition,
            write=True,
            connect_arn=feast_registry_connect_arn,
        ),
        *online_read_statement("ReadOnlineFeatures", online_table_arns, describe=True),
        statement(
            "ListArtifacts", ["s3:ListBucket", "s3:GetBucketLocation"], [artifact_bucket_arn]
        ),
        # The one identity that writes models (MLflow proxies no upload): under the artifact root.
        statement(
            "WriteArtifacts",
            ["s3:GetObject", "s3:PutObject"],
            [f"{naming.s3_arn(artifact_uri, partition).rstrip('/')}/*"],
        ),
        *kms_statement(kms_key_arns, encrypt=True),
        metrics_statement(team),
    )


def node_trust_policy() -> dict[str, Any]:
    return policy_document(
        {
            "Sid": "EC2Nodes",
            "Effect": "Allow",
            "Principal": {"Service": "ec2.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    )


# --- the component ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class TrainingComputeArgs:
    team: Team
    cluster: ClusterInfo
    namespace: pulumi.Input[str]
    """The team namespace (an output, so workloads wait for it)."""
    data_plane: DataPlane
    training: TrainingConfig
    alert_topic_arn: pulumi.Input[str] | None = None
    """The team's alert topic: continuous training tells it what it decided."""


class TrainingCompute(pulumi.ComponentResource):
    """Where and as whom the team's models train: IRSA identity, node pools, one CronJob each."""

    role_arn: pulumi.Output[str]
    """ARN of the IAM role the training pods assume."""
    role_name: pulumi.Output[str]
    """Its name (the monitoring component lets it publish continuous training's notices)."""
    service_account: pulumi.Output[str]
    """Name of the training service account."""
    node_role_arn: pulumi.Output[str] | None
    """ARN of the node role of the team's node pools (None without pools)."""
    node_groups: dict[str, pulumi.Output[str]]
    """Node pool name -> EKS node group name."""
    cronjobs: dict[str, pulumi.Output[str]]
    """Pipeline name -> CronJob name."""

    def __init__(
        self, name: str, args: TrainingComputeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("mlops:training:TrainingCompute", name, None, opts)
        team, cluster, data = args.team, args.cluster, args.data_plane
        settings = data.settings

        # The one identity every training pod runs as: features in, models out, nothing else.
        identity = WorkloadIdentity(
            f"{name}-identity",
            team=team,
            cluster=cluster,
            namespace=args.namespace,
            service_account=TRAINING_SERVICE_ACCOUNT,
            policy=json_policy(
                training_policy,
                team=team.name,
                offline_bucket_arn=data.offline_bucket_arn,
                online_table_arns=data.online_table_arns,
                artifact_bucket_arn=data.artifact_bucket_arn,
                artifact_uri=data.settings["artifact_uri"],
                kms_key_arns=data.kms_key_arns,
                feast_registry_uri=settings.get("feast_registry_uri"),
                **login_grant(data.feast_registry_database),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.role_arn = identity.role.arn
        self.role_name = identity.role.name
        self.service_account = workload.name_of(identity.service_account)

        self.node_role_arn = None
        self.node_groups = {}
        if args.training.node_pools:
            node_role = self._node_role(name, team)
            self.node_role_arn = node_role.arn
            for pool in sorted(args.training.node_pools, key=lambda p: p.name):
                self.node_groups[pool.name] = self._node_group(name, team, cluster, node_role, pool)

        pools = {pool.name: pool for pool in args.training.node_pools}
        self.cronjobs = {}
        for pipeline in sorted(args.training.pipelines, key=lambda p: p.name):
            self.cronjobs[pipeline.name] = self._cronjob(
                name, args, pipeline, pools[pipeline.node_pool], identity
            )

        self.register_outputs(
            {
                "roleArn": self.role_arn,
                "serviceAccount": self.service_account,
                "nodeRoleArn": self.node_role_arn,
                "nodeGroups": self.node_groups,
                "cronjobs": self.cronjobs,
            }
        )

    def _node_role(self, name: str, team: Team) -> aws.iam.Role:
        child = pulumi.ResourceOptions(parent=self)
        # Nodes of the team's pools join the cluster as this role (EKS adds its access entry).
        role = aws.iam.Role(
            f"{name}-node-role",
            name=team.physical("training-nodes"),
            assume_role_policy=json.dumps(node_trust_policy()),
            tags=team.tags,
            opts=child,
        )
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self))
        for policy in NODE_MANAGED_POLICIES:
            # Exactly the managed policies a node needs; anything more belongs to a pod's IRSA role.
            aws.iam.RolePolicyAttachment(
                f"{name}-node-{policy}",
                role=role.name,
                policy_arn=pulumi.Output.concat(
                    "arn:", partition.partition, f":iam::aws:policy/{policy}"
                ),
                opts=child,
            )
        return role

    def _node_group(
        self, name: str, team: Team, cluster: ClusterInfo, role: aws.iam.Role, pool: NodePool
    ) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        tags = cluster.name.apply(lambda c: {**team.tags, **autoscaler_tags(c, team.name, pool)})
        # One managed node group per pool, in the private subnets, scaling from its minimum (0).
        group = aws.eks.NodeGroup(
            f"{name}-pool-{pool.name}",
            cluster_name=cluster.name,
            node_group_name_prefix=naming.fit(f"{team.stack}-{pool.name}", NODE_GROUP_PREFIX_MAX)
            + "-",
            node_role_arn=role.arn,
            subnet_ids=cluster.private_subnet_ids,
            instance_types=list(pool.instance_types),
            capacity_type=capacity_type(pool.capacity),
            ami_type=ami_type(pool.instance_types),
            disk_size=pool.disk_gb,
            scaling_config=aws.eks.NodeGroupScalingConfigArgs(
                min_size=pool.min_nodes, desired_size=pool.min_nodes, max_size=pool.max_nodes
            ),
            update_config=aws.eks.NodeGroupUpdateConfigArgs(max_unavailable=1),
            labels=node_labels(team.name, pool),
            taints=[
                aws.eks.NodeGroupTaintArgs(key=t.key, value=t.value, effect=t.eks_effect)
                for t in node_taints(team.name, pool)
            ],
            tags=tags,
            # The cluster autoscaler owns the current size; a deploy must not reset it.
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["scalingConfig.desiredSize"]),
        )
        asg = group.resources.apply(lambda r: r[0].autoscaling_groups[0].name)  # type: ignore[index]
        for key, value in node_template_tags(team.name, pool).items():
            # EKS does not copy node-group tags to its Auto Scaling group; the autoscaler reads
            # the node template (labels, taints, GPUs) of an empty group only from there.
            aws.autoscaling.Tag(
                f"{name}-pool-{pool.name}-{tag_slug(key)}",
                autoscaling_group_name=asg,
                tag=aws.autoscaling.TagTagArgs(key=key, value=value, propagate_at_launch=False),
                opts=child,
            )
        return group.node_group_name

    def _cronjob(
        self,
        name: str,
        args: TrainingComputeArgs,
        pipeline: TrainingPipeline,
        pool: NodePool,
        identity: WorkloadIdentity,
    ) -> pulumi.Output[str]:
        team = args.team
        # A SQL Feast registry: the database login (sidecar, password file) comes along.
        login = database_login(args.data_plane.feast_registry_database, team.image)
        labels = {**workload.labels(team.labels, "training", pipeline.name), **login.labels}
        continuous = pipeline.continuous_training is not None
        # Continuous training: the schedule is when the job checks whether a retrain is due.
        container = workload.runtime_container(
            "train",
            image=team.image,
            args=["train", "--pipeline", pipeline.name, *(["--if-due"] if continuous else [])],
            env_vars=[
                *runtime_env(
                    args.data_plane,
                    team,
                    pipelines=[pipeline_spec(pipeline)],
                    events_uri=args.data_plane.events_uri() if continuous else None,
                    alert_topic_arn=args.alert_topic_arn if continuous else None,
                ),
                *login.env,
            ],
            spec=pipeline_resources(pipeline, pool),
            extra_mounts=login.mounts,
        )
        pod = workload.pod_spec(
            [container],
            service_account=workload.name_of(identity.service_account),
            volumes=login.volumes,
            init_containers=login.init_containers,
            restart_policy="Never",
            node_selector=node_labels(team.name, pool),
            tolerations=tolerations(team.name, pool),
        )
        # The pipeline's schedule: one run at a time, bounded in time and retries.
        cronjob = workload.cron_job(
            f"{name}-train-{pipeline.name}",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=naming.cronjob_name("train", pipeline.name),
                namespace=args.namespace,
                labels=labels,
            ),
            labels=labels,
            schedule=pipeline.schedule,
            pod=pod,
            retries=pipeline.retries,
            deadline_seconds=int(pipeline.deadline.total_seconds()),
            starting_deadline_seconds=CRONJOB_STARTING_DEADLINE,
            pod_failure_policy=workload.SPOT_RECLAIM_IS_NOT_A_FAILURE,
            opts=pulumi.ResourceOptions(parent=self, provider=args.cluster.provider),
        )
        return workload.name_of(cronjob)
