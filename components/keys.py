"""Who may use and who may manage a KMS key: key policies as plain data (unit-tested without
mocks), shared by the team stacks' keys (components/storage.py) and the platform's cluster key
(components/platform/cluster.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

KEY_ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:Create*",
    "kms:Delete*",
    "kms:Describe*",
    "kms:Disable*",
    "kms:Enable*",
    "kms:Get*",
    "kms:List*",
    "kms:Put*",
    "kms:Revoke*",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:Update*",
)
"""What a key administrator may do (AWS's key-administrator statement): manage, never use."""
KEY_USE_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
)
"""What a user of a data key does with it."""


def administrators_statement(administrators: Sequence[str]) -> dict[str, Any]:
    """The named administrators manage the key (its policy, rotation, deletion); they do not use
    it."""
    return {
        "Sid": "KeyAdministrators",
        "Effect": "Allow",
        "Principal": {"AWS": sorted(administrators)},
        "Action": list(KEY_ADMIN_ACTIONS),
        "Resource": "*",
    }


def key_policy(
    *,
    administrators: Sequence[str],
    users: Sequence[str],
    region: str,
    services: Sequence[str] = (),
    service_principals: Sequence[str] = (),
) -> dict[str, Any]:
    """A key policy that names who administers the key and who uses it; nobody else may.

    No statement delegates to the account (`:root` with kms:*), as the default policy does: an
    IAM policy alone gives nobody the key. ``administrators`` must include whoever runs
    `pulumi up` (KMS refuses a policy that would lock its caller out).
    """
    statements: list[dict[str, Any]] = [administrators_statement(administrators)]
    if services:
        statements.append(
            {
                "Sid": "AdministratorsProvisionThroughServices",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(administrators)},
                "Action": [*KEY_USE_ACTIONS, "kms:CreateGrant"],
                "Resource": "*",
                "Condition": {
                    "StringEquals": {
                        "kms:ViaService": [f"{s}.{region}.amazonaws.com" for s in services]
                    }
                },
            }
        )
    if users:
        statements.append(
            {
                "Sid": "TeamWorkloads",
                "Effect": "Allow",
                "Principal": {"AWS": sorted(set(users))},
                "Action": list(KEY_USE_ACTIONS),
                "Resource": "*",
            }
        )
    if service_principals:
        statements.append(
            {
                "Sid": "Services",
                "Effect": "Allow",
                "Principal": {"Service": sorted(service_principals)},
                "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
                "Resource": "*",
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def key_administrators(configured: Sequence[str], account_id: str, partition: str) -> list[str]:
    """The configured administrators, or (dev, none configured) the account: IAM decides who
    administers, but nobody uses the key through IAM alone. Config requires them in prod
    (`mlops:keyAdministrators`, `platform:keyAdministrators`)."""
    return list(configured) or [f"arn:{partition}:iam::{account_id}:root"]
