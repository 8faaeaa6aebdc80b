"""The platform's security rules: pure functions over resource properties.

One set of functions, two callers:

- CrossGuard (`policy/__main__.py` via `policy.crossguard`) during a real `pulumi preview/up
  --policy-pack policy`: a resource rule gets `args.resource_type` and `args.props` (the inputs,
  camelCase keys), a stack rule gets every resource's outputs;
- the offline path, `check_plan(plan)`, over a mock-engine plan: resource rules get
  `PlannedResource.inputs`, stack rules get `PlannedResource.outputs`: the same shapes.

Values that cannot be known yet (computed during preview: `[unknown]` in a plan, CrossGuard's
sentinels, normalised to `UNKNOWN` by the adapter) never count as a violation; `pulumi up` runs
the pack again once they are known.

One module per service or concern (`s3`, `iam`, `workloads`, `platform`, ...); `registry` holds
the rule types and the runners, `properties` the helpers every module reads props with. A module
registers its rules when it is imported: the imports below are the order of the rules in reports
and in the pack.
"""

from __future__ import annotations

# isort: off
from policy.rules import (
    s3,
    dynamodb,
    rds,
    iam,
    monitoring,
    kms,
    ecr,
    tags,
    protection,
    workloads,
    isolation,
    models,
    ingress,
    sagemaker,
    budgets,
    platform,
    rbac,
    tls,
)

# isort: on
from policy.rules.dynamodb import DYNAMODB_TABLE
from policy.rules.ecr import ECR_REPOSITORY
from policy.rules.iam import IAM_POLICY_TYPES, IAM_ROLE, WEB_IDENTITY, identity_documents
from policy.rules.monitoring import ALARM_TYPES
from policy.rules.platform import (
    EC2_INSTANCE,
    EKS_ACCESS_TYPES,
    EKS_ADDON,
    EKS_CLUSTER,
    LAUNCH_TEMPLATE,
    LOG_GROUP,
    NAT_GATEWAY,
    OPEN_CIDRS,
    REQUIRED_CONTROL_PLANE_LOGS,
    SUBNET,
)
from policy.rules.properties import (
    ENVIRONMENT_LABEL,
    PROD,
    UNKNOWN,
    as_list,
    dig,
    is_off,
    is_prod,
    is_true,
    known,
    policy_document,
    resource_environment,
    stack_environment,
    statements,
)
from policy.rules.protection import STATEFUL_TYPES
from policy.rules.rbac import ADMIN_ROLES, RBAC_BINDING_TYPES, RBAC_ROLE_TYPES
from policy.rules.rds import MIN_PROD_BACKUP_DAYS, RDS_CLUSTER, RDS_INSTANCE
from policy.rules.registry import (
    RESOURCE_RULES,
    STACK_RULES,
    Context,
    Resource,
    ResourceCheck,
    ResourceRule,
    StackCheck,
    StackRule,
    Violation,
    check_plan,
    check_resource,
    check_stack,
    resource_rule,
    stack_rule,
)
from policy.rules.s3 import (
    BUCKET_POLICY_TYPES,
    BUCKET_TYPES,
    PUBLIC_ACCESS_BLOCK_TYPES,
    PUBLIC_ACCESS_FLAGS,
    SSE_TYPES,
    VERSIONING_TYPES,
    attached,
)
from policy.rules.tags import REQUIRED_TAGS, TAGGABLE_TYPES
from policy.rules.tls import MIN_RSA_BITS
from policy.rules.workloads import (
    CONTAINER_LISTS,
    POD_SPEC_PATHS,
    WORKLOAD_TYPES,
    ContainerCheck,
    containers,
    image_problem,
    pod_spec,
)

RULE_NAMES = [r.name for r in RESOURCE_RULES] + [r.name for r in STACK_RULES]

__all__ = [
    "ADMIN_ROLES",
    "ALARM_TYPES",
    "BUCKET_POLICY_TYPES",
    "BUCKET_TYPES",
    "CONTAINER_LISTS",
    "DYNAMODB_TABLE",
    "EC2_INSTANCE",
    "ECR_REPOSITORY",
    "EKS_ACCESS_TYPES",
    "EKS_ADDON",
    "EKS_CLUSTER",
    "ENVIRONMENT_LABEL",
    "IAM_POLICY_TYPES",
    "IAM_ROLE",
    "LAUNCH_TEMPLATE",
    "LOG_GROUP",
    "MIN_PROD_BACKUP_DAYS",
    "MIN_RSA_BITS",
    "NAT_GATEWAY",
    "OPEN_CIDRS",
    "POD_SPEC_PATHS",
    "PROD",
    "PUBLIC_ACCESS_BLOCK_TYPES",
    "PUBLIC_ACCESS_FLAGS",
    "RBAC_BINDING_TYPES",
    "RBAC_ROLE_TYPES",
    "RDS_CLUSTER",
    "RDS_INSTANCE",
    "REQUIRED_CONTROL_PLANE_LOGS",
    "REQUIRED_TAGS",
    "RESOURCE_RULES",
    "RULE_NAMES",
    "SSE_TYPES",
    "STACK_RULES",
    "STATEFUL_TYPES",
    "SUBNET",
    "TAGGABLE_TYPES",
    "UNKNOWN",
    "VERSIONING_TYPES",
    "WEB_IDENTITY",
    "WORKLOAD_TYPES",
    "ContainerCheck",
    "Context",
    "Resource",
    "ResourceCheck",
    "ResourceRule",
    "StackCheck",
    "StackRule",
    "Violation",
    "as_list",
    "attached",
    "budgets",
    "check_plan",
    "check_resource",
    "check_stack",
    "containers",
    "dig",
    "dynamodb",
    "ecr",
    "iam",
    "identity_documents",
    "image_problem",
    "ingress",
    "is_off",
    "is_prod",
    "is_true",
    "isolation",
    "kms",
    "known",
    "models",
    "monitoring",
    "platform",
    "pod_spec",
    "policy_document",
    "protection",
    "rbac",
    "rds",
    "resource_environment",
    "resource_rule",
    "s3",
    "sagemaker",
    "stack_environment",
    "stack_rule",
    "statements",
    "tags",
    "tls",
    "workloads",
]
