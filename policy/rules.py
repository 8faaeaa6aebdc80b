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
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from policy import budget

UNKNOWN = "[unknown]"
"""A value computed by the provider and not known during preview."""

REQUIRED_TAGS = ("team", "environment", "managed-by")
MIN_PROD_BACKUP_DAYS = 7
PROD = "prod"
ENVIRONMENT_LABEL = "mlops.dev/environment"


@dataclass(frozen=True)
class Context:
    """What a resource rule may know beyond the resource's properties."""

    stack: str = ""
    """Stack name (`<team>-<env>`): the environment when the resource carries no tag."""
    protect: bool = False
    """The resource's `protect` option (CrossGuard: `args.opts.protect`; offline: the plan's)."""


@dataclass(frozen=True)
class Resource:
    """One resource as a stack rule sees it (CrossGuard's PolicyResource, or a planned one)."""

    type: str
    urn: str
    props: Mapping[str, Any]
    protect: bool = False
    dependencies: tuple[str, ...] = ()
    """URNs this resource depends on."""
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Input name -> URNs it depends on (CrossGuard knows them; a plan does not)."""


@dataclass(frozen=True)
class Violation:
    rule: str
    urn: str
    message: str
    advisory: bool = False
    """A warning: reported, never fails a stack."""


ResourceCheck = Callable[[str, Mapping[str, Any], Context], list[str]]
StackCheck = Callable[[Sequence[Resource], str], list[tuple[str, str]]]


@dataclass(frozen=True)
class ResourceRule:
    name: str
    description: str
    types: frozenset[str]
    """Resource types it applies to; empty: the check itself decides (e.g. any `aws:` type)."""
    check: ResourceCheck

    def applies_to(self, type_: str) -> bool:
        return not self.types or type_ in self.types


@dataclass(frozen=True)
class StackRule:
    name: str
    description: str
    check: StackCheck
    advisory: bool = False
    """Warn instead of fail (CrossGuard's advisory enforcement)."""


RESOURCE_RULES: list[ResourceRule] = []
STACK_RULES: list[StackRule] = []


def resource_rule(
    name: str, description: str, *types: str
) -> Callable[[ResourceCheck], ResourceCheck]:
    def register(check: ResourceCheck) -> ResourceCheck:
        RESOURCE_RULES.append(ResourceRule(name, description, frozenset(types), check))
        return check

    return register


def stack_rule(
    name: str, description: str, *, advisory: bool = False
) -> Callable[[StackCheck], StackCheck]:
    def register(check: StackCheck) -> StackCheck:
        STACK_RULES.append(StackRule(name, description, check, advisory))
        return check

    return register


# ---------------------------------------------------------------------------------------------
# Property helpers


def known(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and value == UNKNOWN)


def dig(props: Any, path: str) -> Any:
    """`props["a"]["b"]` for path `a.b`; None where a step is missing or not a mapping."""
    value = props
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def is_off(value: Any) -> bool:
    """Missing, or known and not true (a flag that must be on)."""
    return value is None or (known(value) and not is_true(value))


def stack_environment(stack: str) -> str:
    """`fraud-prod` -> `prod`; a platform stack `prod` -> `prod`."""
    return stack.rsplit("-", 1)[-1]


def resource_environment(props: Mapping[str, Any]) -> str:
    """The `environment` AWS tag, or the `mlops.dev/environment` Kubernetes label."""
    tag = dig(props, "tags.environment")
    if isinstance(tag, str) and known(tag):
        return tag
    label = dig(props, "metadata.labels")
    if isinstance(label, Mapping) and isinstance(label.get(ENVIRONMENT_LABEL), str):
        return str(label[ENVIRONMENT_LABEL])
    return ""


def is_prod(props: Mapping[str, Any], stack: str) -> bool:
    """Prod if the resource says so OR the stack name does: a tag cannot opt a prod stack out."""
    return PROD in (resource_environment(props), stack_environment(stack))


# ---------------------------------------------------------------------------------------------
# S3: a bucket and the separate resources that configure it (stack rules)

BUCKET_TYPES = frozenset({"aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"})
SSE_TYPES = frozenset(
    {
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
    }
)
PUBLIC_ACCESS_BLOCK_TYPES = frozenset({"aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"})
BUCKET_POLICY_TYPES = frozenset({"aws:s3/bucketPolicy:BucketPolicy"})
VERSIONING_TYPES = frozenset(
    {
        "aws:s3/bucketVersioning:BucketVersioning",
        "aws:s3/bucketVersioningV2:BucketVersioningV2",
    }
)
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)


def attached(
    bucket: Resource, resources: Iterable[Resource], types: frozenset[str]
) -> list[Resource]:
    """The resources of `types` that configure `bucket`.

    By name when both are known (`pulumi up`, offline plans); by dependency when the bucket
    name is computed (a `bucketPrefix` bucket during preview): the config's `bucket` input then
    depends on the bucket resource.
    """
    names = {bucket.props.get(key) for key in ("bucket", "id")}
    names = {n for n in names if isinstance(n, str) and known(n)}
    found = []
    for resource in resources:
        if resource.type not in types:
            continue
        target = resource.props.get("bucket")
        if isinstance(target, str) and known(target) and names:
            if target in names:
                found.append(resource)
        elif bucket.urn in (resource.property_dependencies.get("bucket") or resource.dependencies):
            found.append(resource)
    return found


def _buckets(resources: Sequence[Resource]) -> Iterator[Resource]:
    return (r for r in resources if r.type in BUCKET_TYPES)


def _sse_rules_ok(rules: Any) -> bool:
    if not known(rules):
        return True
    algorithms = [
        dig(rule, "applyServerSideEncryptionByDefault.sseAlgorithm") for rule in as_list(rules)
    ]
    return bool(algorithms) and all(a for a in algorithms)


@stack_rule(
    "s3-bucket-encryption",
    "Every S3 bucket has default server-side encryption configured.",
)
def s3_bucket_encryption(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    found = []
    for bucket in _buckets(resources):
        inline = bucket.props.get("serverSideEncryptionConfiguration")
        configs = attached(bucket, resources, SSE_TYPES)
        if inline and _sse_rules_ok(dig(inline, "rules") or dig(inline, "rule")):
            continue
        if not configs:
            found.append(
                (
                    bucket.urn,
                    "no BucketServerSideEncryptionConfiguration for this bucket: add one with "
                    "applyServerSideEncryptionByDefault.sseAlgorithm 'aws:kms' (team KMS key) or 'AES256'",
                )
            )
        elif not all(_sse_rules_ok(c.props.get("rules")) for c in configs):
            found.append(
                (
                    bucket.urn,
                    "the bucket's encryption configuration has a rule without "
                    "applyServerSideEncryptionByDefault.sseAlgorithm: set it to 'aws:kms' or 'AES256'",
                )
            )
    return found


@stack_rule(
    "s3-public-access-block",
    "Every S3 bucket has a public access block with all four settings true.",
)
def s3_public_access_block(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    found = []
    for bucket in _buckets(resources):
        blocks = attached(bucket, resources, PUBLIC_ACCESS_BLOCK_TYPES)
        if not blocks:
            found.append(
                (
                    bucket.urn,
                    "no BucketPublicAccessBlock for this bucket: add one with "
                    + ", ".join(f"{flag}=true" for flag in PUBLIC_ACCESS_FLAGS),
                )
            )
            continue
        for block in blocks:
            off = [
                flag
                for flag in PUBLIC_ACCESS_FLAGS
                if known(block.props.get(flag)) and not is_true(block.props.get(flag))
            ]
            if off:
                found.append(
                    (
                        bucket.urn,
                        f"public access block {block.urn.rsplit('::', 1)[-1]!r} leaves "
                        + ", ".join(off)
                        + " off: set "
                        + ", ".join(f"{flag}=true" for flag in off),
                    )
                )
    return found


def policy_document(value: Any) -> Mapping[str, Any] | None:
    """An IAM/resource policy document from a JSON string or a mapping; None if unknown/unparsable."""
    if isinstance(value, Mapping):
        return value
    if isinstance(value, str) and known(value):
        try:
            document = json.loads(value)
        except ValueError:
            return None
        return document if isinstance(document, Mapping) else None
    return None


def statements(document: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    if document is None:
        return []
    return [s for s in as_list(document.get("Statement")) if isinstance(s, Mapping)]


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    if statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    if principal != "*" and dig(principal, "AWS") not in ("*", ["*"]):
        return False
    if not {"s3:*", "*"} & set(as_list(statement.get("Action"))):
        return False
    secure = dig(statement, "Condition.Bool")
    value = secure.get("aws:SecureTransport") if isinstance(secure, Mapping) else None
    return str(value).lower() == "false" or as_list(value) == ["false"]


@stack_rule(
    "s3-tls-only",
    "Every S3 bucket's policy denies requests that do not use TLS.",
)
def s3_tls_only(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    found = []
    for bucket in _buckets(resources):
        documents = [bucket.props.get("policy")] + [
            p.props.get("policy") for p in attached(bucket, resources, BUCKET_POLICY_TYPES)
        ]
        if any(isinstance(d, str) and d == UNKNOWN for d in documents):
            continue
        if not any(
            _denies_insecure_transport(s) for d in documents for s in statements(policy_document(d))
        ):
            found.append(
                (
                    bucket.urn,
                    "no bucket policy statement denies plain-HTTP access: add a BucketPolicy with "
                    '{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": [bucket ARN, '
                    'bucket ARN/*], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}',
                )
            )
    return found


@stack_rule("s3-versioning", "Every S3 bucket has versioning enabled.")
def s3_versioning(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    found = []
    for bucket in _buckets(resources):
        if is_true(dig(bucket.props, "versioning.enabled")):
            continue
        statuses = [
            dig(v.props, "versioningConfiguration.status")
            for v in attached(bucket, resources, VERSIONING_TYPES)
        ]
        if any(s == "Enabled" or not known(s) for s in statuses):
            continue
        found.append(
            (
                bucket.urn,
                "versioning is not enabled: add a BucketVersioning with "
                "versioningConfiguration.status 'Enabled'"
                + (f" (now {statuses[0]!r})" if statuses else ""),
            )
        )
    return found


# ---------------------------------------------------------------------------------------------
# DynamoDB

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


# ---------------------------------------------------------------------------------------------
# RDS

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


# ---------------------------------------------------------------------------------------------
# IAM

IAM_ROLE = "aws:iam/role:Role"
IAM_POLICY_TYPES = frozenset(
    {
        "aws:iam/policy:Policy",
        "aws:iam/rolePolicy:RolePolicy",
        "aws:iam/userPolicy:UserPolicy",
        "aws:iam/groupPolicy:GroupPolicy",
    }
)
_SERVICE_WILDCARD = re.compile(r"^(\*|[A-Za-z0-9-]+:\*)$")
WEB_IDENTITY = "sts:AssumeRoleWithWebIdentity"


def identity_documents(type_: str, props: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """(where, document) of every identity policy a resource carries."""
    if type_ in IAM_POLICY_TYPES:
        return [("policy", props.get("policy"))]
    if type_ == IAM_ROLE:
        return [
            (f"inlinePolicies[{i}]", dig(p, "policy"))
            for i, p in enumerate(as_list(props.get("inlinePolicies")))
        ]
    return []


def _allow_statements(
    type_: str, props: Mapping[str, Any]
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for where, raw in identity_documents(type_, props):
        for i, statement in enumerate(statements(policy_document(raw))):
            if statement.get("Effect") == "Allow":
                label = statement.get("Sid") or f"Statement[{i}]"
                yield f"{where} {label}", statement


@resource_rule(
    "iam-no-wildcard-actions",
    "IAM policies allow named actions, never `*` or `service:*`.",
    IAM_ROLE,
    *IAM_POLICY_TYPES,
)
def iam_no_wildcard_actions(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    for where, statement in _allow_statements(type_, props):
        wild = [
            a
            for a in as_list(statement.get("Action"))
            if isinstance(a, str) and _SERVICE_WILDCARD.match(a)
        ]
        if wild:
            found.append(
                f"{where} allows {', '.join(map(repr, wild))}: list the actions the workload calls"
            )
        if "NotAction" in statement:
            found.append(f"{where} allows NotAction (every other action): list allowed actions")
    return found


@resource_rule(
    "iam-no-wildcard-resources",
    "IAM policies name their resources; `*` only under a Condition.",
    IAM_ROLE,
    *IAM_POLICY_TYPES,
)
def iam_no_wildcard_resources(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    for where, statement in _allow_statements(type_, props):
        if statement.get("Condition"):
            continue
        if "*" in as_list(statement.get("Resource")) or "NotResource" in statement:
            found.append(
                f"{where} allows on every resource ('*') without a Condition: name the ARNs, "
                "or scope it with a Condition (e.g. cloudwatch:namespace)"
            )
    return found


def _trust_statements(props: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [
        s
        for s in statements(policy_document(props.get("assumeRolePolicy")))
        if s.get("Effect") == "Allow"
    ]


@resource_rule(
    "iam-irsa-trust-pins-subject",
    "Roles assumed through the cluster's OIDC provider (IRSA) pin the service account (`:sub`).",
    IAM_ROLE,
)
def iam_irsa_trust_pins_subject(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    for i, statement in enumerate(_trust_statements(props)):
        if WEB_IDENTITY not in as_list(statement.get("Action")):
            continue
        pinned = False
        for operator in ("StringEquals", "StringLike"):
            block = dig(statement, f"Condition.{operator}")
            if not isinstance(block, Mapping):
                continue
            for key, value in block.items():
                values = [v for v in as_list(value) if isinstance(v, str)]
                if (
                    str(key).endswith(":sub")
                    and values
                    and not any("*" in v or "?" in v for v in values)
                ):
                    pinned = True
        if not pinned:
            found.append(
                f"trust statement {statement.get('Sid') or i} lets any identity of the OIDC "
                "provider assume the role: add Condition StringEquals "
                "{'<issuer>:sub': 'system:serviceaccount:<namespace>:<service account>'}"
            )
    return found


@resource_rule(
    "iam-trust-no-public-principal",
    "Role trust policies never trust every principal (`*`).",
    IAM_ROLE,
)
def iam_trust_no_public_principal(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    for i, statement in enumerate(_trust_statements(props)):
        principal = statement.get("Principal")
        if principal == "*" or "*" in as_list(dig(principal, "AWS")):
            found.append(
                f"trust statement {statement.get('Sid') or i} trusts every principal ('*'): "
                "name the account, service or OIDC provider"
            )
    return found


# ---------------------------------------------------------------------------------------------
# SNS, CloudWatch, KMS, ECR


@resource_rule("sns-topic-encrypted", "SNS topics are encrypted with KMS.", "aws:sns/topic:Topic")
def sns_topic_encrypted(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not props.get("kmsMasterKeyId"):
        return ["set kmsMasterKeyId to a KMS key CloudWatch may use (not alias/aws/sns for alarms)"]
    return []


ALARM_TYPES = frozenset(
    {"aws:cloudwatch/metricAlarm:MetricAlarm", "aws:cloudwatch/compositeAlarm:CompositeAlarm"}
)


@resource_rule(
    "cloudwatch-alarm-actions",
    "CloudWatch alarms notify someone when they fire.",
    *ALARM_TYPES,
)
def cloudwatch_alarm_actions(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if props.get("actionsEnabled") is False:
        return ["actionsEnabled is false: the alarm never notifies; remove it or enable actions"]
    if props.get("alarmActions") != UNKNOWN and not as_list(props.get("alarmActions")):
        return ["no alarmActions: add the team's alert topic ARN"]
    return []


@resource_rule(
    "cloudwatch-alarm-ok-actions",
    "CloudWatch alarms notify when they recover.",
    *ALARM_TYPES,
)
def cloudwatch_alarm_ok_actions(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if props.get("okActions") != UNKNOWN and not as_list(props.get("okActions")):
        return ["no okActions: add the team's alert topic ARN so on-call sees the recovery"]
    return []


@resource_rule("kms-key-rotation", "Symmetric KMS keys rotate yearly.", "aws:kms/key:Key")
def kms_key_rotation(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    spec = props.get("customerMasterKeySpec") or props.get("keySpec") or "SYMMETRIC_DEFAULT"
    if spec == "SYMMETRIC_DEFAULT" and is_off(props.get("enableKeyRotation")):
        return ["set enableKeyRotation: true"]
    return []


ECR_REPOSITORY = "aws:ecr/repository:Repository"


@resource_rule("ecr-scan-on-push", "ECR repositories scan images on push.", ECR_REPOSITORY)
def ecr_scan_on_push(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if is_off(dig(props, "imageScanningConfiguration.scanOnPush")):
        return ["set imageScanningConfiguration.scanOnPush: true"]
    return []


@resource_rule("ecr-immutable-tags", "ECR repositories have immutable tags.", ECR_REPOSITORY)
def ecr_immutable_tags(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    mutability = props.get("imageTagMutability")
    if mutability is None or (known(mutability) and not str(mutability).startswith("IMMUTABLE")):
        return [f"imageTagMutability is {mutability or 'MUTABLE (default)'}: set it to IMMUTABLE"]
    return []


# ---------------------------------------------------------------------------------------------
# Tags and protection

TAGGABLE_TYPES = frozenset(
    {
        "aws:cloudwatch/compositeAlarm:CompositeAlarm",
        "aws:cloudwatch/logGroup:LogGroup",
        "aws:cloudwatch/metricAlarm:MetricAlarm",
        "aws:dynamodb/table:Table",
        "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup",
        "aws:ec2/eip:Eip",
        "aws:ec2/instance:Instance",
        "aws:ec2/internetGateway:InternetGateway",
        "aws:ec2/launchTemplate:LaunchTemplate",
        "aws:ec2/natGateway:NatGateway",
        "aws:ec2/routeTable:RouteTable",
        "aws:ec2/securityGroup:SecurityGroup",
        "aws:ec2/subnet:Subnet",
        "aws:ec2/vpc:Vpc",
        "aws:ec2/vpcEndpoint:VpcEndpoint",
        "aws:ecr/repository:Repository",
        "aws:efs/fileSystem:FileSystem",
        "aws:eks/accessEntry:AccessEntry",
        "aws:eks/addon:Addon",
        "aws:eks/cluster:Cluster",
        "aws:eks/nodeGroup:NodeGroup",
        "aws:iam/openIdConnectProvider:OpenIdConnectProvider",
        "aws:iam/policy:Policy",
        "aws:iam/role:Role",
        "aws:kms/key:Key",
        "aws:lambda/function:Function",
        "aws:rds/cluster:Cluster",
        "aws:rds/instance:Instance",
        "aws:rds/parameterGroup:ParameterGroup",
        "aws:rds/subnetGroup:SubnetGroup",
        "aws:s3/bucket:Bucket",
        "aws:s3/bucketV2:BucketV2",
        "aws:secretsmanager/secret:Secret",
        "aws:sns/topic:Topic",
        "aws:sqs/queue:Queue",
        "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule",
        "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule",
    }
)
"""AWS types that take `tags` (any other `aws:` resource that passes `tags` is checked too)."""


@resource_rule(
    "aws-required-tags",
    f"Taggable AWS resources carry the tags {', '.join(REQUIRED_TAGS)}.",
)
def aws_required_tags(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not type_.startswith("aws:") or (type_ not in TAGGABLE_TYPES and "tags" not in props):
        return []
    if props.get("tags") == UNKNOWN:
        return []
    tags = {
        **(t if isinstance(t := props.get("tagsAll"), Mapping) else {}),
        **(t if isinstance(t := props.get("tags"), Mapping) else {}),
    }
    missing = [t for t in REQUIRED_TAGS if not tags.get(t)]
    if missing:
        return [f"missing tag(s) {', '.join(missing)}: pass Team.tags (components/team.py)"]
    return []


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


# ---------------------------------------------------------------------------------------------
# Kubernetes workloads

POD_SPEC_PATHS = {
    "kubernetes:core/v1:Pod": "spec",
    "kubernetes:apps/v1:Deployment": "spec.template.spec",
    "kubernetes:apps/v1:StatefulSet": "spec.template.spec",
    "kubernetes:apps/v1:DaemonSet": "spec.template.spec",
    "kubernetes:apps/v1:ReplicaSet": "spec.template.spec",
    "kubernetes:batch/v1:Job": "spec.template.spec",
    "kubernetes:batch/v1:CronJob": "spec.jobTemplate.spec.template.spec",
}
WORKLOAD_TYPES = tuple(POD_SPEC_PATHS)
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def pod_spec(type_: str, props: Mapping[str, Any]) -> Mapping[str, Any]:
    spec = dig(props, POD_SPEC_PATHS[type_]) if type_ in POD_SPEC_PATHS else None
    return spec if isinstance(spec, Mapping) else {}


def containers(spec: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for kind in CONTAINER_LISTS:
        for i, container in enumerate(as_list(spec.get(kind))):
            if isinstance(container, Mapping):
                yield f"{kind[:-1]} {container.get('name') or i!r}", container


ContainerCheck = Callable[[Mapping[str, Any], Mapping[str, Any]], str | None]
"""(pod spec, container) -> what to change, or None."""


def _per_container(check: ContainerCheck) -> ResourceCheck:
    """A workload check from one over (pod spec, container) -> problem or None."""

    def run(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
        spec = pod_spec(type_, props)
        return [
            f"{label}: {problem}"
            for label, container in containers(spec)
            if (problem := check(spec, container))
        ]

    return run


def _effective(spec: Mapping[str, Any], container: Mapping[str, Any], key: str) -> Any:
    value = dig(container, f"securityContext.{key}")
    return value if value is not None else dig(spec, f"securityContext.{key}")


def _workload_rule(name: str, description: str) -> Callable[[ContainerCheck], ContainerCheck]:
    def register(check: ContainerCheck) -> ContainerCheck:
        RESOURCE_RULES.append(
            ResourceRule(name, description, frozenset(WORKLOAD_TYPES), _per_container(check))
        )
        return check

    return register


@_workload_rule("k8s-run-as-non-root", "Containers run as a non-root user.")
def k8s_run_as_non_root(spec: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    if _effective(spec, container, "runAsUser") in (0, 0.0):
        return "runs as uid 0: set securityContext.runAsUser to a non-zero uid"
    if not is_true(_effective(spec, container, "runAsNonRoot")):
        return "set securityContext.runAsNonRoot: true (container or pod)"
    return None


@_workload_rule("k8s-read-only-root-filesystem", "Containers have a read-only root filesystem.")
def k8s_read_only_root_filesystem(
    spec: Mapping[str, Any], container: Mapping[str, Any]
) -> str | None:
    if not is_true(dig(container, "securityContext.readOnlyRootFilesystem")):
        return (
            "set securityContext.readOnlyRootFilesystem: true (mount an emptyDir where it writes)"
        )
    return None


@_workload_rule("k8s-resource-limits", "Containers set CPU and memory limits.")
def k8s_resource_limits(spec: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    limits = dig(container, "resources.limits")
    limits = limits if isinstance(limits, Mapping) else {}
    missing = [r for r in ("cpu", "memory") if not limits.get(r)]
    if missing:
        return f"set resources.limits.{' and resources.limits.'.join(missing)}"
    return None


@_workload_rule("k8s-no-privileged", "Containers are not privileged.")
def k8s_no_privileged(spec: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    if is_true(dig(container, "securityContext.privileged")):
        return "privileged: remove securityContext.privileged (or set it false)"
    return None


@_workload_rule("k8s-no-privilege-escalation", "Containers set allowPrivilegeEscalation: false.")
def k8s_no_privilege_escalation(
    spec: Mapping[str, Any], container: Mapping[str, Any]
) -> str | None:
    if dig(container, "securityContext.allowPrivilegeEscalation") is not False:
        return "set securityContext.allowPrivilegeEscalation: false (the default is true)"
    return None


@_workload_rule("k8s-drop-all-capabilities", "Containers drop ALL Linux capabilities.")
def k8s_drop_all_capabilities(spec: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    if "ALL" not in as_list(dig(container, "securityContext.capabilities.drop")):
        return "set securityContext.capabilities.drop: [ALL] (add back only what it needs)"
    return None


_PLACEHOLDER_DIGEST = "@sha256:" + "0" * 64
"""Written by `mlops new-team` until an image is pushed: it names no image."""


def image_problem(image: Any) -> str | None:
    if image == UNKNOWN:
        return None
    if not isinstance(image, str) or not image:
        return "no image: set a pinned image"
    if image.endswith(_PLACEHOLDER_DIGEST):
        return (
            f"image {image!r} has the all-zero placeholder digest `mlops new-team` writes: push "
            "the image (`mlops image build --push <repository>`) and set mlops:image to the "
            "<repository>@sha256:<digest> it prints"
        )
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {image!r} has no tag (means :latest): pin a version tag or @sha256 digest"
    if last.rsplit(":", 1)[-1] == "latest":
        return f"image {image!r} uses :latest: pin a version tag or @sha256 digest"
    return None


@_workload_rule("k8s-pinned-images", "Container images are pinned: no `:latest`, no missing tag.")
def k8s_pinned_images(spec: Mapping[str, Any], container: Mapping[str, Any]) -> str | None:
    return image_problem(container.get("image"))


@resource_rule("k8s-no-host-path", "Pods mount no hostPath volumes.", *WORKLOAD_TYPES)
def k8s_no_host_path(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    return [
        f"volume {volume.get('name')!r} mounts the node's {dig(volume, 'hostPath.path')!r}: "
        "use an emptyDir, a ConfigMap/Secret or a PersistentVolumeClaim"
        for volume in as_list(pod_spec(type_, props).get("volumes"))
        if isinstance(volume, Mapping) and volume.get("hostPath") is not None
    ]


@resource_rule(
    "k8s-no-host-namespaces",
    "Pods do not share the node's network, PID or IPC namespace.",
    *WORKLOAD_TYPES,
)
def k8s_no_host_namespaces(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    spec = pod_spec(type_, props)
    return [
        f"{key}: true shares the node's namespace: remove it"
        for key in ("hostNetwork", "hostPID", "hostIPC")
        if is_true(spec.get(key))
    ]


# ---------------------------------------------------------------------------------------------
# Budgets (policy/budget.py: the estimate of policy/cost against `mlops:budget`)


@stack_rule(
    "budget-exceeded",
    "A stack's estimated monthly cost, at the top of its range, stays within its budget.",
)
def budget_exceeded(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    return budget.findings(resources, budget.Verdict.over)


@stack_rule(
    "budget-warning",
    "Warns when a stack's estimated monthly cost can pass its budget's warning share.",
    advisory=True,
)
def budget_warning(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    return budget.findings(resources, budget.Verdict.warning)


# ---------------------------------------------------------------------------------------------
# The platform: EKS, its nodes and its network

EKS_CLUSTER = "aws:eks/cluster:Cluster"
EKS_ADDON = "aws:eks/addon:Addon"
EKS_ACCESS_TYPES = frozenset(
    {"aws:eks/accessEntry:AccessEntry", "aws:eks/accessPolicyAssociation:AccessPolicyAssociation"}
)
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
EC2_INSTANCE = "aws:ec2/instance:Instance"
NAT_GATEWAY = "aws:ec2/natGateway:NatGateway"
SUBNET = "aws:ec2/subnet:Subnet"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
REQUIRED_CONTROL_PLANE_LOGS = ("api", "audit", "authenticator")
OPEN_CIDRS = frozenset({"0.0.0.0/0", "::/0"})
_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[^*?]+$")


@resource_rule(
    "eks-secrets-encryption",
    "EKS clusters envelope-encrypt Kubernetes secrets with a KMS key.",
    EKS_CLUSTER,
)
def eks_secrets_encryption(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    config = props.get("encryptionConfig")
    if config == UNKNOWN:
        return []
    if "secrets" not in as_list(dig(config, "resources")) or not dig(config, "provider.keyArn"):
        return ["set encryptionConfig {resources: [secrets], provider: {keyArn: <KMS key>}}"]
    return []


@resource_rule(
    "eks-private-endpoint",
    "The Kubernetes API is reachable privately; in prod not from the whole internet.",
    EKS_CLUSTER,
)
def eks_private_endpoint(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    vpc = props.get("vpcConfig")
    if not isinstance(vpc, Mapping):
        return []
    found = []
    if is_off(vpc.get("endpointPrivateAccess")):
        found.append(
            "set vpcConfig.endpointPrivateAccess: true (nodes reach the API inside the VPC)"
        )
    public = vpc.get("endpointPublicAccess")
    cidrs = vpc.get("publicAccessCidrs")
    # EKS's defaults: public access on, from anywhere.
    if is_prod(props, ctx.stack) and (public is None or is_true(public)) and cidrs != UNKNOWN:
        open_to = [c for c in as_list(cidrs) if c in OPEN_CIDRS] or ([] if cidrs else ["0.0.0.0/0"])
        if open_to:
            found.append(
                f"the prod API is public to {', '.join(open_to)}: set vpcConfig.endpointPublicAccess "
                "false, or publicAccessCidrs to the networks that need it"
            )
    return found


@resource_rule(
    "eks-control-plane-logs",
    f"EKS clusters send the {', '.join(REQUIRED_CONTROL_PLANE_LOGS)} control-plane logs to CloudWatch.",
    EKS_CLUSTER,
)
def eks_control_plane_logs(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    logs = props.get("enabledClusterLogTypes")
    if logs == UNKNOWN:
        return []
    missing = [kind for kind in REQUIRED_CONTROL_PLANE_LOGS if kind not in as_list(logs)]
    if missing:
        return [f"add {', '.join(missing)} to enabledClusterLogTypes"]
    return []


@resource_rule(
    "eks-access-entries-only",
    "EKS access comes from access entries only, none for whoever created the cluster.",
    EKS_CLUSTER,
)
def eks_access_entries_only(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    if dig(props, "accessConfig.authenticationMode") != "API":
        found.append("set accessConfig.authenticationMode: API (no aws-auth ConfigMap)")
    if dig(props, "accessConfig.bootstrapClusterCreatorAdminPermissions") is not False:
        found.append(
            "set accessConfig.bootstrapClusterCreatorAdminPermissions: false (access must not "
            "depend on who ran `pulumi up`; name admins in access entries)"
        )
    return found


@resource_rule(
    "eks-access-entry-named-principal",
    "EKS access entries name one IAM role or user, never a wildcard.",
    *EKS_ACCESS_TYPES,
)
def eks_access_entry_named_principal(
    type_: str, props: Mapping[str, Any], ctx: Context
) -> list[str]:
    principal = props.get("principalArn")
    if not known(principal) or (isinstance(principal, str) and _PRINCIPAL.match(principal)):
        return []
    return [f"principalArn {principal!r} is not one IAM role or user ARN: name the principal"]


@resource_rule(
    "eks-addon-version-pinned",
    "EKS add-ons run a pinned version (not whatever EKS picks when created).",
    EKS_ADDON,
)
def eks_addon_version_pinned(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not props.get("addonVersion"):
        return [
            f"set addonVersion for {props.get('addonName')!r} (aws eks describe-addon-versions)"
        ]
    return []


@resource_rule(
    "ec2-imdsv2-hop-limit",
    "Instances require IMDSv2 with a hop limit of 1: pods cannot take the node's role.",
    LAUNCH_TEMPLATE,
    EC2_INSTANCE,
)
def ec2_imdsv2_hop_limit(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    options = props.get("metadataOptions")
    options = options if isinstance(options, Mapping) else {}
    found = []
    if options.get("httpTokens") != "required":
        found.append("set metadataOptions.httpTokens: required (IMDSv2 only)")
    hops = options.get("httpPutResponseHopLimit")
    if hops is None or (known(hops) and float(hops) > 1):
        found.append(
            f"metadataOptions.httpPutResponseHopLimit is {hops or 'unset (2 on EKS AMIs)'}: set 1"
        )
    return found


@resource_rule(
    "ec2-subnet-no-public-ip",
    "Subnets do not give instances a public IP address.",
    SUBNET,
)
def ec2_subnet_no_public_ip(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if is_true(props.get("mapPublicIpOnLaunch")):
        return ["mapPublicIpOnLaunch is true: instances go in private subnets, behind NAT"]
    return []


@resource_rule(
    "cloudwatch-log-retention",
    "CloudWatch log groups expire their logs (a retention period is set).",
    LOG_GROUP,
)
def cloudwatch_log_retention(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    if not props.get("retentionInDays"):
        return ["set retentionInDays: without it the logs are kept (and paid for) forever"]
    return []


@stack_rule(
    "nat-gateway-per-zone-prod",
    "Prod VPCs have a NAT gateway in every zone with private subnets.",
)
def nat_gateway_per_zone_prod(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    private = [
        r
        for r in resources
        if r.type == SUBNET and "kubernetes.io/role/internal-elb" in (dig(r.props, "tags") or {})
    ]
    zones = {dig(r.props, "availabilityZone") for r in private}
    nats = [r for r in resources if r.type == NAT_GATEWAY]
    if not private or not any(is_prod(r.props, stack) for r in private) or len(nats) >= len(zones):
        return []
    return [
        (
            nat.urn,
            f"{len(nats)} NAT gateway(s) for private subnets in {len(zones)} zones: one per zone, "
            "or a zone's outage cuts every zone off the internet",
        )
        for nat in nats or private[:1]
    ]


RBAC_ROLE_TYPES = frozenset(
    {
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
        "kubernetes:rbac.authorization.k8s.io/v1:Role",
    }
)
RBAC_BINDING_TYPES = frozenset(
    {
        "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
        "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
    }
)
ADMIN_ROLES = frozenset({"cluster-admin", "admin"})
MIN_RSA_BITS = 2048


@resource_rule(
    "k8s-rbac-no-wildcards",
    "RBAC roles name their API groups, resources and verbs: no `*`.",
    *RBAC_ROLE_TYPES,
)
def k8s_rbac_no_wildcards(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    found = []
    for i, item in enumerate(as_list(props.get("rules"))):
        if not isinstance(item, Mapping):
            continue
        wild = [key for key in ("apiGroups", "resources", "verbs") if "*" in as_list(item.get(key))]
        if wild:
            found.append(f"rules[{i}] allows '*' in {', '.join(wild)}: list what the workload uses")
    return found


@resource_rule(
    "k8s-no-admin-binding",
    "No binding grants cluster-admin or admin (access entries grant people; workloads get roles).",
    *RBAC_BINDING_TYPES,
)
def k8s_no_admin_binding(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    role = dig(props, "roleRef.name")
    if role in ADMIN_ROLES:
        return [f"binds {role!r}: bind a role with the rules the subject needs"]
    return []


@resource_rule(
    "tls-key-strength",
    f"Private keys are ECDSA or RSA of at least {MIN_RSA_BITS} bits.",
    "tls:index/privateKey:PrivateKey",
)
def tls_key_strength(type_: str, props: Mapping[str, Any], ctx: Context) -> list[str]:
    algorithm = props.get("algorithm")
    bits = props.get("rsaBits") or MIN_RSA_BITS
    if algorithm == "RSA" and known(bits) and float(bits) < MIN_RSA_BITS:
        return [f"rsaBits is {bits}: use {MIN_RSA_BITS} or more, or ECDSA P256"]
    if algorithm not in ("RSA", "ECDSA", "ED25519", UNKNOWN):
        return [f"algorithm {algorithm!r}: use ECDSA (P256) or RSA {MIN_RSA_BITS}+"]
    return []


# ---------------------------------------------------------------------------------------------
# Running every rule over a plan (the offline path)

RULE_NAMES = [r.name for r in RESOURCE_RULES] + [r.name for r in STACK_RULES]


class _Planned(Protocol):
    urn: str
    type: str
    custom: bool
    read: bool
    protect: bool
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    dependencies: list[str]


class _Plan(Protocol):
    stack: str

    @property
    def resources(self) -> Sequence[_Planned]: ...


def check_resource(
    type_: str, props: Mapping[str, Any], ctx: Context | None = None, urn: str = ""
) -> list[Violation]:
    """Every resource rule over one resource's inputs."""
    ctx = ctx or Context()
    return [
        Violation(rule.name, urn, message)
        for rule in RESOURCE_RULES
        if rule.applies_to(type_)
        for message in rule.check(type_, props, ctx)
    ]


def check_stack(resources: Sequence[Resource], stack: str) -> list[Violation]:
    """Every stack rule over the stack's resources (their outputs)."""
    return [
        Violation(rule.name, urn, message, rule.advisory)
        for rule in STACK_RULES
        for urn, message in rule.check(resources, stack)
    ]


def check_plan(plan: _Plan) -> list[Violation]:
    """The whole pack over a mock-engine plan, as CrossGuard would run it in `pulumi preview`."""
    created = [r for r in plan.resources if r.custom and not r.read]
    violations = [
        violation
        for r in created
        for violation in check_resource(
            r.type, r.inputs, Context(stack=plan.stack, protect=r.protect), r.urn
        )
    ]
    # A stack policy sees components too (the cost model carries the budget).
    resources = [
        Resource(r.type, r.urn, r.outputs, r.protect, tuple(r.dependencies))
        for r in plan.resources
        if not r.read
    ]
    return violations + check_stack(resources, plan.stack)
