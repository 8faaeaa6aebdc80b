"""RDS databases (instances and Aurora clusters): encryption, exposure, backups, passwords; who
may read the master secret and which security group reaches the database."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from policy.rules.iam import IAM_POLICY_TYPES, IAM_ROLE, identity_documents
from policy.rules.models import allows
from policy.rules.properties import (
    as_list,
    dig,
    is_off,
    is_prod,
    is_true,
    known,
    policy_document,
)
from policy.rules.registry import Context, Resource, resource_rule, stack_rule
from policy.rules.workloads import WORKLOAD_TYPES, pod_spec

MIN_PROD_BACKUP_DAYS = 7
RDS_INSTANCE = "aws:rds/instance:Instance"
RDS_CLUSTER = "aws:rds/cluster:Cluster"


def _in_cluster(type_: str, props: Mapping[str, Any]) -> bool:
    """An Aurora member instance: storage, backups and passwords belong to its cluster."""
    return type_ == RDS_INSTANCE and bool(props.get("clusterIdentifier"))


@resource_rule(
    "rds-storage-encrypted", "RDS storage is encrypted at rest.", RDS_INSTANCE, RDS_CLUSTER
)
def rds_storage_encrypted(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not _in_cluster(type_, props) and is_off(props.get("storageEncrypted")):
        return ["set storageEncrypted: true (and kmsKeyId to the team's data key)"]
    return []


@resource_rule("rds-not-public", "RDS instances are not publicly accessible.", RDS_INSTANCE)
def rds_not_public(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if is_true(props.get("publiclyAccessible")):
        return ["set publiclyAccessible: false; reach the database from inside the VPC"]
    return []


@resource_rule(
    "rds-deletion-protection-prod",
    "Prod RDS databases have deletion protection.",
    RDS_INSTANCE,
    RDS_CLUSTER,
)
def rds_deletion_protection_prod(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if (
        is_prod(props, ctx.stack)
        and not _in_cluster(type_, props)
        and is_off(props.get("deletionProtection"))
    ):
        return ["prod database without deletion protection: set deletionProtection: true"]
    return []


@resource_rule(
    "rds-backups-prod",
    f"Prod RDS databases keep automated backups for at least {MIN_PROD_BACKUP_DAYS} days.",
    RDS_INSTANCE,
    RDS_CLUSTER,
)
def rds_backups_prod(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not is_prod(props, ctx.stack) or _in_cluster(type_, props):
        return []
    days = props.get("backupRetentionPeriod")
    if not known(days) and days is not None:
        return []
    if not isinstance(days, (int, float)) or days < MIN_PROD_BACKUP_DAYS:
        return [
            f"prod database keeps backups for {days if days is not None else 'the default'} "
            f"day(s): set backupRetentionPeriod >= {MIN_PROD_BACKUP_DAYS}"
        ]
    return []


@resource_rule("rds-multi-az-prod", "Prod RDS instances are multi-AZ.", RDS_INSTANCE)
def rds_multi_az_prod(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if is_prod(props, ctx.stack) and not _in_cluster(type_, props) and is_off(props.get("multiAz")):
        return ["prod database in a single availability zone: set multiAz: true"]
    return []


@resource_rule(
    "rds-managed-master-password",
    "RDS master passwords are managed by RDS in Secrets Manager, never passed in.",
    RDS_INSTANCE,
    RDS_CLUSTER,
)
def rds_managed_master_password(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if (
        _in_cluster(type_, props)
        or props.get("replicateSourceDb")
        or props.get("snapshotIdentifier")
    ):
        return []  # a member, replica or restore inherits its credentials
    found = []
    if props.get("password") is not None:
        found.append(
            "a master password is passed in (it lands in the state): remove `password` and set "
            "manageMasterUserPassword: true"
        )
    elif is_off(props.get("manageMasterUserPassword")):
        found.append(
            "set manageMasterUserPassword: true so RDS keeps the master password in Secrets Manager"
        )
    return found


# --- least privilege on the registry database (#14) -------------------------------------------

BOOTSTRAP = "database-bootstrap"
"""The one identity (role `<team>-<env>-database-bootstrap`, service account and Job
`database-bootstrap`, components/database.py) that may read the RDS-managed master secret."""
SECURITY_GROUP = "aws:ec2/securityGroup:SecurityGroup"
INGRESS_RULE = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
LEGACY_RULE = "aws:ec2/securityGroupRule:SecurityGroupRule"
SECURITY_GROUP_POLICY = "kubernetes:vpc.amazonaws.com/v1beta1:SecurityGroupPolicy"


def _master_secrets(resources: Sequence[Resource]) -> set[str]:
    return {
        str(arn)
        for r in resources
        if r.type in (RDS_INSTANCE, RDS_CLUSTER)
        for secret in as_list(r.props.get("masterUserSecrets"))
        if known(arn := dig(secret, "secretArn")) and arn
    }


def _is_bootstrap_identity(r: Resource) -> bool:
    name = r.props.get("name") if r.type == IAM_ROLE else r.props.get("role")
    return isinstance(name, str) and name.endswith(f"-{BOOTSTRAP}")


def _is_bootstrap_pod(spec: Mapping[str, Any]) -> bool:
    return spec.get("serviceAccountName") == BOOTSTRAP


@stack_rule(
    "rds-master-secret-bootstrap-only",
    "Only the database bootstrap (role `*-database-bootstrap`, service account "
    "`database-bootstrap`) may read an RDS-managed master secret; every other workload logs in "
    "as a role of its own purpose.",
)
def rds_master_secret_bootstrap_only(
    resources: Sequence[Resource], stack: str
) -> list[tuple[str, str]]:
    found = []
    for secret in sorted(_master_secrets(resources)):
        for r in resources:
            if r.type in IAM_POLICY_TYPES or r.type == IAM_ROLE:
                if _is_bootstrap_identity(r):
                    continue
                for where, raw in identity_documents(r.type, r.props):
                    if allows(policy_document(raw), "secretsmanager:GetSecretValue", secret):
                        found.append(
                            (
                                r.urn,
                                f"{where} grants secretsmanager:GetSecretValue on the master "
                                f"secret {secret}: only the {BOOTSTRAP} role may read it; log in "
                                "as the workload's own database role (rds-db:connect)",
                            )
                        )
            elif r.type in WORKLOAD_TYPES:
                spec = pod_spec(r.type, r.props)
                if not _is_bootstrap_pod(spec) and secret in json.dumps(spec, default=str):
                    found.append(
                        (
                            r.urn,
                            f"the pod is handed the master secret {secret}: only the {BOOTSTRAP} "
                            "Job may be; log in as the workload's own database role",
                        )
                    )
    return found


def _group_id(r: Resource) -> str | None:
    arn = r.props.get("arn")
    if not known(arn) or not isinstance(arn, str) or "/" not in arn:
        return None
    return arn.rsplit("/", 1)[1]


@stack_rule(
    "rds-ingress-pod-security-group",
    "A database's security group admits no address range and no security group but the stack's "
    "own pod security groups (assigned by a SecurityGroupPolicy), never the node group's that "
    "every pod of every team carries.",
)
def rds_ingress_pod_security_group(
    resources: Sequence[Resource], stack: str
) -> list[tuple[str, str]]:
    own = {gid: r for r in resources if r.type == SECURITY_GROUP and (gid := _group_id(r))}
    for_pods = {
        str(g)
        for r in resources
        if r.type == SECURITY_GROUP_POLICY
        for g in as_list(dig(r.props, "spec.securityGroups.groupIds"))
        if known(g)
    }
    database_groups = {
        str(g)
        for r in resources
        if r.type == RDS_INSTANCE
        for g in as_list(r.props.get("vpcSecurityGroupIds"))
        if known(g)
    }
    found = []
    for r in resources:
        if r.type == INGRESS_RULE or (r.type == LEGACY_RULE and r.props.get("type") == "ingress"):
            target = r.props.get("securityGroupId")
            if not known(target) or target not in database_groups:
                continue
            source = r.props.get(
                "referencedSecurityGroupId" if r.type == INGRESS_RULE else "sourceSecurityGroupId"
            )
            addresses = [
                r.props.get(k)
                for k in ("cidrIpv4", "cidrIpv6", "prefixListId", "cidrBlocks", "ipv6CidrBlocks")
                if r.props.get(k)
            ]
            if addresses:
                found.append(
                    (
                        r.urn,
                        f"the database's security group {target} admits addresses {addresses}: "
                        "admit only the pod security group of the pods that log in",
                    )
                )
            elif known(source) and (source not in own or source not in for_pods):
                found.append(
                    (
                        r.urn,
                        f"the database's security group {target} admits {source}, which is "
                        + (
                            "not a security group of this stack (the cluster's node group's?)"
                            if source not in own
                            else "assigned to no pod by a SecurityGroupPolicy"
                        )
                        + ": admit only the stack's database-client group that a "
                        "SecurityGroupPolicy gives the pods that log in",
                    )
                )
    for r in resources:
        gid = _group_id(r) if r.type == SECURITY_GROUP else None
        if gid in database_groups and as_list(r.props.get("ingress")):
            found.append(
                (
                    r.urn,
                    "the database's security group has inline ingress rules: use one "
                    "SecurityGroupIngressRule from the stack's database-client group",
                )
            )
    return found
