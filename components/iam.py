"""IAM documents as plain data (unit-tested without mocks) and the workload identity (IRSA)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components import naming
from components.team import ClusterInfo, Team
from runtime import metrics

Statement = dict[str, Any]


def statement(
    sid: str,
    actions: Sequence[str],
    resources: Sequence[str],
    condition: Mapping[str, Any] | None = None,
) -> Statement:
    """An Allow statement. Wildcard actions are refused here, not only by the policy pack."""
    if any(action == "*" or action.endswith(":*") for action in actions):
        raise ValueError(f"statement {sid!r}: wildcard action in {list(actions)}")
    result: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": list(resources),
    }
    if condition:
        result["Condition"] = dict(condition)
    return result


def policy_document(*statements: Statement) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def irsa_trust_policy(
    oidc_provider_arn: str, oidc_provider_url: str, namespace: str, service_account: str
) -> dict[str, Any]:
    """Trust for exactly one Kubernetes service account, through the cluster's OIDC provider."""
    issuer = oidc_provider_url.removeprefix("https://")
    return policy_document(
        {
            "Sid": "ServiceAccount",
            "Effect": "Allow",
            "Principal": {"Federated": oidc_provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {
                "StringEquals": {
                    f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                    f"{issuer}:aud": "sts.amazonaws.com",
                }
            },
        }
    )


def tls_only_statement(bucket_arn: str) -> Statement:
    """Deny any request to the bucket that does not use TLS."""
    return {
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }


class WorkloadIdentity(pulumi.ComponentResource):
    """A Kubernetes service account and the IAM role only it can assume (IRSA)."""

    role: aws.iam.Role
    """The role; its inline policy is exactly the given document."""
    service_account: k8s.core.v1.ServiceAccount
    """The service account, annotated with the role's ARN."""

    def __init__(
        self,
        name: str,
        *,
        team: Team,
        cluster: ClusterInfo,
        namespace: pulumi.Input[str],
        service_account: str,
        policy: pulumi.Input[str],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:identity:WorkloadIdentity", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        trust = pulumi.Output.all(
            cluster.oidc_provider_arn, cluster.oidc_provider_url, namespace
        ).apply(lambda v: json.dumps(irsa_trust_policy(v[0], v[1], v[2], service_account)))
        # The role a pod of this service account gets, and nothing else can get.
        self.role = aws.iam.Role(
            f"{name}-role",
            name=team.physical(service_account),
            assume_role_policy=trust,
            max_session_duration=3600,
            tags=team.tags,
            opts=child,
        )
        aws.iam.RolePolicy(f"{name}-policy", role=self.role.name, policy=policy, opts=child)
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{name}-sa",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=service_account,
                namespace=namespace,
                labels=team.labels,
                annotations={"eks.amazonaws.com/role-arn": self.role.arn},
            ),
            # No workload of a team calls the Kubernetes API: no API token in its pods (the IRSA
            # webhook mounts its own, STS-only projected token regardless).
            automount_service_account_token=False,
            opts=pulumi.ResourceOptions(parent=self, provider=cluster.provider),
        )
        self.register_outputs({"roleArn": self.role.arn, "serviceAccount": service_account})


def master_secret_statements(secret_arn: str, secret_kms_key_arn: str | None) -> list[Statement]:
    """Read the RDS-managed master secret: the database bootstrap Job's alone (policy pack
    `rds-master-secret-bootstrap-only`)."""
    statements = [statement("MasterSecret", ["secretsmanager:GetSecretValue"], [secret_arn])]
    if secret_kms_key_arn:
        statements.append(statement("MasterSecretKey", ["kms:Decrypt"], [secret_kms_key_arn]))
    return statements


def database_statements(connect_arn: str) -> list[Statement]:
    """Log in to the registry database as one role, with an IAM token (`rds-db:connect` on
    `arn:aws:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<role>`), and nothing else."""
    return [statement("DatabaseLogin", ["rds-db:connect"], [connect_arn])]


def login_statements(connect_arn: str | None) -> list[Statement]:
    """`database_statements` when the workload logs in to the database; none otherwise."""
    return database_statements(connect_arn) if connect_arn else []


def db_user_arn(instance_arn: str, resource_id: str, username: str) -> str:
    """The `rds-db:connect` resource of ``username`` on the instance ``instance_arn``."""
    _, partition, _, region, account, *_ = instance_arn.split(":")
    return f"arn:{partition}:rds-db:{region}:{account}:dbuser:{resource_id}/{username}"


def read_bucket_statements(sid: str, bucket_arn: str) -> list[Statement]:
    return [
        statement(f"{sid}List", ["s3:ListBucket", "s3:GetBucketLocation"], [bucket_arn]),
        statement(f"{sid}Get", ["s3:GetObject"], [f"{bucket_arn}/*"]),
    ]


def online_read_statement(
    sid: str, table_arns: Sequence[str], *, describe: bool
) -> list[Statement]:
    if not table_arns:
        return []
    actions = ["dynamodb:GetItem", "dynamodb:BatchGetItem"]
    if describe:
        actions.append("dynamodb:DescribeTable")
    return [statement(sid, actions, list(table_arns))]


def kms_statement(key_arns: Sequence[str], *, encrypt: bool) -> list[Statement]:
    if not key_arns:
        return []
    actions = ["kms:Decrypt", "kms:DescribeKey"]
    if encrypt:
        actions.append("kms:GenerateDataKey")
    return [statement("UseDataKeys", actions, list(key_arns))]


def metrics_statement(team: str) -> Statement:
    """PutMetricData has no resource ARN: the namespace condition is what scopes it."""
    return statement(
        "PutTeamMetrics",
        ["cloudwatch:PutMetricData"],
        ["*"],
        {"StringEquals": {"cloudwatch:namespace": metrics.namespace(team)}},
    )


def feast_registry_statements(
    registry_uri: str | None,
    partition: str,
    *,
    write: bool,
    connect_arn: str | None = None,
) -> list[Statement]:
    """Access to the Feast registry: its S3 object, or the login of the database it lives in."""
    statements = login_statements(connect_arn)
    if registry_uri and registry_uri.startswith("s3://"):
        actions = ["s3:GetObject", "s3:PutObject"] if write else ["s3:GetObject"]
        statements.append(
            statement("FeastRegistry", actions, [naming.s3_arn(registry_uri, partition)])
        )
    return statements


def json_policy(build: Callable[..., dict[str, Any]], **inputs: Any) -> pulumi.Output[str]:
    """``build(**resolved inputs)`` as a JSON policy document, once every input is known."""
    return pulumi.Output.all(**inputs).apply(lambda values: json.dumps(build(**values)))
