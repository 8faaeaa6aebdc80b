"""The platform's policy rules: each catches its violating fixture (the planned prod platform's
own resource, changed one way) and passes the resource as planned."""

from __future__ import annotations

import json
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
PLATFORM_STACK_RULES = {"nat-gateway-per-zone-prod", "eks-secrets-key-policy-names-administrators"}


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


# --- the cluster's secrets key: a key policy naming its administrators --------------------------

KMS_KEY = "aws:kms/key:Key"
KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
KEY_RULE = "eks-secrets-key-policy-names-administrators"
ROOT = "arn:aws:iam::123456789012:root"
ROOT_USES = {
    "Sid": "AccountAdministers",
    "Effect": "Allow",
    "Principal": {"AWS": ROOT},
    "Action": "kms:*",
    "Resource": "*",
}


def _keys(stack: str) -> list[Resource]:
    """The planned cluster, its secrets key and the key's policy (what the rule reads)."""
    return [
        Resource(r.type, r.urn, r.outputs, dependencies=tuple(r.dependencies))
        for r in planned(stack).resources
        if r.type in (CLUSTER, KMS_KEY, KEY_POLICY)
    ]


def _with_policy(resources: list[Resource], document: dict[str, Any] | None) -> list[Resource]:
    """The key policy replaced by ``document`` (None: no KeyPolicy at all)."""
    kept = [r for r in resources if r.type != KEY_POLICY]
    if document is None:
        return kept
    (policy,) = [r for r in resources if r.type == KEY_POLICY]
    return [
        *kept,
        Resource(policy.type, policy.urn, {**policy.props, "policy": json.dumps(document)}),
    ]


def _statements(stack: str) -> list[dict[str, Any]]:
    (policy,) = planned(stack).of_type(KEY_POLICY)
    return json.loads(policy.inputs["policy"])["Statement"]


def _key_violations(resources: list[Resource], stack: str) -> list[tuple[str, str]]:
    return [
        (v.rule, v.urn.rsplit("::", 1)[-1])
        for v in check_stack(resources, stack)
        if v.rule == KEY_RULE
    ]


def test_the_planned_secrets_key_policies_pass() -> None:
    for stack in ("prod", "dev", "us-prod", "us-dev"):
        assert _key_violations(_keys(f"platform/{stack}"), stack) == []


def _key_case(id: str, document: Any, count: int = 1, stack: str = "prod") -> Any:
    return pytest.param(document, stack, count, id=id)


ADMINS, CLUSTER_USES = 0, 1
"""Where the planned policy puts its statements."""


@pytest.mark.parametrize(
    ("document", "stack", "count"),
    [
        # No KeyPolicy: KMS's default policy, the account's IAM decides who uses the key.
        _key_case("no-key-policy", None),
        # What the platform planned before: the account root may do kms:*.
        _key_case("root-kms-star", {"Statement": [ROOT_USES]}, count=2),
        _key_case("root-added", lambda s: {"Statement": [*s, ROOT_USES]}),
        _key_case("prod-without-administrators", lambda s: {"Statement": [s[CLUSTER_USES]]}),
        _key_case(
            "account-uses-in-dev",
            lambda s: {"Statement": [s[ADMINS], {**s[CLUSTER_USES], "Principal": {"AWS": ROOT}}]},
            stack="dev",
        ),
    ],
)
def test_the_secrets_key_rule_catches_its_violating_policy(
    document: Any, stack: str, count: int
) -> None:
    if callable(document):
        document = document(_statements(f"platform/{stack}"))

    violations = _key_violations(_with_policy(_keys(f"platform/{stack}"), document), stack)

    assert violations == [(KEY_RULE, "cluster-secrets-key")] * count


def test_dev_may_leave_administration_of_the_secrets_key_to_the_account() -> None:
    (admins, cluster_uses) = _statements("platform/dev")
    assert admins["Principal"] == {"AWS": [ROOT]} and "kms:*" not in admins["Action"]
    assert _key_violations(_keys("platform/dev"), "dev") == []
    # The same policy in prod has no named administrator.
    prod = _with_policy(_keys("platform/prod"), {"Statement": [admins, cluster_uses]})
    assert _key_violations(prod, "prod") == [(KEY_RULE, "cluster-secrets-key")]


def test_a_team_stack_is_not_judged_by_the_platform_key_rule() -> None:
    team = Resource(
        "mlops:team:TeamNamespace", "urn:pulumi:fraud-prod::mlops::mlops:team:TeamNamespace::t", {}
    )
    old = _with_policy(_keys("platform/prod"), {"Statement": [ROOT_USES]})
    assert _key_violations([team, *old], "prod") == []
