"""DynamoDB tables: encryption, and recovery in prod."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules.properties import dig, is_off, is_prod
from policy.rules.registry import Context, resource_rule

DYNAMODB_TABLE = "aws:dynamodb/table:Table"


@resource_rule(
    "dynamodb-encryption",
    "DynamoDB tables use server-side encryption with a KMS key.",
    DYNAMODB_TABLE,
)
def dynamodb_encryption(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if is_off(dig(props, "serverSideEncryption.enabled")):
        return [
            "set serverSideEncryption.enabled: true (and kmsKeyArn to the team's data key) "
            "instead of the AWS-owned default key"
        ]
    return []


@resource_rule(
    "dynamodb-pitr-prod",
    "Prod DynamoDB tables have point-in-time recovery.",
    DYNAMODB_TABLE,
)
def dynamodb_pitr_prod(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if is_prod(props, ctx.stack) and is_off(dig(props, "pointInTimeRecovery.enabled")):
        return ["prod table without point-in-time recovery: set pointInTimeRecovery.enabled: true"]
    return []


@resource_rule(
    "dynamodb-deletion-protection-prod",
    "Prod DynamoDB tables have deletion protection.",
    DYNAMODB_TABLE,
)
def dynamodb_deletion_protection_prod(
    type_: str, props: Mapping[str, Any], ctx: Context
) -> list[str]:
    if is_prod(props, ctx.stack) and is_off(props.get("deletionProtectionEnabled")):
        return ["prod table without deletion protection: set deletionProtectionEnabled: true"]
    return []
