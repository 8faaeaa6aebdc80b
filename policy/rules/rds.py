"""RDS databases (instances and Aurora clusters): encryption, exposure, backups, passwords."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules.properties import is_off, is_prod, is_true, known
from policy.rules.registry import Context, resource_rule

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
