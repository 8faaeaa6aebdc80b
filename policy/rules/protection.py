"""`protect` on stateful resources in prod."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from policy.rules.dynamodb import DYNAMODB_TABLE
from policy.rules.properties import is_prod
from policy.rules.rds import RDS_CLUSTER, RDS_INSTANCE
from policy.rules.registry import Context, resource_rule
from policy.rules.s3 import BUCKET_TYPES

STATEFUL_TYPES = frozenset(
    {
        *BUCKET_TYPES,
        DYNAMODB_TABLE,
        RDS_INSTANCE,
        RDS_CLUSTER,
        "aws:efs/fileSystem:FileSystem",
        "aws:secretsmanager/secret:Secret",
    }
)


@resource_rule(
    "protect-stateful-prod",
    "Stateful resources (buckets, tables, databases, secrets) are `protect`ed in prod.",
    *STATEFUL_TYPES,
)
def protect_stateful_prod(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    # Not a property: CrossGuard passes args.opts.protect, the plan its recorded option.
    if is_prod(props, ctx.stack) and not ctx.protect:
        return ["prod data without `protect`: pass ResourceOptions(protect=True)"]
    return []
