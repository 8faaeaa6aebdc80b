"""TrainingCompute: planning arithmetic without mocks, then every example stack's plan."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from components import naming
from components.config import StackConfig, load_stack_file
from components.config.cluster import StackReferenceCluster
from components.config.training import Capacity, NodePool, TrainingPipeline
from components.iam import db_user_arn
from components.training import (
    NODE_MANAGED_POLICIES,
    Taint,
    ami_type,
    autoscaler_tags,
    node_labels,
    node_taints,
    pipeline_resources,
    pipeline_spec,
    pool_gpus,
    tag_slug,
    training_policy,
)
from runtime.settings import ENV_PREFIX, Settings
from runtime.spec import PipelineSpec
from tests.conftest import STACKS, planned
from tooling.mocks import platform_outputs
from tooling.plan import Plan, PlannedResource, plan_stack


def plan_compute(stack: str | Path) -> Plan:
    """The plan of an example stack (cached) or of a stack file."""
    return planned(stack) if isinstance(stack, str) else plan_stack(stack)


def config_of(stack: str) -> StackConfig:
    return load_stack_file(STACKS / f"Pulumi.{stack}.yaml").config


def expected_cluster(stack: str) -> dict[str, Any]:
    """What the planned cluster reference resolves to (platform stack outputs or given values)."""
    loaded = load_stack_file(STACKS / f"Pulumi.{stack}.yaml")
    cluster = loaded.config.cluster
    if isinstance(cluster, StackReferenceCluster):
        return platform_outputs(cluster.stack_reference, loaded.region)
    return {
        "clusterName": cluster.name,
        "oidcProviderArn": cluster.oidc_provider_arn,
        "oidcProviderUrl": cluster.oidc_provider_url,
        "privateSubnetIds": cluster.private_subnet_ids,
    }


def child(plan: Plan, type_: str, name: str) -> PlannedResource:
    return plan.one(type_, name)


def env_of(container: dict[str, Any]) -> dict[str, str]:
    # Values only: an entry from the downward API (valueFrom) has none until the pod runs.
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The runtime's view of a planned container env (and nothing else): the contract, parsed."""
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        assert isinstance(value, str), f"{name} is not a resolved string: {value!r}"
        monkeypatch.setenv(name, value)
    return Settings()


def trust_of(role: PlannedResource) -> dict[str, Any]:
    return json.loads(role.inputs["assumeRolePolicy"])


def actions_of(document: dict[str, Any]) -> set[str]:
    return {a for s in document["Statement"] for a in s["Action"]}


def assert_irsa_trust(role: PlannedResource, stack: str, namespace: str, account: str) -> None:
    cluster = expected_cluster(stack)
    issuer = cluster["oidcProviderUrl"].removeprefix("https://")
    (only,) = trust_of(role)["Statement"]
    assert only["Effect"] == "Allow"
    assert only["Principal"] == {"Federated": cluster["oidcProviderArn"]}
    assert only["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert only["Condition"] == {
        "StringEquals": {
            f"{issuer}:sub": f"system:serviceaccount:{namespace}:{account}",
            f"{issuer}:aud": "sts.amazonaws.com",
        }
    }


def sql_registry(stack: str) -> bool:
    return config_of(stack).feature_store.registry.type == "sql"


def feast_db_user(plan: Plan) -> str:
    """The `rds-db:connect` resource of the Feast role on this stack's registry database."""
    (instance,) = plan.of_type("aws:rds/instance:Instance")
    return db_user_arn(instance.outputs["arn"], instance.outputs["resourceId"], "feast")


def assert_registry_login(
    plan: Plan, pod: dict[str, Any], name: str, policy: dict[str, Any], *, sql: bool
) -> None:
    """Container ``name`` of ``pod`` can log in to the registry database (credentials sidecar,
    PGPASSFILE, memory-backed volume, an IAM token for the `feast` role) exactly when ``sql``;
    never with the master secret."""
    (main,) = [c for c in pod["containers"] if c["name"] == name]
    sidecars = [c for c in pod.get("initContainers", []) if c["name"] == "db-credentials"]
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m for m in main.get("volumeMounts", [])}
    logins = [s for s in policy["Statement"] if "rds-db:connect" in s["Action"]]
    assert not [s for s in policy["Statement"] if "secretsmanager:GetSecretValue" in s["Action"]]
    if not sql:
        assert sidecars == [] and "initContainers" not in pod
        assert "PGPASSFILE" not in env_of(main)
        assert "db-credentials" not in volumes and "db-credentials" not in mounts
        assert logins == []
        return
    (sidecar,) = sidecars
    assert sidecar["restartPolicy"] == "Always", "a native sidecar"
    assert sidecar["startupProbe"]["exec"]["command"] == ["test", "-s", "/var/run/mlops-db/pgpass"]
    assert sidecar["image"] == main["image"]
    (instance,) = plan.of_type("aws:rds/instance:Instance")
    sidecar_env = env_of(sidecar)
    assert "DB_SECRET_ARN" not in sidecar_env
    assert (sidecar_env["DB_HOST"], sidecar_env["DB_USER"]) == (
        instance.outputs["address"],
        "feast",
    )
    assert env_of(main)["PGPASSFILE"] == sidecar_env["PGPASSFILE"] == "/var/run/mlops-db/pgpass"
    assert volumes["db-credentials"]["emptyDir"]["medium"] == "Memory"
    assert mounts["db-credentials"] == {
        "name": "db-credentials",
        "mountPath": "/var/run/mlops-db",
        "readOnly": True,
    }
    (login,) = logins
    assert login["Action"] == ["rds-db:connect"]
    assert login["Resource"] == [feast_db_user(plan)]


def assert_hardened(pod: dict[str, Any]) -> None:
    """Pod Security `restricted`, and a read-only root with only the scratch volume writable."""
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["runAsNonRoot"] is True
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert set(container["resources"]["requests"]) >= {"cpu", "memory"}
        assert set(container["resources"]["limits"]) >= {"cpu", "memory"}


# --- planning arithmetic ----------------------------------------------------------------------


GPU_POOL = NodePool(name="gpu", instance_types=["g5.xlarge", "g5.12xlarge"], max_nodes=4)
CPU_POOL = NodePool(name="cpu", instance_types=["m6i.2xlarge"], capacity=Capacity.on_demand)


def test_a_pool_is_labelled_and_tainted_with_its_cluster_wide_identity() -> None:
    assert node_labels("fraud", CPU_POOL) == {
        "mlops.dev/team": "fraud",
        "mlops.dev/node-pool": "fraud.cpu",
    }
    assert node_taints("fraud", CPU_POOL) == [Taint("mlops.dev/node-pool", "fraud.cpu")]


def test_a_gpu_pool_also_repels_pods_that_do_not_ask_for_gpus() -> None:
    assert node_taints("fraud", GPU_POOL) == [
        Taint("mlops.dev/node-pool", "fraud.gpu"),
        Taint("nvidia.com/gpu", "true"),
    ]
    assert [t.eks_effect for t in node_taints("fraud", GPU_POOL)] == ["NO_SCHEDULE"] * 2


@pytest.mark.parametrize(
    ("types", "gpus"),
    [
        pytest.param(["g5.xlarge", "g5.12xlarge"], 1, id="mixed: the smallest count"),
        pytest.param(["p4d.24xlarge"], 8, id="p4d"),
        pytest.param(["m6i.xlarge"], 0, id="cpu"),
    ],
)
def test_pool_gpus_is_what_every_node_has(types: list[str], gpus: int) -> None:
    assert pool_gpus(NodePool(name="p1", instance_types=types)) == gpus


@pytest.mark.parametrize(
    ("types", "ami"),
    [
        pytest.param(["g5.xlarge"], "AL2023_x86_64_NVIDIA", id="gpu"),
        pytest.param(["m6i.2xlarge"], "AL2023_x86_64_STANDARD", id="intel"),
        pytest.param(["r6a.4xlarge"], "AL2023_x86_64_STANDARD", id="amd"),
        pytest.param(["m7g.xlarge"], "AL2023_ARM_64_STANDARD", id="graviton"),
        pytest.param(["c6gd.large"], "AL2023_ARM_64_STANDARD", id="graviton-disk"),
    ],
)
def test_ami_type_follows_the_instance_types(types: list[str], ami: str) -> None:
    assert ami_type(types) == ami


def test_autoscaler_tags_let_an_empty_pool_scale_from_zero() -> None:
    prefix = "k8s.io/cluster-autoscaler"
    assert autoscaler_tags("prod-eks", "fraud", GPU_POOL) == {
        f"{prefix}/enabled": "true",
        f"{prefix}/prod-eks": "owned",
        f"{prefix}/node-template/label/mlops.dev/team": "fraud",
        f"{prefix}/node-template/label/mlops.dev/node-pool": "fraud.gpu",
        f"{prefix}/node-template/taint/mlops.dev/node-pool": "fraud.gpu:NoSchedule",
        f"{prefix}/node-template/taint/nvidia.com/gpu": "true:NoSchedule",
        f"{prefix}/node-template/resources/nvidia.com/gpu": "1",
    }
    assert f"{prefix}/node-template/resources/nvidia.com/gpu" not in autoscaler_tags(
        "prod-eks", "fraud", CPU_POOL
    )


def test_tag_slugs_are_stable_resource_name_suffixes() -> None:
    assert (
        tag_slug("k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu")
        == "taint-nvidia-com-gpu"
    )


PIPELINE = TrainingPipeline.model_validate(
    {
        "name": "fraud-model",
        "schedule": "0 3 * * 0",
        "nodePool": "gpu",
        "labels": {"path": "labels/", "target": "is_fraud"},
        "features": ["card_txn_stats:txn_count_7d"],
        "retries": 4,
        "deadline": "2h",
    }
)


def test_a_pipeline_on_a_gpu_pool_asks_for_a_gpu() -> None:
    assert pipeline_resources(PIPELINE, GPU_POOL).gpu == 1
    assert pipeline_resources(PIPELINE, CPU_POOL).gpu == 0
    assert PIPELINE.deadline == timedelta(hours=2)


def test_the_runtime_gets_the_pipeline_spec_without_infrastructure_fields() -> None:
    spec = pipeline_spec(PIPELINE)
    assert type(spec) is PipelineSpec
    assert spec.name == "fraud-model" and spec.labels.target == "is_fraud"
    assert not {"schedule", "node_pool", "retries", "deadline"} & set(spec.model_dump())


def _policy(registry: str | None = "s3://off/feast/registry.pb", **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "team": "fraud",
        "offline_bucket_arn": "arn:aws:s3:::off",
        "online_table_arns": ["arn:aws:dynamodb:eu-west-1:123456789012:table/fraud.card"],
        "artifact_bucket_arn": "arn:aws:s3:::art",
        "artifact_uri": "s3://art/artifacts",
        "kms_key_arns": [],
        "feast_registry_uri": registry,
    }
    return training_policy(**(values | overrides))


def test_training_policy_reads_features_and_writes_only_the_registry_bucket() -> None:
    document = _policy()
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["ReadOfflineFeaturesGet"]["Resource"] == ["arn:aws:s3:::off/*"]
    assert by_sid["FeastRegistry"]["Resource"] == ["arn:aws:s3:::off/feast/registry.pb"]
    assert by_sid["WriteArtifacts"] == {
        "Sid": "WriteArtifacts",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject"],
        "Resource": ["arn:aws:s3:::art/artifacts/*"],
    }
    assert by_sid["PutTeamMetrics"]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "MLOps/fraud"}
    }
    writes = {
        r for s in document["Statement"] if "s3:PutObject" in s["Action"] for r in s["Resource"]
    }
    assert writes == {"arn:aws:s3:::art/artifacts/*", "arn:aws:s3:::off/feast/registry.pb"}


def test_a_sql_feast_registry_needs_the_database_login_not_an_s3_object() -> None:
    connect = "arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-X/feast"
    document = _policy(
        "postgresql://feast@db.example:5432/feast_registry?sslmode=require",
        feast_registry_connect_arn=connect,
    )
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert "FeastRegistry" not in by_sid
    assert by_sid["DatabaseLogin"]["Action"] == ["rds-db:connect"]
    assert by_sid["DatabaseLogin"]["Resource"] == [connect]
    assert "rds-db:connect" not in actions_of(_policy())


def test_training_policy_leaves_out_what_the_data_plane_does_not_have() -> None:
    sids = {s["Sid"] for s in _policy(None, online_table_arns=[])["Statement"]}
    assert not {"FeastRegistry", "ReadOnlineFeatures", "UseDataKeys"} & sids
    keyed = _policy(kms_key_arns=["arn:aws:kms:eu-west-1:123456789012:key/k"])
    assert "kms:GenerateDataKey" in actions_of(keyed)


# --- every example stack ----------------------------------------------------------------------


def test_training_identity_is_bound_to_its_service_account(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    team = config_of(example_stack).team
    role = child(plan, "aws:iam/role:Role", "training-identity-role")
    assert_irsa_trust(role, example_stack, naming.namespace_name(team), "training")
    account = child(plan, "kubernetes:core/v1:ServiceAccount", "training-identity-sa")
    annotations = account.inputs["metadata"]["annotations"]
    assert annotations == {"eks.amazonaws.com/role-arn": role.outputs["arn"]}


def test_training_policy_has_no_wildcard_action(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    policy = json.loads(
        child(plan, "aws:iam/rolePolicy:RolePolicy", "training-identity-policy").inputs["policy"]
    )
    actions = actions_of(policy)
    assert not [a for a in actions if a == "*" or a.endswith("*")]
    assert actions <= {
        "s3:ListBucket",
        "s3:GetBucketLocation",
        "s3:GetObject",
        "s3:PutObject",
        "dynamodb:GetItem",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:GenerateDataKey",
        "cloudwatch:PutMetricData",
        *(["rds-db:connect"] if sql_registry(example_stack) else []),
    }
    (metrics,) = [s for s in policy["Statement"] if "cloudwatch:PutMetricData" in s["Action"]]
    team = config_of(example_stack).team
    assert metrics["Condition"] == {"StringEquals": {"cloudwatch:namespace": f"MLOps/{team}"}}


def test_one_node_group_per_pool_scaling_from_zero(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    config = config_of(example_stack)
    cluster = expected_cluster(example_stack)
    groups = plan.of_type("aws:eks/nodeGroup:NodeGroup")
    assert sorted(g.name for g in groups) == sorted(
        f"training-pool-{p.name}" for p in config.training.node_pools
    )
    role = child(plan, "aws:iam/role:Role", "training-node-role")
    for pool in config.training.node_pools:
        group = child(plan, "aws:eks/nodeGroup:NodeGroup", f"training-pool-{pool.name}")
        inputs = group.inputs
        assert inputs["clusterName"] == cluster["clusterName"]
        assert inputs["subnetIds"] == cluster["privateSubnetIds"]
        assert inputs["nodeRoleArn"] == role.outputs["arn"]
        assert inputs["instanceTypes"] == pool.instance_types
        assert inputs["capacityType"] == ("SPOT" if pool.capacity == Capacity.spot else "ON_DEMAND")
        assert inputs["scalingConfig"] == {
            "minSize": 0,
            "desiredSize": 0,
            "maxSize": pool.max_nodes,
        }
        assert inputs["diskSize"] == pool.disk_gb
        pool_id = f"{config.team}.{pool.name}"
        assert inputs["labels"] == {"mlops.dev/team": config.team, "mlops.dev/node-pool": pool_id}
        taints = {(t["key"], t["value"], t["effect"]) for t in inputs["taints"]}
        gpu = any(naming.is_gpu_instance(t) for t in pool.instance_types)
        assert taints == {("mlops.dev/node-pool", pool_id, "NO_SCHEDULE")} | (
            {("nvidia.com/gpu", "true", "NO_SCHEDULE")} if gpu else set()
        )
        tags = inputs["tags"]
        prefix = "k8s.io/cluster-autoscaler"
        assert tags[f"{prefix}/enabled"] == "true"
        assert tags[f"{prefix}/{cluster['clusterName']}"] == "owned"
        assert tags[f"{prefix}/node-template/label/mlops.dev/node-pool"] == pool_id
        assert tags[f"{prefix}/node-template/taint/mlops.dev/node-pool"] == f"{pool_id}:NoSchedule"
        if gpu:
            assert tags[f"{prefix}/node-template/taint/nvidia.com/gpu"] == "true:NoSchedule"
            assert int(tags[f"{prefix}/node-template/resources/nvidia.com/gpu"]) >= 1
        assert tags["team"] == config.team
        # The node-template tags reach the Auto Scaling group, where the autoscaler reads them.
        asg = group.outputs["resources"][0]["autoscalingGroups"][0]["name"]
        copied = {
            r.inputs["tag"]["key"]: r.inputs["tag"]["value"]
            for r in plan.of_type("aws:autoscaling/tag:Tag")
            if r.inputs["autoscalingGroupName"] == asg
        }
        assert copied == {k: v for k, v in tags.items() if "/node-template/" in k}


def test_the_node_role_has_exactly_the_node_policies(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    role = child(plan, "aws:iam/role:Role", "training-node-role")
    (trust,) = trust_of(role)["Statement"]
    assert trust["Principal"] == {"Service": "ec2.amazonaws.com"}
    attached = {
        r.inputs["policyArn"]
        for r in plan.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
        if r.inputs["role"] == role.outputs["name"]
    }
    assert attached == {f"arn:aws:iam::aws:policy/{p}" for p in NODE_MANAGED_POLICIES}
    inline = [
        r
        for r in plan.of_type("aws:iam/rolePolicy:RolePolicy")
        if r.inputs["role"] == role.outputs["name"]
    ]
    assert inline == []


def test_one_cronjob_per_pipeline(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    config = config_of(example_stack)
    pools = {p.name: p for p in config.training.node_pools}
    for pipeline in config.training.pipelines:
        cronjob = child(plan, "kubernetes:batch/v1:CronJob", f"training-train-{pipeline.name}")
        manifest = cronjob.inputs
        assert manifest["metadata"]["namespace"] == naming.namespace_name(config.team)
        spec = manifest["spec"]
        assert spec["schedule"] == pipeline.schedule
        assert spec["concurrencyPolicy"] == "Forbid"
        job = spec["jobTemplate"]["spec"]
        assert job["backoffLimit"] == pipeline.retries
        assert job["activeDeadlineSeconds"] == int(pipeline.deadline.total_seconds())
        pod = job["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        assert pod["serviceAccountName"] == "training"
        pool_id = f"{config.team}.{pipeline.node_pool}"
        assert pod["nodeSelector"] == {
            "mlops.dev/team": config.team,
            "mlops.dev/node-pool": pool_id,
        }
        tolerated = {(t["key"], t["value"], t["effect"]) for t in pod["tolerations"]}
        assert ("mlops.dev/node-pool", pool_id, "NoSchedule") in tolerated
        assert_hardened(pod)
        (container,) = pod["containers"]
        assert container["image"] == plan.outputs["image"]  # mlops:image or the repository's :dev
        # A continuously trained pipeline's job checks whether a retrain is due.
        due = ["--if-due"] if pipeline.continuous_training else []
        assert container["args"] == ["train", "--pipeline", pipeline.name, *due]
        gpus = pool_gpus(pools[pipeline.node_pool])
        requests, limits = container["resources"]["requests"], container["resources"]["limits"]
        if gpus:
            assert ("nvidia.com/gpu", "true", "NoSchedule") in tolerated
            assert int(requests["nvidia.com/gpu"]) >= 1
            assert requests["nvidia.com/gpu"] == limits["nvidia.com/gpu"]
        else:
            assert "nvidia.com/gpu" not in requests
        assert requests["cpu"] == pipeline.resources.cpu
        assert requests["memory"] == limits["memory"] == pipeline.resources.memory


def test_training_env_is_the_runtime_contract(
    example_stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    plan = plan_compute(example_stack)
    config = config_of(example_stack)
    for pipeline in config.training.pipelines:
        cronjob = child(plan, "kubernetes:batch/v1:CronJob", f"training-train-{pipeline.name}")
        (container,) = cronjob.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"][
            "containers"
        ]
        with monkeypatch.context() as env:
            settings = settings_from(env_of(container), env)
        assert settings.team == config.team
        assert settings.environment == str(config.environment)
        assert settings.pipelines == [pipeline_spec(pipeline)]
        assert [v.name for v in settings.feature_store.feature_views] == [
            v.name for v in config.feature_store.feature_views
        ]
        assert settings.online_store == "dynamodb"
        assert settings.metrics_sink == "cloudwatch"
        assert settings.metrics_namespace == f"MLOps/{config.team}"
        assert settings.artifact_uri and settings.artifact_uri.startswith("s3://")
        assert settings.offline_store_uri and settings.offline_store_uri.startswith("s3://")
        assert str(settings.home) == "/var/lib/mlops"


def test_training_pods_log_in_to_a_sql_feast_registry(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    policy = json.loads(
        child(plan, "aws:iam/rolePolicy:RolePolicy", "training-identity-policy").inputs["policy"]
    )
    for pipeline in config_of(example_stack).training.pipelines:
        cronjob = child(plan, "kubernetes:batch/v1:CronJob", f"training-train-{pipeline.name}")
        pod = cronjob.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert_registry_login(plan, pod, "train", policy, sql=sql_registry(example_stack))


def test_the_team_quota_comes_from_the_config(example_stack: str) -> None:
    plan = plan_compute(example_stack)
    quota = config_of(example_stack).training.quota
    hard = child(plan, "kubernetes:core/v1:ResourceQuota", "team-quota").inputs["spec"]["hard"]
    assert hard["requests.cpu"] == quota.cpu
    assert hard["requests.memory"] == quota.memory
    assert hard["requests.nvidia.com/gpu"] == str(quota.gpu)
    assert hard["pods"] == str(quota.pods)


def test_dev_and_prod_differ_in_size_not_shape() -> None:
    dev, prod = plan_compute("fraud-dev"), plan_compute("fraud-prod")
    assert (
        child(dev, "aws:eks/nodeGroup:NodeGroup", "training-pool-gpu").inputs["scalingConfig"][
            "maxSize"
        ]
        < child(prod, "aws:eks/nodeGroup:NodeGroup", "training-pool-gpu").inputs["scalingConfig"][
            "maxSize"
        ]
    )
    quota = {
        p.stack: child(p, "kubernetes:core/v1:ResourceQuota", "team-quota").inputs["spec"]["hard"]
        for p in (dev, prod)
    }
    assert naming.quantity(quota["fraud-dev"]["requests.cpu"]) < naming.quantity(
        quota["fraud-prod"]["requests.cpu"]
    )


def test_the_compute_at_its_peak_fits_the_team_quota(example_stack: str) -> None:
    """Every endpoint at max replicas and every pipeline running at once: within the quota."""
    plan = plan_compute(example_stack)
    quota = config_of(example_stack).training.quota
    peak = {"cpu": 0.0, "memory": 0.0, "nvidia.com/gpu": 0.0}
    hpa_max = {
        r.inputs["spec"]["scaleTargetRef"]["name"]: r.inputs["spec"]["maxReplicas"]
        for r in plan.of_type("kubernetes:autoscaling/v2:HorizontalPodAutoscaler")
    }
    mine = [r for r in plan.resources if r.name.startswith(("training-", "endpoint-"))]
    for resource in mine:
        if resource.type == "kubernetes:apps/v1:Deployment":
            pod, count = (
                resource.inputs["spec"]["template"]["spec"],
                hpa_max[resource.inputs["metadata"]["name"]],
            )
        elif resource.type == "kubernetes:batch/v1:CronJob":
            pod, count = resource.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"], 1
        else:
            continue
        for container in pod["containers"]:
            for key in peak:
                peak[key] += count * naming.quantity(
                    container["resources"]["requests"].get(key, "0")
                )
    assert peak["cpu"] <= naming.quantity(quota.cpu)
    assert peak["memory"] <= naming.quantity(quota.memory)
    assert peak["nvidia.com/gpu"] <= quota.gpu


def test_a_continuously_trained_pipeline_checks_whether_a_retrain_is_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import yaml

    document = yaml.safe_load((STACKS / "Pulumi.fraud-dev.yaml").read_text())
    pipeline = document["config"]["mlops:training"]["pipelines"][0]
    pipeline.update(
        schedule="*/15 * * * *",
        deadline="3h",
        continuousTraining={"triggers": {"drift": {}, "schedule": {"every": "7d"}}},
    )
    file = tmp_path / "Pulumi.fraud-dev.yaml"
    file.write_text(yaml.safe_dump(document))

    plan = plan_compute(file)
    cronjob = child(plan, "kubernetes:batch/v1:CronJob", "training-train-fraud-model")
    (container,) = cronjob.inputs["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    bucket = child(plan, "aws:s3/bucket:Bucket", "registry-artifacts-bucket").outputs["bucket"]
    with monkeypatch.context() as env:
        settings = settings_from(env_of(container), env)

    assert cronjob.inputs["spec"]["schedule"] == "*/15 * * * *"
    assert container["args"] == ["train", "--pipeline", "fraud-model", "--if-due"]
    assert settings.events_uri == f"s3://{bucket}/ct-events/"
    (spec,) = settings.pipelines
    assert spec.continuous_training is not None
    assert spec.continuous_training.lease == timedelta(hours=3)
    assert spec.continuous_training.triggers.enabled == ["schedule", "drift"]
