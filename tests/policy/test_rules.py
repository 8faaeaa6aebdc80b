"""The policy pack: every rule catches its violating fixture and passes its compliant one, every
example stack passes the whole pack, and the CrossGuard policies wrap the same pure functions."""

from __future__ import annotations

import contextvars
import copy
import importlib
import inspect
import json
import runpy
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pulumi_policy
import pytest
from google.protobuf import json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationPolicy,
)
from pulumi_policy.policy import _PolicyAnalyzerServicer
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, unknown_checking_proxy
from typer.testing import CliRunner

from components.config.cost import Usage
from policy import crossguard, rules
from policy.rules import (
    RESOURCE_RULES,
    RULE_NAMES,
    STACK_RULES,
    UNKNOWN,
    Context,
    Resource,
    check_plan,
    check_resource,
    check_stack,
)
from tests.conftest import planned
from tooling.cli import app
from tooling.plan import Plan

DELETE = object()
KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/f07e1277-f097-f3a1-0363-20ade12d47ee"
TOPIC_ARN = "arn:aws:sns:eu-west-1:123456789012:fraud-prod-alerts"
ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/502040A6BBB05054E4F013D794507AD9"
TAGS_PROD = {
    "team": "fraud",
    "environment": "prod",
    "managed-by": "mlops-stack",
    "cost-center": "x",
}
PROD = Context(stack="fraud-prod", protect=True)


def changed(base: Mapping[str, Any], **paths: Any) -> dict[str, Any]:
    """A deep copy of `base` with `a__b__0__c=value` set (or removed with DELETE)."""
    result = copy.deepcopy(dict(base))
    for path, value in paths.items():
        *parents, last = [int(p) if p.isdigit() else p for p in path.split("__")]
        node: Any = result
        for part in parents:
            node = node[part]
        if value is DELETE:
            del node[last]
        else:
            node[last] = value
    return result


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


# ---------------------------------------------------------------------------------------------
# Compliant resources, shaped like the plan's inputs (camelCase, numbers as floats)

TABLE = {
    "name": "fraud.card_profile",
    "billingMode": "PAY_PER_REQUEST",
    "hashKey": "entity_id",
    "attributes": [{"name": "entity_id", "type": "S"}],
    "serverSideEncryption": {"enabled": True, "kmsKeyArn": KEY_ARN},
    "pointInTimeRecovery": {"enabled": True},
    "deletionProtectionEnabled": True,
    "tags": TAGS_PROD,
}
DATABASE = {
    "identifier": "fraud-prod-registry",
    "engine": "postgres",
    "instanceClass": "db.r6g.large",
    "storageEncrypted": True,
    "kmsKeyId": KEY_ARN,
    "publiclyAccessible": False,
    "deletionProtection": True,
    "backupRetentionPeriod": 14.0,
    "multiAz": True,
    "manageMasterUserPassword": True,
    "username": "mlops",
    "tags": TAGS_PROD,
}
READ_FEATURES = {
    "Sid": "OfflineRead",
    "Effect": "Allow",
    "Action": ["s3:GetObject"],
    "Resource": ["arn:aws:s3:::fraud-prod-features-0b60318/offline/*"],
}
PUT_METRICS = {
    "Sid": "Metrics",
    "Effect": "Allow",
    "Action": "cloudwatch:PutMetricData",
    "Resource": "*",
    "Condition": {"StringEquals": {"cloudwatch:namespace": "MLOps/fraud"}},
}
IRSA_TRUST = {
    "Sid": "ServiceAccount",
    "Effect": "Allow",
    "Principal": {"Federated": f"arn:aws:iam::123456789012:oidc-provider/{ISSUER}"},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {
        "StringEquals": {
            f"{ISSUER}:sub": "system:serviceaccount:ml-fraud:training",
            f"{ISSUER}:aud": "sts.amazonaws.com",
        }
    },
}
ROLE = {
    "name": "fraud-prod-training",
    "assumeRolePolicy": doc(IRSA_TRUST),
    "inlinePolicies": [{"name": "data", "policy": doc(READ_FEATURES)}],
    "tags": TAGS_PROD,
}
ROLE_POLICY = {"role": "fraud-prod-training", "policy": doc(READ_FEATURES, PUT_METRICS)}
TOPIC = {"name": "fraud-prod-alerts", "kmsMasterKeyId": KEY_ARN, "tags": TAGS_PROD}
ALARM = {
    "name": "fraud-prod-drift-scorer",
    "metricName": "MaxFeatureDriftPSI",
    "namespace": "MLOps/fraud",
    "threshold": 0.2,
    "alarmActions": [TOPIC_ARN],
    "okActions": [TOPIC_ARN],
    "tags": TAGS_PROD,
}
KEY = {"description": "fraud-prod data", "enableKeyRotation": True, "tags": TAGS_PROD}
REPOSITORY = {
    "name": "fraud/runtime",
    "imageScanningConfiguration": {"scanOnPush": True},
    "imageTagMutability": "IMMUTABLE",
    "tags": TAGS_PROD,
}
BUCKET = {"bucketPrefix": "fraud-prod-features-", "forceDestroy": False, "tags": TAGS_PROD}
SECURITY_GROUP = {"vpcId": "vpc-1", "description": "registry db", "tags": TAGS_PROD}
CONTAINER = {
    "name": "server",
    "image": "mlops-stack/runtime:0.1.0",
    "securityContext": {
        "runAsUser": 10001.0,
        "runAsNonRoot": True,
        "privileged": False,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    },
    "resources": {
        "requests": {"cpu": "250m", "memory": "1Gi"},
        "limits": {"cpu": "500m", "memory": "1Gi"},
    },
}
POD_SPEC = {"containers": [CONTAINER], "volumes": [{"name": "tmp", "emptyDir": {}}]}
LABELS = {"mlops.dev/team": "fraud", "mlops.dev/environment": "prod"}


def workload(kind: str, spec: Mapping[str, Any] = POD_SPEC) -> dict[str, Any]:
    template = {"metadata": {"labels": LABELS}, "spec": copy.deepcopy(dict(spec))}
    specs = {
        "Pod": dict(template["spec"]),
        "Deployment": {"replicas": 2.0, "template": template},
        "Job": {"backoffLimit": 2.0, "template": template},
        "CronJob": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}},
    }
    return {
        "kind": kind,
        "metadata": {"name": "mlflow", "namespace": "ml-fraud", "labels": LABELS},
        "spec": specs[kind],
    }


WORKLOADS = {
    "Pod": "kubernetes:core/v1:Pod",
    "Deployment": "kubernetes:apps/v1:Deployment",
    "Job": "kubernetes:batch/v1:Job",
    "CronJob": "kubernetes:batch/v1:CronJob",
}
COMPLIANT = [
    pytest.param("aws:dynamodb/table:Table", TABLE, id="dynamodb-table"),
    pytest.param("aws:rds/instance:Instance", DATABASE, id="rds-instance"),
    pytest.param("aws:iam/role:Role", ROLE, id="iam-role"),
    pytest.param("aws:iam/rolePolicy:RolePolicy", ROLE_POLICY, id="iam-role-policy"),
    pytest.param("aws:sns/topic:Topic", TOPIC, id="sns-topic"),
    pytest.param("aws:cloudwatch/metricAlarm:MetricAlarm", ALARM, id="alarm"),
    pytest.param("aws:kms/key:Key", KEY, id="kms-key"),
    pytest.param("aws:ecr/repository:Repository", REPOSITORY, id="ecr-repository"),
    pytest.param("aws:s3/bucket:Bucket", BUCKET, id="s3-bucket"),
    pytest.param("aws:ec2/securityGroup:SecurityGroup", SECURITY_GROUP, id="security-group"),
    *(pytest.param(t, workload(kind), id=kind) for kind, t in WORKLOADS.items()),
]

# ---------------------------------------------------------------------------------------------
# Violating resources: (rule, type, props, context); each trips exactly its rule


def _case(
    rule: str, type_: str, props: Mapping[str, Any], ctx: Context = PROD, id: str = ""
) -> Any:
    return pytest.param(rule, type_, props, ctx, id=id or rule)


T_TABLE = "aws:dynamodb/table:Table"
T_DB = "aws:rds/instance:Instance"
T_ROLE = "aws:iam/role:Role"
T_POLICY = "aws:iam/rolePolicy:RolePolicy"
ALLOW_ALL = {"Effect": "Allow", "Action": "*", "Resource": ["arn:aws:s3:::b/*"]}
ALLOW_S3 = {"Effect": "Allow", "Action": ["s3:*"], "Resource": ["arn:aws:s3:::b/*"]}
ANY_RESOURCE = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "*"}

RESOURCE_VIOLATIONS = [
    _case("dynamodb-encryption", T_TABLE, changed(TABLE, serverSideEncryption=DELETE)),
    _case(
        "dynamodb-encryption",
        T_TABLE,
        changed(TABLE, serverSideEncryption__enabled=False),
        id="dynamodb-encryption-disabled",
    ),
    _case("dynamodb-pitr-prod", T_TABLE, changed(TABLE, pointInTimeRecovery__enabled=False)),
    _case(
        "dynamodb-pitr-prod",
        T_TABLE,
        changed(TABLE, pointInTimeRecovery=DELETE, tags__environment="dev"),
        id="dynamodb-pitr-prod-stack-name-wins-over-tag",
    ),
    _case(
        "dynamodb-deletion-protection-prod",
        T_TABLE,
        changed(TABLE, deletionProtectionEnabled=DELETE),
    ),
    _case("rds-storage-encrypted", T_DB, changed(DATABASE, storageEncrypted=False)),
    _case("rds-not-public", T_DB, changed(DATABASE, publiclyAccessible=True)),
    _case("rds-deletion-protection-prod", T_DB, changed(DATABASE, deletionProtection=False)),
    _case("rds-backups-prod", T_DB, changed(DATABASE, backupRetentionPeriod=3.0)),
    _case(
        "rds-backups-prod",
        T_DB,
        changed(DATABASE, backupRetentionPeriod=DELETE),
        id="rds-backups-prod-default",
    ),
    _case("rds-multi-az-prod", T_DB, changed(DATABASE, multiAz=False)),
    _case(
        "rds-managed-master-password",
        T_DB,
        changed(DATABASE, manageMasterUserPassword=DELETE, password="[secret]"),
    ),
    _case(
        "rds-managed-master-password",
        T_DB,
        changed(DATABASE, manageMasterUserPassword=False),
        id="rds-managed-master-password-off",
    ),
    _case("iam-no-wildcard-actions", T_POLICY, changed(ROLE_POLICY, policy=doc(ALLOW_ALL))),
    _case(
        "iam-no-wildcard-actions",
        T_ROLE,
        changed(ROLE, inlinePolicies__0__policy=doc(ALLOW_S3)),
        id="iam-no-wildcard-actions-service-inline",
    ),
    _case(
        "iam-no-wildcard-actions",
        "aws:iam/policy:Policy",
        {
            "policy": doc(
                {"Effect": "Allow", "NotAction": "iam:*", "Resource": ["arn:aws:s3:::b"]}
            ),
            "tags": TAGS_PROD,
        },
        id="iam-no-wildcard-actions-not-action",
    ),
    _case("iam-no-wildcard-resources", T_POLICY, changed(ROLE_POLICY, policy=doc(ANY_RESOURCE))),
    _case(
        "iam-no-wildcard-resources",
        T_POLICY,
        changed(ROLE_POLICY, policy=doc({**PUT_METRICS, "Condition": {}})),
        id="iam-no-wildcard-resources-empty-condition",
    ),
    _case(
        "iam-irsa-trust-pins-subject",
        T_ROLE,
        changed(
            ROLE, assumeRolePolicy=doc({k: v for k, v in IRSA_TRUST.items() if k != "Condition"})
        ),
    ),
    _case(
        "iam-irsa-trust-pins-subject",
        T_ROLE,
        changed(
            ROLE,
            assumeRolePolicy=doc(
                {
                    **IRSA_TRUST,
                    "Condition": {
                        "StringLike": {f"{ISSUER}:sub": "system:serviceaccount:ml-fraud:*"}
                    },
                }
            ),
        ),
        id="iam-irsa-trust-pins-subject-wildcard",
    ),
    _case(
        "iam-irsa-trust-pins-subject",
        T_ROLE,
        changed(
            ROLE,
            assumeRolePolicy=doc(
                {
                    **IRSA_TRUST,
                    "Condition": {"StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}},
                }
            ),
        ),
        id="iam-irsa-trust-pins-subject-aud-only",
    ),
    _case(
        "iam-trust-no-public-principal",
        T_ROLE,
        changed(
            ROLE,
            assumeRolePolicy=doc(
                {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
            ),
        ),
    ),
    _case("sns-topic-encrypted", "aws:sns/topic:Topic", changed(TOPIC, kmsMasterKeyId=DELETE)),
    _case(
        "cloudwatch-alarm-actions",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        changed(ALARM, alarmActions=[]),
    ),
    _case(
        "cloudwatch-alarm-actions",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        changed(ALARM, actionsEnabled=False),
        id="cloudwatch-alarm-actions-disabled",
    ),
    _case(
        "cloudwatch-alarm-ok-actions",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        changed(ALARM, okActions=DELETE),
    ),
    _case("kms-key-rotation", "aws:kms/key:Key", changed(KEY, enableKeyRotation=DELETE)),
    _case(
        "ecr-scan-on-push",
        "aws:ecr/repository:Repository",
        changed(REPOSITORY, imageScanningConfiguration__scanOnPush=False),
    ),
    _case(
        "ecr-immutable-tags",
        "aws:ecr/repository:Repository",
        changed(REPOSITORY, imageTagMutability="MUTABLE"),
    ),
    _case(
        "aws-required-tags",
        "aws:ec2/securityGroup:SecurityGroup",
        changed(SECURITY_GROUP, tags={"environment": "prod"}),
    ),
    _case(
        "aws-required-tags",
        "aws:sns/topic:Topic",
        changed(TOPIC, tags=DELETE),
        id="aws-required-tags-none",
    ),
    _case(
        "protect-stateful-prod",
        "aws:s3/bucket:Bucket",
        BUCKET,
        Context(stack="fraud-prod", protect=False),
    ),
    _case(
        "protect-stateful-prod",
        T_DB,
        DATABASE,
        Context(stack="fraud-prod", protect=False),
        id="protect-stateful-prod-database",
    ),
]

# Pod-spec-relative changes, applied to every workload kind.
K8S_VIOLATIONS = [
    ("k8s-run-as-non-root", {"containers__0__securityContext__runAsNonRoot": False}),
    ("k8s-run-as-non-root", {"containers__0__securityContext__runAsUser": 0.0}),
    ("k8s-run-as-non-root", {"containers__0__securityContext__runAsNonRoot": DELETE}),
    (
        "k8s-read-only-root-filesystem",
        {"containers__0__securityContext__readOnlyRootFilesystem": False},
    ),
    ("k8s-resource-limits", {"containers__0__resources__limits__memory": DELETE}),
    ("k8s-resource-limits", {"containers__0__resources__limits": DELETE}),
    ("k8s-no-privileged", {"containers__0__securityContext__privileged": True}),
    (
        "k8s-no-privilege-escalation",
        {"containers__0__securityContext__allowPrivilegeEscalation": DELETE},
    ),
    (
        "k8s-no-privilege-escalation",
        {"containers__0__securityContext__allowPrivilegeEscalation": True},
    ),
    (
        "k8s-drop-all-capabilities",
        {"containers__0__securityContext__capabilities__drop": ["NET_RAW"]},
    ),
    ("k8s-pinned-images", {"containers__0__image": "mlops-stack/runtime:latest"}),
    ("k8s-pinned-images", {"containers__0__image": "registry.local:5000/mlops-stack/runtime"}),
    ("k8s-no-host-path", {"volumes__0": {"name": "docker", "hostPath": {"path": "/var/run"}}}),
    ("k8s-no-host-namespaces", {"hostNetwork": True}),
    ("k8s-no-host-namespaces", {"hostPID": True}),
]
K8S_CASES = [
    _case(
        rule, WORKLOADS[kind], workload(kind, changed(POD_SPEC, **change)), id=f"{rule}-{kind}-{i}"
    )
    for kind in WORKLOADS
    for i, (rule, change) in enumerate(K8S_VIOLATIONS)
]
INIT_CONTAINER_CASE = _case(
    "k8s-read-only-root-filesystem",
    WORKLOADS["Deployment"],
    workload(
        "Deployment",
        changed(
            POD_SPEC,
            initContainers=[changed(CONTAINER, securityContext__readOnlyRootFilesystem=DELETE)],
        ),
    ),
    id="k8s-read-only-root-filesystem-init-container",
)
ALL_RESOURCE_CASES = [*RESOURCE_VIOLATIONS, *K8S_CASES, INIT_CONTAINER_CASE]


def fired(type_: str, props: Mapping[str, Any], ctx: Context) -> set[str]:
    return {v.rule for v in check_resource(type_, props, ctx)}


@pytest.mark.parametrize(("type_", "props"), COMPLIANT)
def test_compliant_resource_passes_every_rule(type_: str, props: dict[str, Any]) -> None:
    assert check_resource(type_, props, PROD) == []


@pytest.mark.parametrize(("rule", "type_", "props", "ctx"), ALL_RESOURCE_CASES)
def test_rule_catches_its_violating_resource(
    rule: str, type_: str, props: dict[str, Any], ctx: Context
) -> None:
    violations = check_resource(type_, props, ctx)

    assert {v.rule for v in violations} == {rule}
    assert all(v.message for v in violations)


def test_dev_resources_need_no_prod_safety() -> None:
    dev_table = changed(
        TABLE, pointInTimeRecovery=DELETE, deletionProtectionEnabled=False, tags__environment="dev"
    )
    dev_database = changed(
        DATABASE, multiAz=False, backupRetentionPeriod=1.0, deletionProtection=False
    )
    dev = Context(stack="fraud-dev", protect=False)

    assert check_resource(T_TABLE, dev_table, dev) == []
    assert check_resource(T_DB, changed(dev_database, tags__environment="dev"), dev) == []
    # A prod tag makes it prod whatever the stack name says.
    assert fired(T_DB, dev_database, dev) == {
        "rds-multi-az-prod",
        "rds-backups-prod",
        "rds-deletion-protection-prod",
        "protect-stateful-prod",
    }


def test_unknown_values_are_no_violation() -> None:
    """During preview computed values are unknown; the pack runs again when they are known."""
    assert check_resource(T_ROLE, changed(ROLE, assumeRolePolicy=UNKNOWN), PROD) == []
    assert check_resource(T_POLICY, changed(ROLE_POLICY, policy=UNKNOWN), PROD) == []
    assert check_resource(T_DB, changed(DATABASE, backupRetentionPeriod=UNKNOWN), PROD) == []
    image = changed(POD_SPEC, containers__0__image=UNKNOWN)
    assert check_resource(WORKLOADS["Pod"], workload("Pod", image), PROD) == []


@pytest.mark.parametrize(
    "image",
    ["mlops-stack/runtime:0.1.0", "registry.local:5000/runtime:1.2", "runtime@sha256:" + "a" * 64],
)
def test_pinned_images_pass(image: str) -> None:
    assert rules.image_problem(image) is None


def test_the_placeholder_digest_new_team_writes_is_not_a_pinned_image() -> None:
    image = "<account>.dkr.ecr.eu-west-1.amazonaws.com/payments-prod/runtime@sha256:" + "0" * 64
    assert rules.image_problem(image) == (
        f"image {image!r} has the all-zero placeholder digest `mlops new-team` writes: push the "
        "image (`mlops image build --push <repository>`) and set mlops:image to the "
        "<repository>@sha256:<digest> it prints"
    )


def test_kms_key_policies_are_not_identity_policies() -> None:
    """A key policy must grant the account `kms:*` on `*`; only identity policies are checked."""
    key = changed(KEY, policy=doc({"Effect": "Allow", "Action": "kms:*", "Resource": "*"}))
    assert check_resource("aws:kms/key:Key", key, PROD) == []


# ---------------------------------------------------------------------------------------------
# Stack rules: a bucket and the resources that configure it

BUCKET_NAME = "fraud-prod-features-0b60318"
BUCKET_URN = "urn:pulumi:fraud-prod::mlops::aws:s3/bucket:Bucket::features"


def s3_stack(name: str = BUCKET_NAME, urn: str = BUCKET_URN) -> dict[str, Resource]:
    arn = f"arn:aws:s3:::{name}"

    def part(role: str, type_: str, props: dict[str, Any]) -> Resource:
        return Resource(type_, f"{urn}-{role}", {"bucket": name, **props}, dependencies=(urn,))

    return {
        "bucket": Resource(
            "aws:s3/bucket:Bucket", urn, {**BUCKET, "bucket": name, "id": name, "arn": arn}, True
        ),
        "encryption": part(
            "encryption",
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            {
                "rules": [
                    {
                        "applyServerSideEncryptionByDefault": {
                            "sseAlgorithm": "aws:kms",
                            "kmsMasterKeyId": KEY_ARN,
                        },
                        "bucketKeyEnabled": True,
                    }
                ]
            },
        ),
        "public-access": part(
            "public-access",
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            {flag: True for flag in rules.PUBLIC_ACCESS_FLAGS},
        ),
        "policy": part(
            "policy",
            "aws:s3/bucketPolicy:BucketPolicy",
            {
                "policy": doc(
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "s3:*",
                        "Resource": [arn, f"{arn}/*"],
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                )
            },
        ),
        "versioning": part(
            "versioning",
            "aws:s3/bucketVersioning:BucketVersioning",
            {"versioningConfiguration": {"status": "Enabled"}},
        ),
        "logging": part(
            "logging",
            "aws:s3/bucketLogging:BucketLogging",
            {"targetBucket": "fraud-prod-access-logs-1", "targetPrefix": "features/"},
        ),
    }


def with_props(resource: Resource, **paths: Any) -> Resource:
    return Resource(
        resource.type,
        resource.urn,
        changed(resource.props, **paths),
        resource.protect,
        resource.dependencies,
    )


def s3_without(role: str) -> list[Resource]:
    return [r for key, r in s3_stack().items() if key != role]


def s3_changed(role: str, **paths: Any) -> list[Resource]:
    return [with_props(r, **paths) if key == role else r for key, r in s3_stack().items()]


ALLOW_ONLY = doc(
    {
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::1:root"},
        "Action": "s3:GetObject",
        "Resource": "*",
    }
)
STACK_VIOLATIONS = [
    pytest.param("s3-bucket-encryption", s3_without("encryption"), id="no-encryption"),
    pytest.param(
        "s3-bucket-encryption",
        s3_changed("encryption", rules__0__applyServerSideEncryptionByDefault=DELETE),
        id="encryption-rule-without-algorithm",
    ),
    pytest.param(
        "s3-public-access-block", s3_without("public-access"), id="no-public-access-block"
    ),
    pytest.param(
        "s3-public-access-block",
        s3_changed("public-access", restrictPublicBuckets=False),
        id="public-access-block-flag-off",
    ),
    pytest.param("s3-tls-only", s3_without("policy"), id="no-bucket-policy"),
    pytest.param(
        "s3-tls-only", s3_changed("policy", policy=ALLOW_ONLY), id="policy-without-tls-deny"
    ),
    pytest.param("s3-versioning", s3_without("versioning"), id="no-versioning"),
    pytest.param("s3-access-logging", s3_without("logging"), id="no-access-logging"),
    pytest.param(
        "s3-access-logging", s3_changed("logging", targetBucket=None), id="logging-nowhere"
    ),
    pytest.param(
        "s3-versioning",
        s3_changed("versioning", versioningConfiguration__status="Suspended"),
        id="versioning-suspended",
    ),
]


def test_compliant_bucket_passes_every_stack_rule() -> None:
    assert check_stack(list(s3_stack().values()), "fraud-prod") == []


@pytest.mark.parametrize(("rule", "resources"), STACK_VIOLATIONS)
def test_stack_rule_catches_its_violating_bucket(rule: str, resources: list[Resource]) -> None:
    violations = check_stack(resources, "fraud-prod")

    assert [(v.rule, v.urn) for v in violations] == [(rule, BUCKET_URN)]


def test_bucket_settings_do_not_leak_to_another_bucket() -> None:
    other_urn = "urn:pulumi:fraud-prod::mlops::aws:s3/bucket:Bucket::models"
    other = [r for key, r in s3_stack("fraud-prod-models-1", other_urn).items() if key == "bucket"]

    violations = check_stack([*s3_stack().values(), *other], "fraud-prod")

    assert {(v.rule, v.urn) for v in violations} == {
        (rule, other_urn)
        for rule in (
            "s3-bucket-encryption",
            "s3-public-access-block",
            "s3-tls-only",
            "s3-versioning",
            "s3-access-logging",
        )
    }


def test_computed_bucket_names_link_by_dependency() -> None:
    """In preview a `bucketPrefix` bucket's name is unknown: its parts are found by dependency."""
    unknown = [
        with_props(r, bucket=UNKNOWN, **({"id": UNKNOWN} if r.urn == BUCKET_URN else {}))
        for r in s3_stack().values()
    ]
    assert check_stack(unknown, "fraud-prod") == []
    without_block = [r for r in unknown if not r.urn.endswith("public-access")]
    assert [v.rule for v in check_stack(without_block, "fraud-prod")] == ["s3-public-access-block"]


COST_MODEL_URN = "urn:pulumi:fraud-prod::mlops::mlops:cost:CostModel::cost"
DB_URN = "urn:pulumi:fraud-prod::mlops::aws:rds/instance:Instance::registry-db"


def budget_stack(monthly_usd: float | None) -> list[Resource]:
    """A database whose top of range is worked out by hand, and the stack's cost model."""
    database = {
        "engine": "postgres",
        "instanceClass": "db.r6g.large",
        "multiAz": True,
        "allocatedStorage": 100,
        "storageType": "gp3",
    }
    usage = Usage().model_dump(by_alias=True, mode="json")
    model = {"region": "eu-west-1", "monthlyUsd": monthly_usd, "warnAtPercent": 80, "usage": usage}
    return [
        Resource(T_DB, DB_URN, database),
        Resource("mlops:cost:CostModel", COST_MODEL_URN, model),
    ]


# eu-west-1: db.r6g.large $0.25/h x 730 h x 2 (Multi-AZ) + gp3 $0.127/GB x 100 GB x 2
BUDGET_STACK_HIGH = 365.0 + 25.4
BUDGET_VIOLATIONS = [
    pytest.param("budget-exceeded", 300.0, id="over-budget"),
    pytest.param("budget-warning", 450.0, id="past-80-percent"),  # 87 %
]


@pytest.mark.parametrize(("rule", "monthly_usd"), BUDGET_VIOLATIONS)
def test_budget_rule_catches_its_violating_stack(rule: str, monthly_usd: float) -> None:
    violations = check_stack(budget_stack(monthly_usd), "fraud-prod")

    share = BUDGET_STACK_HIGH / monthly_usd * 100
    assert [(v.rule, v.urn, v.advisory) for v in violations] == [
        (rule, COST_MODEL_URN, rule == "budget-warning")
    ]
    assert f"${BUDGET_STACK_HIGH:,.2f} a month" in violations[0].message
    assert (
        f"({share:.0f} %)" in violations[0].message or f"{share:.0f} % of" in violations[0].message
    )


@pytest.mark.parametrize(
    ("monthly_usd", "found"),
    [
        pytest.param(None, [], id="no-budget"),
        pytest.param(1000.0, [], id="well-within"),
        pytest.param(BUDGET_STACK_HIGH, ["budget-warning"], id="exactly-at-the-budget"),
    ],
)
def test_a_stack_within_its_budget_does_not_fail(
    monthly_usd: float | None, found: list[str]
) -> None:
    assert [v.rule for v in check_stack(budget_stack(monthly_usd), "fraud-prod")] == found


def test_a_budget_in_a_region_without_prices_fails_with_the_reason() -> None:
    resources = budget_stack(300.0)
    resources[1] = with_props(resources[1], region="ap-south-2")

    [violation] = check_stack(resources, "fraud-prod")

    assert violation.rule == "budget-exceeded"
    assert violation.message.startswith("no prices for region ap-south-2")


def test_every_rule_has_a_violating_fixture() -> None:
    from tests.policy.test_database_rules import RULES as DATABASE_RULES
    from tests.policy.test_image_rules import IMAGE_RULES
    from tests.policy.test_isolation_rules import VIOLATING_RULES
    from tests.policy.test_platform_rules import PLATFORM_STACK_RULES, PLATFORM_VIOLATIONS
    from tests.policy.test_sagemaker_rules import VIOLATIONS as SAGEMAKER_VIOLATIONS

    caught = (
        {p.values[0] for p in ALL_RESOURCE_CASES}
        | {p.values[0] for p in STACK_VIOLATIONS}
        | {p.values[0] for p in BUDGET_VIOLATIONS}
        | {p.values[0] for p in SAGEMAKER_VIOLATIONS}
    )
    caught |= {p.values[0] for p in PLATFORM_VIOLATIONS} | PLATFORM_STACK_RULES | VIOLATING_RULES
    caught |= IMAGE_RULES | DATABASE_RULES
    assert caught == set(RULE_NAMES)
    assert len(RULE_NAMES) == len(set(RULE_NAMES)) >= 20


# ---------------------------------------------------------------------------------------------
# The example stacks, through the offline path


def test_example_stack_passes_the_whole_pack(example_plan: Plan) -> None:
    assert check_plan(example_plan) == []


def test_the_pack_sees_what_the_stacks_create() -> None:
    """The example stacks pass because they comply, not because the rules never match."""
    plan = planned("fraud-prod")
    types = {
        r.type
        for stack in (plan, planned("platform/prod"), planned("forecasting-dev"))
        for r in stack.resources
        if r.custom
    }
    applied = {rule.name for rule in RESOURCE_RULES for t in types if rule.applies_to(t)}
    assert set(RULE_NAMES) - applied - {r.name for r in STACK_RULES} == set()
    assert any(r.type in rules.BUCKET_TYPES for r in plan.resources)


def _mutated(plan: Plan, type_: str, change: Callable[[Any], None]) -> tuple[Plan, str]:
    plan = copy.deepcopy(plan)
    target = next(r for r in plan.resources if r.type == type_)
    change(target)
    return plan, target.urn


def _set(path: str, value: Any) -> Callable[[Any], None]:
    def apply(resource: Any) -> None:
        resource.inputs = changed(resource.inputs, **{path: value})

    return apply


def _unprotect(resource: Any) -> None:
    resource.protect = False


@pytest.mark.parametrize(
    ("rule", "type_", "change"),
    [
        ("rds-not-public", T_DB, _set("publiclyAccessible", True)),
        ("rds-multi-az-prod", T_DB, _set("multiAz", False)),
        ("protect-stateful-prod", T_TABLE, _unprotect),
        (
            "k8s-pinned-images",
            WORKLOADS["Deployment"],
            _set("spec__template__spec__containers__0__image", "mlops-stack/runtime:latest"),
        ),
        (
            "k8s-run-as-non-root",
            WORKLOADS["CronJob"],
            _set(
                "spec__jobTemplate__spec__template__spec__containers__0__securityContext__runAsNonRoot",
                False,
            ),
        ),
        (
            "cloudwatch-alarm-ok-actions",
            "aws:cloudwatch/metricAlarm:MetricAlarm",
            _set("okActions", []),
        ),
    ],
)
def test_a_broken_real_plan_is_caught(rule: str, type_: str, change: Callable[[Any], None]) -> None:
    plan, urn = _mutated(planned("fraud-prod"), type_, change)

    assert [(v.rule, v.urn) for v in check_plan(plan)] == [(rule, urn)]


def test_a_real_bucket_without_public_access_block_is_caught() -> None:
    plan = copy.deepcopy(planned("fraud-prod"))
    block = next(r for r in plan.resources if r.type in rules.PUBLIC_ACCESS_BLOCK_TYPES)
    plan.resources.remove(block)
    bucket = next(r for r in plan.resources if r.urn in block.dependencies)

    assert [(v.rule, v.urn) for v in check_plan(plan)] == [("s3-public-access-block", bucket.urn)]


def _pulumi_aws_takes_tags(type_: str) -> bool:
    module, name = type_.split(":")[1].split("/")[0], type_.rsplit(":", 1)[-1]
    cls = getattr(importlib.import_module(f"pulumi_aws.{module}"), name)
    return "tags" in inspect.signature(cls._internal_init).parameters


def test_every_taggable_type_the_stacks_create_is_known() -> None:
    """The tag rule knows which types take tags even when a resource omits them (CrossGuard
    sees no `tags` key then); the provider SDK says which do."""
    types = {
        r.type
        for stack in ("fraud-prod", "recommendations-dev", "platform/prod")
        for r in planned(stack).resources
        if r.type.startswith("aws:") and r.custom
    }
    assert {t for t in types if _pulumi_aws_takes_tags(t)} <= rules.TAGGABLE_TYPES
    assert all(_pulumi_aws_takes_tags(t) for t in rules.TAGGABLE_TYPES if t in types)


# ---------------------------------------------------------------------------------------------
# CrossGuard: the same functions behind the policy pack


def test_the_pack_has_one_policy_per_rule_mandatory_but_for_warnings() -> None:
    policies = crossguard.policies()

    assert [p.name for p in policies] == RULE_NAMES
    advisory = {r.name for r in STACK_RULES if r.advisory}
    assert advisory == {"budget-warning", "serving-trusts-model-code"}
    assert all(
        p.enforcement_level
        == (EnforcementLevel.ADVISORY if p.name in advisory else EnforcementLevel.MANDATORY)
        for p in policies
    )
    kinds = {p.name: type(p) for p in policies}
    assert all(kinds[r.name] is ResourceValidationPolicy for r in RESOURCE_RULES)
    assert all(kinds[r.name] is StackValidationPolicy for r in STACK_RULES)
    assert all(p.description for p in policies)


def _opts(protect: bool) -> PolicyResourceOptions:
    return PolicyResourceOptions(protect, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


@pytest.mark.parametrize(("rule", "type_", "props", "ctx"), ALL_RESOURCE_CASES)
def test_crossguard_policy_wraps_the_pure_rule(
    rule: str, type_: str, props: dict[str, Any], ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crossguard, "stack_name", lambda: ctx.stack)
    policy = next(p for p in crossguard.policies() if p.name == rule)
    pure = next(r for r in RESOURCE_RULES if r.name == rule)
    reported: list[str] = []
    # Props as CrossGuard hands them: deserialized, wrapped in its unknown-checking proxy.
    args = ResourceValidationArgs(
        type_, unknown_checking_proxy(copy.deepcopy(props)), "urn:x", "x", _opts(ctx.protect), None
    )

    policy.validate(args, lambda message, urn=None: reported.append(message))

    assert reported == pure.check(type_, props, ctx)
    assert reported


def test_crossguard_props_with_unknowns_read_like_the_plan() -> None:
    props = {"a": {"b": [1, UNKNOWN_STRING_VALUE]}, "c": UNKNOWN_STRING_VALUE, "d": True}
    assert crossguard.plain(unknown_checking_proxy(props)) == {
        "a": {"b": [1, UNKNOWN]},
        "c": UNKNOWN,
        "d": True,
    }


def _struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    return json_format.ParseDict(dict(props), struct_pb2.Struct())


def _engine(stack: str, monkeypatch: pytest.MonkeyPatch) -> _PolicyAnalyzerServicer:
    """The analyzer the Pulumi engine talks to, serving the pack's policies, for `stack`."""
    for key, value in {
        "PULUMI_PROJECT": "mlops",
        "PULUMI_STACK": stack,
        "PULUMI_DRY_RUN": "true",
    }.items():
        monkeypatch.setenv(key, value)
    return _PolicyAnalyzerServicer(
        crossguard.PACK_NAME, "0.1.0", crossguard.policies(), EnforcementLevel.MANDATORY
    )


def _engine_diagnostics(plan: Plan, monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    """Run the plan through CrossGuard's own Analyze/AnalyzeStack, as `pulumi preview` would."""
    engine = _engine(plan.stack, monkeypatch)
    created = [r for r in plan.resources if r.custom and not r.read]
    found = []

    def run() -> None:
        for r in created:
            request = analyzer_pb2.AnalyzeRequest(
                type=r.type,
                properties=_struct(r.inputs),
                urn=r.urn,
                name=r.name,
                options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect),
            )
            found.extend((d.policyName, r.urn) for d in engine.Analyze(request, None).diagnostics)
        stack_request = analyzer_pb2.AnalyzeStackRequest(
            resources=[
                analyzer_pb2.AnalyzerResource(
                    type=r.type,
                    properties=_struct(r.outputs),
                    urn=r.urn,
                    name=r.name,
                    options=analyzer_pb2.AnalyzerResourceOptions(protect=r.protect),
                    parent=r.parent or "",
                    dependencies=r.dependencies,
                )
                # The engine hands a stack policy every resource, components too.
                for r in plan.resources
                if not r.read
            ]
        )
        found.extend(
            (d.policyName, d.urn) for d in engine.AnalyzeStack(stack_request, None).diagnostics
        )

    # The analyzer configures the SDK's (context-local) settings; keep them out of other tests.
    contextvars.Context().run(run)
    return found


def test_crossguard_engine_path_passes_an_example_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _engine_diagnostics(planned("fraud-prod"), monkeypatch) == []


def test_crossguard_engine_path_reports_what_check_plan_reports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = copy.deepcopy(planned("fraud-prod"))
    for r in plan.resources:
        if r.type == T_DB:
            r.inputs = changed(r.inputs, multiAz=False, publiclyAccessible=True)
        if r.type == T_TABLE:
            r.protect = False
    plan.resources = [r for r in plan.resources if r.type not in rules.VERSIONING_TYPES]

    offline = sorted((v.rule, v.urn) for v in check_plan(plan))

    assert sorted(_engine_diagnostics(plan, monkeypatch)) == offline
    assert {rule for rule, _ in offline} == {
        "rds-multi-az-prod",
        "rds-not-public",
        "protect-stateful-prod",
        "s3-versioning",
    }


def test_crossguard_engine_path_judges_the_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    plan = copy.deepcopy(planned("fraud-prod"))
    model = next(r for r in plan.resources if r.type == "mlops:cost:CostModel")
    model.outputs = {**model.outputs, "monthlyUsd": 100}

    offline = [(v.rule, v.urn) for v in check_plan(plan)]

    assert offline == [("budget-exceeded", model.urn)]
    assert _engine_diagnostics(plan, monkeypatch) == offline


def test_crossguard_engine_links_computed_bucket_names_by_dependency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Preview: a `bucketPrefix` bucket's name is CrossGuard's unknown sentinel everywhere."""
    plan = copy.deepcopy(planned("fraud-dev"))
    for r in plan.resources:
        if r.type.startswith("aws:s3/"):
            r.outputs = changed(r.outputs, bucket=UNKNOWN_STRING_VALUE)
            r.inputs = (
                changed(r.inputs, bucket=UNKNOWN_STRING_VALUE) if "bucket" in r.inputs else r.inputs
            )
    assert _engine_diagnostics(plan, monkeypatch) == []

    block = next(r for r in plan.resources if r.type in rules.PUBLIC_ACCESS_BLOCK_TYPES)
    plan.resources.remove(block)
    assert [rule for rule, _ in _engine_diagnostics(plan, monkeypatch)] == [
        "s3-public-access-block"
    ]


def test_pack_entry_point_serves_the_policies(monkeypatch: pytest.MonkeyPatch) -> None:
    """`policy/__main__.py` as the analyzer runs it, with the gRPC server swapped for a recorder."""
    served: dict[str, Any] = {}
    monkeypatch.setattr(pulumi_policy, "PolicyPack", lambda **kwargs: served.update(kwargs))

    runpy.run_path(str(Path(crossguard.__file__).with_name("__main__.py")), run_name="__main__")

    assert served["name"] == crossguard.PACK_NAME
    assert served["enforcement_level"] == EnforcementLevel.MANDATORY
    assert [p.name for p in served["policies"]] == RULE_NAMES


# ---------------------------------------------------------------------------------------------
# `mlops policy`

runner = CliRunner()


def test_policy_command_passes_an_example_stack() -> None:
    result = runner.invoke(app, ["policy", "fraud-dev"])

    assert result.exit_code == 0, result.output
    assert "✓ fraud-dev" in result.output


def test_policy_command_fails_on_violations(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = copy.deepcopy(planned("fraud-prod"))
    for r in broken.resources:
        if r.type == T_DB:
            r.inputs = changed(r.inputs, publiclyAccessible=True)
    monkeypatch.setattr("tooling.cli.plan_stack", lambda file: broken)

    result = runner.invoke(app, ["policy", "fraud-prod"])

    assert result.exit_code == 1
    assert "rds-not-public" in result.output
    assert "publiclyAccessible: false" in result.output
