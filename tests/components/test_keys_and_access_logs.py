"""Who may use the team's KMS keys (key policies naming administrators and roles), and the
server access logs of its buckets: planned, and replayed through boto3 against moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from components.config import load_stack_file
from components.keys import (
    KEY_ADMIN_ACTIONS,
    KEY_USE_ACTIONS,
    key_administrators,
    key_policy,
)
from tests.components._data_plane_helpers import stack_config
from tests.conftest import planned
from tooling.plan import Plan, PlannedResource, stack_file

KEY_POLICY = "aws:kms/keyPolicy:KeyPolicy"
BUCKET = "aws:s3/bucket:Bucket"
ADMIN = "arn:aws:iam::123456789012:role/mlops-deploy"
ROLE = "arn:aws:iam::123456789012:role/fraud-prod-training"


def test_a_key_policy_separates_administering_from_using() -> None:
    document = key_policy(
        administrators=[ADMIN], users=[ROLE, ROLE], region="eu-west-1", services=["s3"]
    )
    by_sid = {s["Sid"]: s for s in document["Statement"]}
    assert by_sid["KeyAdministrators"]["Principal"] == {"AWS": [ADMIN]}
    assert not set(by_sid["KeyAdministrators"]["Action"]) & set(KEY_USE_ACTIONS)
    # Administrators use the key only through the services that encrypt the data with it.
    assert by_sid["AdministratorsProvisionThroughServices"]["Condition"] == {
        "StringEquals": {"kms:ViaService": ["s3.eu-west-1.amazonaws.com"]}
    }
    assert by_sid["TeamWorkloads"] == {
        "Sid": "TeamWorkloads",
        "Effect": "Allow",
        "Principal": {"AWS": [ROLE]},
        "Action": list(KEY_USE_ACTIONS),
        "Resource": "*",
    }
    assert not any(":root" in json.dumps(s.get("Principal")) for s in document["Statement"])


def test_without_administrators_the_account_administers_but_uses_nothing() -> None:
    assert key_administrators([], "123456789012", "aws") == ["arn:aws:iam::123456789012:root"]
    assert key_administrators([ADMIN], "123456789012", "aws") == [ADMIN]


def role_arns(plan: Plan) -> set[str]:
    """The team's workload roles: those its pods assume (IRSA), not the nodes' role."""
    return {
        str(r.outputs["arn"])
        for r in plan.of_type("aws:iam/role:Role")
        if "AssumeRoleWithWebIdentity" in str(r.inputs["assumeRolePolicy"])
    }


def policies_by_key(plan: Plan) -> dict[str, dict[str, Any]]:
    """Key name -> its planned key policy document."""
    keys = {str(k.outputs["keyId"]): k.name for k in plan.of_type("aws:kms/key:Key")}
    return {
        keys[str(p.inputs["keyId"])]: json.loads(p.inputs["policy"])
        for p in plan.of_type(KEY_POLICY)
    }


def test_every_key_names_its_administrators_and_users(example_stack: str) -> None:
    plan, config = planned(example_stack), stack_config(example_stack)
    documents = policies_by_key(plan)
    keys = {k.name for k in plan.of_type("aws:kms/key:Key")}
    assert set(documents) == keys and keys >= {"monitoring-key"}
    workloads = role_arns(plan)
    for name, document in documents.items():
        by_sid = {s["Sid"]: s for s in document["Statement"]}
        admins = by_sid["KeyAdministrators"]["Principal"]["AWS"]
        if config.key_administrators:
            assert admins == sorted(config.key_administrators)
        else:
            assert admins == ["arn:aws:iam::123456789012:root"]
        assert by_sid["KeyAdministrators"]["Action"] == list(KEY_ADMIN_ACTIONS)
        users = set(by_sid.get("TeamWorkloads", {}).get("Principal", {}).get("AWS", []))
        assert users <= workloads, name
        if name == "data-key-key":
            # Every workload role of the team uses the data key; nobody else.
            assert users == workloads
        else:
            # The alert topic's key: the roles that publish notices (the monitor, and the
            # training job of a continuously trained pipeline).
            assert {u.rsplit("/", 1)[-1] for u in users} <= {
                f"{example_stack}-drift-monitor",
                f"{example_stack}-training",
            }
            assert by_sid["Services"]["Principal"] == {"Service": ["cloudwatch.amazonaws.com"]}


def test_every_data_bucket_logs_to_the_stacks_log_bucket(example_stack: str) -> None:
    plan = planned(example_stack)
    buckets = {r.outputs["bucket"]: r for r in plan.of_type(BUCKET)}
    (log_bucket,) = [
        b for b in buckets.values() if b.inputs["tags"]["mlops.dev/role"] == "access-logs"
    ]
    logging = plan.of_type("aws:s3/bucketLogging:BucketLogging")
    assert {r.inputs["bucket"] for r in logging} == set(buckets) - {log_bucket.outputs["bucket"]}
    assert {r.inputs["targetBucket"] for r in logging} == {log_bucket.outputs["bucket"]}
    assert plan.outputs["accessLogBucket"] == log_bucket.outputs["bucket"]
    # Log delivery takes SSE-S3 only; the logs expire.
    name = log_bucket.outputs["bucket"]
    (sse,) = [
        r
        for r in plan.resources
        if r.type.endswith(":BucketServerSideEncryptionConfiguration")
        and r.inputs["bucket"] == name
    ]
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "AES256"
    }
    (lifecycle,) = [
        r
        for r in plan.resources
        if r.type.endswith(":BucketLifecycleConfiguration") and r.inputs["bucket"] == name
    ]
    expiry = {rule["id"]: rule for rule in lifecycle.inputs["rules"]}["expiration"]
    assert expiry["expiration"]["days"] == (365 if example_stack.endswith("prod") else 90)


# --- replayed through the AWS APIs (moto) ---------------------------------------------------------


def moto_readable(policy: str) -> str:
    """`"Principal": "*"` as `{"AWS": "*"}` (the same to AWS): moto's logging check reads every
    statement's Principal as a mapping and fails on the string form."""
    document = json.loads(policy)
    for statement in document["Statement"]:
        if statement.get("Principal") == "*":
            statement["Principal"] = {"AWS": "*"}
    return json.dumps(document)


def _bucket_parts(plan: Plan, name: str, kind: str) -> list[PlannedResource]:
    return [
        r for r in plan.resources if r.type.endswith(f":{kind}") and r.inputs.get("bucket") == name
    ]


@pytest.mark.moto
@pytest.mark.parametrize("stack", ["fraud-prod", "recommendations-dev"])
def test_buckets_logging_and_key_policies_replay_through_the_aws_apis(
    stack: str, aws_endpoint: str
) -> None:
    """S3 refuses logging into a bucket whose policy does not let log delivery write it (moto
    checks that too); KMS stores the key policies as planned."""
    plan = planned(stack)
    region = load_stack_file(stack_file(stack)).region
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region
    )
    location = (
        {}
        if region == "us-east-1"
        else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    )
    s3 = session.client("s3", endpoint_url=aws_endpoint)
    kms = session.client("kms", endpoint_url=aws_endpoint)
    names = [r.outputs["bucket"] for r in plan.of_type(BUCKET)]
    for name in names:
        s3.create_bucket(Bucket=name, **location)
        (policy,) = _bucket_parts(plan, name, "BucketPolicy")
        s3.put_bucket_policy(Bucket=name, Policy=moto_readable(policy.inputs["policy"]))
        (block,) = _bucket_parts(plan, name, "BucketPublicAccessBlock")
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={
                k[0].upper() + k[1:]: v for k, v in block.inputs.items() if k != "bucket"
            },
        )
        (sse,) = _bucket_parts(plan, name, "BucketServerSideEncryptionConfiguration")
        rule = sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [
                    {
                        "ApplyServerSideEncryptionByDefault": {
                            "SSEAlgorithm": rule["sseAlgorithm"],
                            **(
                                {"KMSMasterKeyID": rule["kmsMasterKeyId"]}
                                if "kmsMasterKeyId" in rule
                                else {}
                            ),
                        }
                    }
                ]
            },
        )
    for logging in plan.of_type("aws:s3/bucketLogging:BucketLogging"):
        s3.put_bucket_logging(
            Bucket=logging.inputs["bucket"],
            BucketLoggingStatus={
                "LoggingEnabled": {
                    "TargetBucket": logging.inputs["targetBucket"],
                    "TargetPrefix": logging.inputs["targetPrefix"],
                }
            },
        )
        enabled = s3.get_bucket_logging(Bucket=logging.inputs["bucket"])["LoggingEnabled"]
        assert enabled["TargetBucket"] == logging.inputs["targetBucket"]

    for key_policy_resource in plan.of_type(KEY_POLICY):
        key_id = kms.create_key(Description=key_policy_resource.name)["KeyMetadata"]["KeyId"]
        kms.put_key_policy(
            KeyId=key_id, PolicyName="default", Policy=key_policy_resource.inputs["policy"]
        )
        stored = kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]
        assert json.loads(stored) == json.loads(key_policy_resource.inputs["policy"])


@pytest.mark.moto
def test_logging_into_a_bucket_that_does_not_admit_log_delivery_is_refused(
    aws_endpoint: str,
) -> None:
    """The replay above proves something: without the delivery statement S3 says no."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="eu-west-1"
    )
    s3 = session.client("s3", endpoint_url=aws_endpoint)
    for name in ("refusing-logs", "logged-source"):
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(s3.exceptions.ClientError, match="InvalidTargetBucketForLogging"):
        s3.put_bucket_logging(
            Bucket="logged-source",
            BucketLoggingStatus={
                "LoggingEnabled": {"TargetBucket": "refusing-logs", "TargetPrefix": "x/"}
            },
        )
