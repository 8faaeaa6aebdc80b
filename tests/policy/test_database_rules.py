"""The registry database's least privilege (#14) as the policy pack sees it: only the bootstrap
reads the master secret; the database admits only the stack's pod security group."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from policy.rules import Resource, check_plan, check_stack
from tests.components._data_plane_helpers import cluster_values
from tests.conftest import planned
from tooling.plan import Plan

STACK = "fraud-dev"
SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-abc-123456"
DB_SG, CLIENTS_SG, NODES_SG = "sg-db", "sg-clients", "sg-nodes"
RULES = {"rds-master-secret-bootstrap-only", "rds-ingress-pod-security-group"}


def urn(type_: str, name: str) -> str:
    return f"urn:pulumi:{STACK}::mlops::{type_}::{name}"


def res(type_: str, name: str, props: dict[str, Any]) -> Resource:
    return Resource(type_, urn(type_, name), props)


def group(name: str, gid: str, **props: Any) -> Resource:
    return res(
        "aws:ec2/securityGroup:SecurityGroup",
        name,
        {"arn": f"arn:aws:ec2:eu-west-1:123456789012:security-group/{gid}", **props},
    )


def ingress(name: str, **props: Any) -> Resource:
    return res(
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
        name,
        {"securityGroupId": DB_SG, "ipProtocol": "tcp", "fromPort": 5432, "toPort": 5432, **props},
    )


def role_policy(name: str, role: str, resource: str) -> Resource:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": resource}
        ],
    }
    return res(
        "aws:iam/rolePolicy:RolePolicy", name, {"role": role, "policy": json.dumps(document)}
    )


def job(name: str, account: str) -> Resource:
    env = [{"name": "MLOPS_DATABASE_MASTER_SECRET_ARN", "value": SECRET}]
    return res(
        "kubernetes:batch/v1:Job",
        name,
        {
            "spec": {
                "template": {
                    "spec": {
                        "serviceAccountName": account,
                        "containers": [{"name": "c", "image": "x", "env": env}],
                    }
                }
            }
        },
    )


INSTANCE = res(
    "aws:rds/instance:Instance",
    "registry-db",
    {"vpcSecurityGroupIds": [DB_SG], "masterUserSecrets": [{"secretArn": SECRET}]},
)
SGP = res(
    "kubernetes:vpc.amazonaws.com/v1beta1:SecurityGroupPolicy",
    "clients",
    {"spec": {"securityGroups": {"groupIds": [CLIENTS_SG, NODES_SG]}}},
)
COMPLIANT = [
    INSTANCE,
    SGP,
    group("db-sg", DB_SG),
    group("clients-sg", CLIENTS_SG),
    ingress("from-clients", referencedSecurityGroupId=CLIENTS_SG),
    role_policy("bootstrap", "fraud-dev-database-bootstrap", SECRET),
    job("bootstrap-job", "database-bootstrap"),
]


def violations(resources: list[Resource]) -> list[tuple[str, str]]:
    return sorted((v.rule, v.urn) for v in check_stack(resources, STACK) if v.rule in RULES)


def test_compliant_fixture_passes() -> None:
    assert violations(COMPLIANT) == []


@pytest.mark.parametrize(
    ("extra", "rule"),
    [
        pytest.param(
            role_policy("mlflow", "fraud-dev-mlflow", SECRET),
            "rds-master-secret-bootstrap-only",
            id="mlflow-reads-master-secret",
        ),
        pytest.param(
            role_policy("any", "fraud-dev-training", "arn:aws:secretsmanager:*:*:secret:*"),
            "rds-master-secret-bootstrap-only",
            id="wildcard-secret-read",
        ),
        pytest.param(
            job("sneaky-job", "mlflow"),
            "rds-master-secret-bootstrap-only",
            id="pod-handed-the-master-secret",
        ),
        pytest.param(
            ingress("from-nodes", referencedSecurityGroupId=NODES_SG),
            "rds-ingress-pod-security-group",
            id="node-group-admitted",
        ),
        pytest.param(
            ingress("from-vpc", cidrIpv4="10.0.0.0/16"),
            "rds-ingress-pod-security-group",
            id="address-range-admitted",
        ),
    ],
)
def test_violating_fixture_is_caught(extra: Resource, rule: str) -> None:
    assert violations([*COMPLIANT, extra]) == [(rule, extra.urn)]


def test_a_stack_group_no_pod_wears_is_not_enough() -> None:
    stray = group("stray-sg", "sg-stray")
    rule = ingress("from-stray", referencedSecurityGroupId="sg-stray")
    assert violations([*COMPLIANT, stray, rule]) == [("rds-ingress-pod-security-group", rule.urn)]


def test_inline_ingress_on_the_database_group_is_caught() -> None:
    inline = group("db-sg", DB_SG, ingress=[{"fromPort": 5432, "cidrBlocks": ["0.0.0.0/0"]}])
    resources = [r for r in COMPLIANT if r.urn != inline.urn] + [inline]
    assert violations(resources) == [("rds-ingress-pod-security-group", inline.urn)]


# -- the real plans ----------------------------------------------------------------------------


def _mutated(change: Any) -> Plan:
    plan = copy.deepcopy(planned(STACK))
    change(plan)
    return plan


def test_the_real_plan_passes_and_its_old_shape_is_caught() -> None:
    assert not [v for v in check_plan(planned(STACK)) if v.rule in RULES]

    def server_reads_master_secret(plan: Plan) -> None:
        (instance,) = plan.of_type("aws:rds/instance:Instance")
        secret = instance.outputs["masterUserSecrets"][0]["secretArn"]
        (server,) = [r for r in plan.resources if r.name == "registry-identity-policy"]
        document = json.loads(server.outputs["policy"])
        document["Statement"].append(
            {"Effect": "Allow", "Action": ["secretsmanager:GetSecretValue"], "Resource": [secret]}
        )
        server.outputs["policy"] = server.inputs["policy"] = json.dumps(document)

    def database_admits_nodes(plan: Plan) -> None:
        (rule,) = [r for r in plan.resources if r.name == "registry-db-from-clients"]
        node_group = cluster_values(STACK)["nodeSecurityGroupId"]
        rule.outputs["referencedSecurityGroupId"] = node_group
        rule.inputs["referencedSecurityGroupId"] = node_group

    caught = [
        {v.rule for v in check_plan(_mutated(change))}
        for change in (server_reads_master_secret, database_admits_nodes)
    ]
    assert caught == [{"rds-master-secret-bootstrap-only"}, {"rds-ingress-pod-security-group"}]
