"""S3: a bucket and the separate resources that configure it (stack rules)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from policy.rules.properties import (
    UNKNOWN,
    as_list,
    dig,
    is_true,
    known,
    policy_document,
    statements,
)
from policy.rules.registry import Resource, stack_rule

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


LOGGING_TYPES = frozenset(
    {"aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2"}
)
ROLE_TAG = "mlops.dev/role"
ACCESS_LOG_ROLE = "access-logs"
"""The `mlops.dev/role` tag of a stack's log bucket (components/storage.py): it logs nowhere."""


def _is_log_bucket(bucket: Resource) -> bool:
    tags = bucket.props.get("tags")
    return isinstance(tags, Mapping) and tags.get(ROLE_TAG) == ACCESS_LOG_ROLE


@stack_rule(
    "s3-access-logging",
    "Every S3 bucket but a log bucket sends server access logs to a bucket (who read or wrote "
    "what, when).",
)
def s3_access_logging(resources: Sequence[Resource], stack: str) -> list[tuple[str, str]]:
    found = []
    for bucket in _buckets(resources):
        if _is_log_bucket(bucket):
            continue
        logging = attached(bucket, resources, LOGGING_TYPES)
        if not logging or not all(r.props.get("targetBucket") for r in logging):
            found.append(
                (
                    bucket.urn,
                    "no server access logging: add a BucketLogging with a targetBucket (the "
                    f"stack's log bucket, tagged {ROLE_TAG}: {ACCESS_LOG_ROLE})",
                )
            )
    return found
