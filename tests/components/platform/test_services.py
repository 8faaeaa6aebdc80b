"""Cluster services as planned objects: schema-valid, pinned and hardened, each controller with
its own IRSA role whose trust names its service account and whose policy AWS would accept."""

from __future__ import annotations

import json

import pytest

from components.platform import policies
from components.platform.services import ALB_CLASS, NAMESPACE, autoscaler_args
from components.serving import ALB_CLASS as TEAM_ALB_CLASS
from tests.conftest import planned
from tooling.manifests import manifests, schema_errors
from tooling.plan import Plan

STACKS = ["platform/dev", "platform/prod"]


def deployment(plan: Plan, app: str) -> dict:
    (found,) = [
        r.inputs
        for r in plan.of_type("kubernetes:apps/v1:Deployment")
        if r.inputs["metadata"]["name"] == app
    ]
    return found


@pytest.mark.parametrize("stack", STACKS)
def test_every_platform_kubernetes_object_validates_against_the_openapi_schema(stack: str) -> None:
    objects = manifests(planned(stack))

    assert {o["kind"] for o in objects} >= {
        "Deployment",
        "ServiceAccount",
        "ClusterRole",
        "IngressClass",
        "CustomResourceDefinition",
        "MutatingWebhookConfiguration",
    }
    assert [e for o in objects for e in schema_errors(o)] == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_alb_class_team_endpoints_name_exists(stack: str) -> None:
    (ingress_class,) = planned(stack).of_type("kubernetes:networking.k8s.io/v1:IngressClass")

    assert ingress_class.inputs["metadata"]["name"] == ALB_CLASS == TEAM_ALB_CLASS
    assert ingress_class.inputs["spec"]["controller"] == "ingress.k8s.aws/alb"


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize(
    ("app", "role"),
    [
        ("cluster-autoscaler", "cluster-autoscaler"),
        ("aws-load-balancer-controller", "load-balancer-controller"),
    ],
)
def test_each_controller_has_its_own_role_trusting_only_its_service_account(
    stack: str, app: str, role: str
) -> None:
    plan = planned(stack)
    accounts = {
        r.inputs["metadata"]["name"]: r.inputs["metadata"]
        for r in plan.of_type("kubernetes:core/v1:ServiceAccount")
    }
    roles = {r.outputs["arn"]: r for r in plan.of_type("aws:iam/role:Role")}
    pod = deployment(plan, app)["spec"]["template"]["spec"]

    assert pod["serviceAccountName"] == app and accounts[app]["namespace"] == NAMESPACE
    iam_role = roles[accounts[app]["annotations"]["eks.amazonaws.com/role-arn"]]
    assert iam_role.inputs["name"].endswith(f"-{role}")
    (trust,) = json.loads(iam_role.inputs["assumeRolePolicy"])["Statement"]
    issuer = plan.outputs["oidcProviderUrl"].removeprefix("https://")
    assert trust["Principal"] == {"Federated": plan.outputs["oidcProviderArn"]}
    assert (
        trust["Condition"]["StringEquals"][f"{issuer}:sub"]
        == f"system:serviceaccount:{NAMESPACE}:{app}"
    )
    # The controllers run on the system nodes, hardened, with a pinned image.
    assert pod["nodeSelector"] == {"mlops.dev/pool": "system"}
    assert pod["priorityClassName"] == "system-cluster-critical"
    (container,) = pod["containers"]
    assert ":" in container["image"].rsplit("/", 1)[-1] and not container["image"].endswith(
        ":latest"
    )


@pytest.mark.parametrize("stack", STACKS)
def test_the_autoscaler_discovers_and_resizes_only_this_clusters_groups(stack: str) -> None:
    plan = planned(stack)
    cluster = plan.outputs["clusterName"]
    (container,) = deployment(plan, "cluster-autoscaler")["spec"]["template"]["spec"]["containers"]
    (policy,) = [
        json.loads(p.inputs["policy"])
        for p in plan.of_type("aws:iam/rolePolicy:RolePolicy")
        if p.name == "services-autoscaler-policy"
    ]
    writes = {s["Sid"]: s for s in policy["Statement"]}["ResizeThisClustersGroups"]

    assert container["args"] == autoscaler_args(cluster)
    assert (
        f"--node-group-auto-discovery=asg:tag=k8s.io/cluster-autoscaler/enabled,k8s.io/cluster-autoscaler/{cluster}"
        in container["args"]
    )
    assert writes["Condition"] == {
        "StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster}": "owned"}
    }
    # The tag it conditions on is the one team node pools' groups carry (components/training.py).
    from components.training import AUTOSCALER_PREFIX

    assert policies.AUTOSCALER_TAG == AUTOSCALER_PREFIX


@pytest.mark.parametrize("stack", STACKS)
def test_the_load_balancer_controller_needs_no_instance_metadata(stack: str) -> None:
    plan = planned(stack)
    (container,) = deployment(plan, "aws-load-balancer-controller")["spec"]["template"]["spec"][
        "containers"
    ]
    # IMDS is one hop out of a pod's reach (hop limit 1): region and VPC come as flags.
    assert f"--aws-vpc-id={plan.outputs['vpcId']}" in container["args"]
    assert (
        f"--aws-region={planned(stack).of_type('aws:eks/cluster:Cluster')[0].outputs['arn'].split(':')[3]}"
        in container["args"]
    )
    assert f"--cluster-name={plan.outputs['clusterName']}" in container["args"]
    webhooks = plan.of_type(
        "kubernetes:admissionregistration.k8s.io/v1:MutatingWebhookConfiguration"
    ) + plan.of_type("kubernetes:admissionregistration.k8s.io/v1:ValidatingWebhookConfiguration")
    (service,) = plan.of_type("kubernetes:core/v1:Service")
    for configuration in webhooks:
        for hook in configuration.inputs["webhooks"]:
            assert hook["clientConfig"]["service"]["name"] == service.inputs["metadata"]["name"]
            assert hook["clientConfig"]["caBundle"]
    (secret,) = plan.of_type("kubernetes:core/v1:Secret")
    assert "stringData" in secret.secret_paths  # the key never shows in a plan or a diff


def test_autoscaler_policy_scopes_every_unconditioned_statement() -> None:
    document = policies.cluster_autoscaler_policy("mlops-prod", "eu-west-1", "123456789012", "aws")
    for statement in document["Statement"]:
        assert statement["Resource"] != ["*"] or statement.get("Condition"), statement["Sid"]


def test_load_balancer_controller_writes_only_what_carries_the_clusters_tag() -> None:
    document = policies.load_balancer_controller_policy(
        "mlops-prod", "eu-west-1", "123456789012", "aws", "sg-0123456789abcdef0"
    )
    statements = {s["Sid"]: s for s in document["Statement"]}
    tag = {"StringEquals": {"aws:ResourceTag/elbv2.k8s.aws/cluster": "mlops-prod"}}
    assert statements["OwnLoadBalancers"]["Condition"] == tag
    assert statements["OwnSecurityGroups"]["Condition"] == tag
    assert statements["NodeSecurityGroup"]["Resource"] == [
        "arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0123456789abcdef0"
    ]
    assert all(s["Resource"] != ["*"] or s.get("Condition") for s in document["Statement"])
