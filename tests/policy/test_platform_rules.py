"""The platform's policy rules: each catches its violating fixture (the planned prod platform's
own resource, changed one way) and passes the resource as planned."""

from __future__ import annotations

from typing import Any

import pytest

from policy.rules import UNKNOWN, Context, Resource, check_resource, check_stack
from tests.conftest import planned
from tests.policy.test_rules import DELETE, changed

PROD = Context(stack="prod", protect=True)
DEV = Context(stack="dev")


def planned_inputs(type_: str, stack: str = "platform/prod") -> dict[str, Any]:
    return planned(stack).of_type(type_)[0].inputs


CLUSTER = "aws:eks/cluster:Cluster"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
ENTRY = "aws:eks/accessEntry:AccessEntry"
ASSOCIATION = "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"
ADDON = "aws:eks/addon:Addon"
SUBNET = "aws:ec2/subnet:Subnet"
LOGS = "aws:cloudwatch/logGroup:LogGroup"
NAT = "aws:ec2/natGateway:NatGateway"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"
KEY = "tls:index/privateKey:PrivateKey"
TYPES = [CLUSTER, TEMPLATE, ENTRY, ASSOCIATION, ADDON, SUBNET, LOGS, CLUSTER_ROLE, BINDING, KEY]


def _case(rule: str, type_: str, id: str, ctx: Context = PROD, **change: Any) -> Any:
    return pytest.param(rule, type_, change, ctx, id=id)


PLATFORM_VIOLATIONS = [
    _case("eks-secrets-encryption", CLUSTER, "no-encryption", encryptionConfig=DELETE),
    _case("eks-secrets-encryption", CLUSTER, "no-key", encryptionConfig__provider=DELETE),
    _case("eks-private-endpoint", CLUSTER, "private-off", vpcConfig__endpointPrivateAccess=False),
    _case(
        "eks-private-endpoint", CLUSTER, "public-default", vpcConfig__endpointPublicAccess=DELETE
    ),
    _case(
        "eks-private-endpoint",
        CLUSTER,
        "public-anywhere",
        vpcConfig__endpointPublicAccess=True,
        vpcConfig__publicAccessCidrs=["10.0.0.0/8", "0.0.0.0/0"],
    ),
    _case("eks-control-plane-logs", CLUSTER, "no-audit", enabledClusterLogTypes=["api"]),
    _case("eks-control-plane-logs", CLUSTER, "no-logs", enabledClusterLogTypes=DELETE),
    _case(
        "eks-access-entries-only",
        CLUSTER,
        "creator-admin",
        accessConfig__bootstrapClusterCreatorAdminPermissions=True,
    ),
    _case(
        "eks-access-entries-only",
        CLUSTER,
        "config-map",
        accessConfig__authenticationMode="API_AND_CONFIG_MAP",
    ),
    _case(
        "eks-access-entry-named-principal",
        ENTRY,
        "wildcard-entry",
        principalArn="arn:aws:iam::123456789012:role/*",
    ),
    _case(
        "eks-access-entry-named-principal",
        ASSOCIATION,
        "account-root",
        principalArn="arn:aws:iam::123456789012:root",
    ),
    _case("eks-addon-version-pinned", ADDON, "unpinned-addon", addonVersion=DELETE),
    _case("ec2-imdsv2-hop-limit", TEMPLATE, "imdsv1", metadataOptions__httpTokens="optional"),
    _case(
        "ec2-imdsv2-hop-limit",
        TEMPLATE,
        "hop-limit-2",
        metadataOptions__httpPutResponseHopLimit=2.0,
    ),
    _case("ec2-imdsv2-hop-limit", TEMPLATE, "no-metadata-options", metadataOptions=DELETE),
    _case("ec2-subnet-no-public-ip", SUBNET, "public-ip", mapPublicIpOnLaunch=True),
    _case("cloudwatch-log-retention", LOGS, "kept-forever", retentionInDays=DELETE),
    _case("k8s-rbac-no-wildcards", CLUSTER_ROLE, "any-verb", rules__0__verbs=["*"]),
    _case("k8s-rbac-no-wildcards", CLUSTER_ROLE, "any-resource", rules__1__resources=["*"]),
    _case("k8s-no-admin-binding", BINDING, "cluster-admin", roleRef__name="cluster-admin"),
    _case("tls-key-strength", KEY, "rsa-1024", algorithm="RSA", rsaBits=1024.0),
]
PLATFORM_STACK_RULES = {"nat-gateway-per-zone-prod"}


@pytest.mark.parametrize("type_", TYPES)
def test_the_planned_platform_passes_every_rule(type_: str) -> None:
    for stack, ctx in (("platform/prod", PROD), ("platform/dev", DEV)):
        for resource in planned(stack).of_type(type_):
            assert check_resource(type_, resource.inputs, ctx) == []


@pytest.mark.parametrize(("rule", "type_", "change", "ctx"), PLATFORM_VIOLATIONS)
def test_platform_rule_catches_its_violating_resource(
    rule: str, type_: str, change: dict[str, Any], ctx: Context
) -> None:
    props = changed(planned_inputs(type_), **change)

    violations = check_resource(type_, props, ctx)

    assert {v.rule for v in violations} == {rule}
    assert all(v.message for v in violations)


def test_a_public_dev_endpoint_is_allowed_and_unknowns_are_no_violation() -> None:
    open_dev = changed(planned_inputs(CLUSTER, "platform/dev"), vpcConfig__publicAccessCidrs=DELETE)
    assert check_resource(CLUSTER, open_dev, DEV) == []
    unknown = changed(
        planned_inputs(CLUSTER), encryptionConfig=UNKNOWN, enabledClusterLogTypes=UNKNOWN
    )
    assert check_resource(CLUSTER, unknown, PROD) == []


def _network(stack: str) -> list[Resource]:
    return [
        Resource(r.type, r.urn, r.outputs)
        for r in planned(stack).resources
        if r.type in (SUBNET, NAT)
    ]


def test_prod_needs_a_nat_gateway_per_zone() -> None:
    prod = _network("platform/prod")
    assert check_stack(prod, "prod") == []
    assert check_stack(_network("platform/dev"), "dev") == []  # one NAT is the dev preset

    single = [r for r in prod if r.type != NAT or r.urn.endswith("nat-a")]
    violations = check_stack(single, "prod")

    assert [(v.rule, v.urn.rsplit("::", 1)[-1]) for v in violations] == [
        ("nat-gateway-per-zone-prod", "network-nat-a")
    ]
    assert "1 NAT gateway(s) for private subnets in 3 zones" in violations[0].message
