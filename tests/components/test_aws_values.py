"""AWS value domains: botocore's models, the table beside them, and the checks built on both."""

from __future__ import annotations

import re

import pytest

from components import aws_values, naming
from components.aws_values import FIELDS, Finding, field_problems, node_group_problems
from components.training import ami_type


@pytest.mark.parametrize(
    ("type_", "path"),
    [(type_, path) for type_, fields in FIELDS.items() for path in fields],
)
def test_every_field_names_a_shape_botocore_has_and_cites_its_documentation(
    type_: str, path: str
) -> None:
    field = FIELDS[type_][path]
    assert field.constraints, "a field with nothing to check"
    if field.documented:
        structure, member, sentence = field.documented
        # The range is the documentation's: when botocore's text changes, look again.
        assert sentence in aws_values.member_documentation(field.service, structure, member)


def test_log_retention_days_are_the_documented_ones() -> None:
    doc = aws_values.shape("logs", "Days")["documentation"]
    listed = [int(n) for n in re.findall(r"\d+", doc.split("Possible values are:", 1)[1])[:22]]
    assert tuple(listed) == aws_values.LOG_RETENTION_DAYS


def test_the_table_says_where_and_when_it_comes_from() -> None:
    tables = aws_values.tables()
    for part in ("ec2", "rds"):
        assert tables[part]["source"] and re.fullmatch(r"\d{4}-\d{2}-\d{2}", tables[part]["taken"])
    families = tables["ec2"]["families"]
    assert {f["architecture"] for f in families.values()} <= {
        "x86_64",
        "arm64",
        "x86_64_mac",
        "arm64_mac",
    }
    assert set(tables["rds"]["majors"]) >= {"16", "17"}


def test_every_instance_type_an_example_stack_uses_is_known() -> None:
    from tests.tooling.test_validate import base_config

    for stack in ("fraud-dev", "fraud-prod", "recommendations-prod", "forecasting-prod"):
        for pool in base_config(stack).get("mlops:training", {}).get("nodePools", []):
            assert list(node_group_problems(pool["instanceTypes"])) == [], pool


@pytest.mark.parametrize(
    ("types", "ami", "found"),
    [
        pytest.param(["m6i.large", "m6a.large"], "AL2023_x86_64_STANDARD", [], id="uniform"),
        pytest.param(
            ["m7g.large"],
            "AL2023_x86_64_STANDARD",
            [
                Finding(
                    None,
                    "AL2023_x86_64_STANDARD",
                    "an AMI type for arm64 instances (e.g. AL2023_ARM_64_STANDARD)",
                )
            ],
            id="graviton-on-an-x86-ami",
        ),
        pytest.param(
            ["inf2.xlarge"],
            "AL2023_x86_64_NVIDIA",
            [
                Finding(
                    None,
                    "AL2023_x86_64_NVIDIA",
                    "an AMI type for instances with AWS Neuron devices (e.g. AL2023_x86_64_NEURON)",
                )
            ],
            id="inferentia-on-the-nvidia-ami",
        ),
        pytest.param(
            ["mac2.metal"],
            None,
            [
                Finding(
                    0,
                    "mac2.metal",
                    "an instance type EKS runs (Mac instances cannot join a cluster)",
                )
            ],
            id="mac",
        ),
        pytest.param(
            ["m6i.large"],
            "AL2023_X86_64_STANDARD",
            [
                Finding(
                    None,
                    "AL2023_X86_64_STANDARD",
                    f"an EKS AMI type ({', '.join(aws_values.ami_types())}); did you mean 'AL2023_x86_64_STANDARD'?",
                )
            ],
            id="ami-type-eks-does-not-have",
        ),
    ],
)
def test_a_node_group_runs_one_ami_on_hardware_it_drives(
    types: list[str], ami: str | None, found: list[Finding]
) -> None:
    assert list(node_group_problems(types, ami)) == found


def test_every_ami_type_eks_offers_is_understood() -> None:
    for ami in aws_values.ami_types():
        architecture, accelerators = aws_values.ami_needs(ami)
        assert architecture in (None, "x86_64", "arm64"), ami
        assert accelerators, ami


@pytest.mark.parametrize(
    ("types", "ami"),
    [
        pytest.param(["g5g.xlarge"], "AL2023_ARM_64_NVIDIA", id="graviton-gpu"),
        pytest.param(["inf2.xlarge"], "AL2023_x86_64_NEURON", id="inferentia"),
        pytest.param(["im4gn.large"], "AL2023_ARM_64_STANDARD", id="graviton-storage"),
        pytest.param(["a1.large"], "AL2023_ARM_64_STANDARD", id="first-graviton"),
    ],
)
def test_the_pool_ami_is_what_the_table_says_the_hardware_is(types: list[str], ami: str) -> None:
    """The name-based guess got these wrong: g5g is ARM with GPUs, im4gn and a1 are Graviton."""
    assert ami_type(types) == ami
    assert list(node_group_problems(types, ami)) == []


@pytest.mark.parametrize(
    ("instance", "gpus"),
    [
        pytest.param("p4de.24xlarge", 8, id="p4de"),
        pytest.param("g5g.2xlarge", 1, id="graviton-gpu"),
        pytest.param("g7e.12xlarge", 2, id="g7e"),
        pytest.param("p6-b200.48xlarge", 8, id="p6"),
        pytest.param("g6f.large", 0, id="a-fraction-of-a-gpu-is-no-whole-gpu"),
        pytest.param("p3.2xlarge", 1, id="a-type-the-table-lacks-falls-back"),
    ],
)
def test_gpus_per_instance_come_from_describe_instance_types(instance: str, gpus: int) -> None:
    assert naming.gpus_per_instance(instance) == gpus


@pytest.mark.parametrize(
    ("type_", "props", "found"),
    [
        pytest.param(
            "aws:kms/key:Key",
            {"deletionWindowInDays": 3},
            [
                (
                    "deletionWindowInDays",
                    3,
                    "7 to 30 (kms API, ScheduleKeyDeletionRequest.PendingWindowInDays)",
                )
            ],
            id="kms-deletion-window",
        ),
        pytest.param(
            "aws:dynamodb/table:Table",
            {"name": "fraud.card profile", "billingMode": "ON_DEMAND"},
            [
                (
                    "name",
                    "fraud.card profile",
                    "3-255 letters, digits and _.-, e.g. fraud.card_profile (dynamodb API, TableName)",
                ),
                (
                    "billingMode",
                    "ON_DEMAND",
                    "one of PROVISIONED, PAY_PER_REQUEST (dynamodb API, BillingMode)",
                ),
            ],
            id="dynamodb-name-and-billing",
        ),
        pytest.param(
            "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
            {
                "rules": [
                    {"status": "Enabled", "expiration": {"days": 30}},
                    {"status": "enabled", "noncurrentVersionExpiration": {"noncurrentDays": 0}},
                ]
            },
            [
                (
                    "rules[1].noncurrentVersionExpiration.noncurrentDays",
                    0,
                    "at least 1 (s3 API, NoncurrentVersionExpiration.NoncurrentDays)",
                ),
                (
                    "rules[1].status",
                    "enabled",
                    "one of Enabled, Disabled (s3 API, ExpirationStatus); did you mean 'Enabled'?",
                ),
            ],
            id="lifecycle-days-and-status",
        ),
        pytest.param(
            "aws:iam/role:Role",
            {"name": "[unknown]", "maxSessionDuration": 60},
            [("maxSessionDuration", 60, "3600 to 43200 (iam API, roleMaxSessionDurationType)")],
            id="unknown-values-wait-for-the-update",
        ),
    ],
)
def test_api_fields_outside_what_the_model_allows(
    type_: str, props: dict[str, object], found: list[tuple[str, object, str]]
) -> None:
    assert list(field_problems(type_, props)) == found
