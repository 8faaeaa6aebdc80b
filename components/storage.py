"""`mlops:storage:SecureBucket` and `mlops:storage:DataKey`: the hardened S3 bucket and the team's
KMS key that the feature store and the model registry both build on."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config.featurestore import Lifecycle
from components.iam import policy_document, tls_only_statement
from components.keys import key_administrators, key_policy
from components.team import Team

S3_BUCKET_PREFIX_MAX = 37
"""Longest `bucket_prefix` S3 accepts (the provider appends a 26-character unique suffix)."""
ABORT_MULTIPART_AFTER_DAYS = 7
KMS_DELETION_WINDOW_DAYS = 30


def bucket_prefix(team: Team, role: str) -> str:
    """`<team>-<env>-<role>-`, fitted so the provider's unique suffix still fits in 63 characters."""
    return f"{team.physical(role, S3_BUCKET_PREFIX_MAX - 1)}-"


def lifecycle_rules(lifecycle: Lifecycle) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
    """Lifecycle rules for a versioned bucket, from the config (plain data, no resources)."""
    everything = aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix="")
    rules = [
        aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="noncurrent-versions",
            status="Enabled",
            filter=everything,
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=lifecycle.noncurrent_version_expiration_days
            ),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=ABORT_MULTIPART_AFTER_DAYS
            ),
        )
    ]
    if lifecycle.infrequent_access_after_days is not None:
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="infrequent-access",
                status="Enabled",
                filter=everything,
                transitions=[
                    aws.s3.BucketLifecycleConfigurationRuleTransitionArgs(
                        days=lifecycle.infrequent_access_after_days, storage_class="STANDARD_IA"
                    )
                ],
            )
        )
    if lifecycle.expiration_days is not None:
        rules.append(
            aws.s3.BucketLifecycleConfigurationRuleArgs(
                id="expiration",
                status="Enabled",
                filter=everything,
                expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(
                    days=lifecycle.expiration_days
                ),
            )
        )
    return rules


class DataKey(pulumi.ComponentResource):
    """The team's customer-managed KMS key (with rotation) for its buckets, tables and database."""

    arn: pulumi.Output[str]
    """The key's ARN."""
    key_id: pulumi.Output[str]
    """The key's id (what its KeyAccess attaches the policy to)."""

    def __init__(self, name: str, *, team: Team, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlops:storage:DataKey", name, None, opts)
        # Losing the key loses the data: prod keeps it under `protect`, and rotation is on.
        key = aws.kms.Key(
            f"{name}-key",
            description=f"MLOps data of {team.stack} (feature store and model registry)",
            enable_key_rotation=True,
            deletion_window_in_days=KMS_DELETION_WINDOW_DAYS,
            tags=team.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=team.prod),
        )
        # A readable name in the console and in CloudTrail.
        aws.kms.Alias(
            f"{name}-alias",
            name=f"alias/{team.physical('data')}",
            target_key_id=key.key_id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.arn = key.arn
        self.key_id = key.key_id
        self.register_outputs({"arn": self.arn, "keyId": self.key_id})


class SecureBucket(pulumi.ComponentResource):
    """A private, versioned, encrypted, TLS-only S3 bucket with lifecycle rules."""

    name: pulumi.Output[str]
    """The bucket's name."""
    arn: pulumi.Output[str]
    """The bucket's ARN."""
    policy: aws.s3.BucketPolicy
    """The bucket policy (what S3 checks before delivering access logs into it)."""

    def __init__(
        self,
        name: str,
        *,
        team: Team,
        role: str,
        lifecycle: Lifecycle,
        kms_key_arn: pulumi.Input[str] | None = None,
        log_sources: Sequence[pulumi.Input[str]] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``log_sources``: ARNs of buckets whose server access logs S3 delivers here."""
        super().__init__("mlops:storage:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)

        # The data itself; prod refuses to delete it (protect) and never empties it on destroy.
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket_prefix=bucket_prefix(team, role),
            force_destroy=not team.prod,
            tags={**team.tags, "mlops.dev/role": role},
            opts=pulumi.ResourceOptions(parent=self, protect=team.prod),
        )
        # Overwritten or deleted objects stay recoverable until the lifecycle expires them.
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(
                status="Enabled"
            ),
            opts=child,
        )
        # Encryption at rest: the team's key when it has one, else S3-managed keys.
        by_default = (
            aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="aws:kms", kms_master_key_id=kms_key_arn
            )
            if kms_key_arn is not None
            else aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                sse_algorithm="AES256"
            )
        )
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[
                aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                    apply_server_side_encryption_by_default=by_default,
                    bucket_key_enabled=kms_key_arn is not None,
                )
            ],
            opts=child,
        )
        # Nothing in the bucket can ever be made public, whatever an ACL or policy says.
        access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            opts=child,
        )
        # ACLs off: the bucket owner owns every object, access is decided by IAM alone.
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
            opts=child,
        )
        # Plain-HTTP requests are refused (and, for a log bucket, S3 may deliver access logs).
        if log_sources:
            caller = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
            document = pulumi.Output.all(bucket.arn, caller.account_id, *log_sources).apply(
                lambda v: json.dumps(
                    policy_document(
                        tls_only_statement(v[0]), log_delivery_statement(v[0], v[1], list(v[2:]))
                    )
                )
            )
        else:
            document = bucket.arn.apply(
                lambda arn: json.dumps(policy_document(tls_only_statement(arn)))
            )
        self.policy = aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=document,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[access_block]),
        )
        # Old versions and cold data expire or move to cheaper storage, per the config.
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=lifecycle_rules(lifecycle),
            opts=child,
        )
        self.name = bucket.bucket
        self.arn = bucket.arn
        self.register_outputs({"name": self.name, "arn": self.arn})


# --- who may use a key: the team keys' policies (components/keys.py) -----------------------------

DATA_KEY_SERVICES = ("dynamodb", "ecr", "rds", "s3", "secretsmanager")
"""Services that encrypt the team's data with its key; an administrator (the deploy role) may
use the key only through them, to create the encrypted tables, buckets, database and secret."""


class KeyAccess(pulumi.ComponentResource):
    """The policy of one KMS key: its administrators and the team's roles that use it.

    A resource of its own (`aws.kms.KeyPolicy`), applied once every role it names exists: KMS
    refuses a policy naming a principal that does not.
    """

    def __init__(
        self,
        name: str,
        *,
        key_id: pulumi.Input[str],
        team: Team,
        administrators: Sequence[str],
        users: Sequence[pulumi.Input[str]],
        services: Sequence[str] = (),
        service_principals: Sequence[str] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:storage:KeyAccess", name, None, opts)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        caller = aws.get_caller_identity_output(opts=invoke)
        partition = aws.get_partition_output(opts=invoke)
        document = pulumi.Output.all(
            caller.account_id, partition.partition, pulumi.Output.all(*users)
        ).apply(
            lambda v: json.dumps(
                key_policy(
                    administrators=key_administrators(administrators, v[0], v[1]),
                    users=[str(u) for u in v[2]],
                    region=team.region,
                    services=services,
                    service_principals=service_principals,
                )
            )
        )
        # Who may use the key, by name; never "anyone the account's IAM allows".
        aws.kms.KeyPolicy(
            f"{name}-policy",
            key_id=key_id,
            policy=document,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"keyId": key_id})


# --- S3 server access logs ---------------------------------------------------------------------

ACCESS_LOG_ROLE = "access-logs"
LOGGING_SERVICE = "logging.s3.amazonaws.com"
ACCESS_LOG_RETENTION_DAYS = {True: 365, False: 90}
"""Days access logs are kept: prod, other environments."""


def log_delivery_statement(
    log_bucket_arn: str, account_id: str, source_arns: Sequence[str]
) -> dict[str, Any]:
    """S3's log delivery may write the log bucket, for the stack's own buckets only."""
    return {
        "Sid": "S3ServerAccessLogs",
        "Effect": "Allow",
        "Principal": {"Service": LOGGING_SERVICE},
        "Action": "s3:PutObject",
        "Resource": f"{log_bucket_arn}/*",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": account_id},
            "ArnEquals": {"aws:SourceArn": sorted(source_arns)},
        },
    }


@dataclass(frozen=True)
class LoggedBucket:
    """A bucket whose server access logs the stack keeps."""

    name: pulumi.Input[str]
    arn: pulumi.Input[str]


class AccessLogs(pulumi.ComponentResource):
    """The stack's log bucket and server access logging of each of its data buckets.

    Log delivery supports SSE-S3 only, so the log bucket is encrypted with S3-managed keys;
    otherwise it is hardened like every bucket (private, TLS-only, versioned), and its logs expire.
    """

    bucket: pulumi.Output[str]
    """The log bucket's name."""

    def __init__(
        self,
        name: str,
        *,
        team: Team,
        sources: Mapping[str, LoggedBucket],
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:storage:AccessLogs", name, None, opts)
        retention = ACCESS_LOG_RETENTION_DAYS[team.prod]
        logs = SecureBucket(
            f"{name}-bucket",
            team=team,
            role=ACCESS_LOG_ROLE,
            lifecycle=Lifecycle(expiration_days=retention, noncurrent_version_expiration_days=30),
            log_sources=[source.arn for _, source in sorted(sources.items())],
            opts=pulumi.ResourceOptions(parent=self),
        )
        for role, source in sorted(sources.items()):
            # Every request to the bucket, under `<role>/<account>/<region>/<bucket>/<date>/`.
            aws.s3.BucketLogging(
                f"{name}-{role}",
                bucket=source.name,
                target_bucket=logs.name,
                target_prefix=f"{role}/",
                target_object_key_format=aws.s3.BucketLoggingTargetObjectKeyFormatArgs(
                    partitioned_prefix=aws.s3.BucketLoggingTargetObjectKeyFormatPartitionedPrefixArgs(
                        partition_date_source="EventTime"
                    )
                ),
                # S3 checks the log bucket's policy when logging is turned on.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[logs.policy]),
            )
        self.bucket = logs.name
        self.register_outputs({"bucket": self.bucket})
