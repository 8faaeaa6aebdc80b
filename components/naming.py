"""Naming and sizing arithmetic: plain functions, no Pulumi, unit-tested without mocks."""

from __future__ import annotations

import hashlib
import itertools
import re
from datetime import UTC, datetime, timedelta

from croniter import croniter

from components import aws_values

# Longest names the APIs accept.
IAM_ROLE_MAX = 64
IAM_POLICY_MAX = 128
RDS_IDENTIFIER_MAX = 63
K8S_LABEL_MAX = 63
CRONJOB_MAX = 52  # the controller appends an 11-character suffix to Job names
S3_AUTONAME_MAX = 63 - 8  # Pulumi appends '-' and 7 random characters to a bucket's name
DYNAMODB_TABLE_MAX = 255
ALARM_NAME_MAX = 255
SAGEMAKER_NAME_MAX = 63
"""Endpoint, model and endpoint configuration names."""

_GPU_FAMILIES = (
    "p2",
    "p3",
    "p3dn",
    "p4d",
    "p4de",
    "p5",
    "p5e",
    "p5en",
    "p6",
    "g3",
    "g3s",
    "g4dn",
    "g5",
    "g6",
    "g6e",
    "gr6",
    "g6f",
    "g7e",
)
_GPUS = {
    "xlarge": 1,
    "2xlarge": 1,
    "4xlarge": 1,
    "8xlarge": 1,
    "16xlarge": 1,
    "12xlarge": 4,
    "24xlarge": 4,
    "48xlarge": 8,
    "metal": 8,
}
_GPU_OVERRIDES = {
    "p3.8xlarge": 4,
    "p3.16xlarge": 8,
    "p3dn.24xlarge": 8,
    "p4d.24xlarge": 8,
    "p5.48xlarge": 8,
    "g4dn.12xlarge": 4,
    "g4dn.metal": 8,
    "g5.12xlarge": 4,
    "g5.24xlarge": 4,
    "g5.48xlarge": 8,
    "g6.12xlarge": 4,
    "g6.24xlarge": 4,
    "g6.48xlarge": 8,
    "p2.8xlarge": 8,
    "p2.16xlarge": 16,
}


def fit(name: str, max_length: int) -> str:
    """``name`` if it fits, else cut and suffixed with a short hash of the whole (stable, unique)."""
    if len(name) <= max_length:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return f"{name[: max_length - 7].rstrip('-.')}-{digest}"


def stack_prefix(team: str, environment: str) -> str:
    return f"{team}-{environment}"


def physical_name(team: str, environment: str, role: str, max_length: int = IAM_ROLE_MAX) -> str:
    """The physical name of a stack's resource: `<team>-<env>-<role>`, fitted to ``max_length``."""
    return fit(f"{stack_prefix(team, environment)}-{role}", max_length)


def rds_identifier(team: str, environment: str) -> str:
    # RDS: letters, digits, single hyphens; starts with a letter; no trailing hyphen.
    return re.sub(r"-+", "-", physical_name(team, environment, "registry", RDS_IDENTIFIER_MAX))


def feast_project(team: str) -> str:
    return team.replace("-", "_")


def online_table_name(project: str, feature_view: str) -> str:
    """The DynamoDB table Feast's online store reads (its default `{project}.{table_name}`)."""
    return f"{project}.{feature_view}"


def namespace_name(team: str) -> str:
    return f"ml-{team}"


def cronjob_name(kind: str, name: str) -> str:
    return fit(f"{kind}-{name}", CRONJOB_MAX)


def is_gpu_instance(instance_type: str) -> bool:
    """Has NVIDIA GPUs (the AWS table's accelerator; a guess by family for types it lacks)."""
    hardware = aws_values.family(instance_type)
    if hardware is not None:
        return hardware.accelerator == "nvidia"
    return instance_type.split(".", 1)[0] in _GPU_FAMILIES


def gpus_per_instance(instance_type: str) -> int:
    """Whole NVIDIA GPUs on one instance of ``instance_type`` (0 for CPU instances): from the
    AWS table (EC2 DescribeInstanceTypes), a guess by size for types it lacks."""
    known = aws_values.nvidia_gpus(instance_type)
    if known is not None:
        return known
    if not is_gpu_instance(instance_type):
        return 0
    if instance_type in _GPU_OVERRIDES:
        return _GPU_OVERRIDES[instance_type]
    return _GPUS.get(instance_type.split(".", 1)[1], 1)


def schedule_period(schedule: str, *, samples: int = 12) -> timedelta:
    """The longest gap between two runs of a cron schedule (over the next ``samples`` runs)."""
    runs = croniter(schedule, datetime(2025, 1, 1, tzinfo=UTC))
    times = [runs.get_next(datetime) for _ in range(samples + 1)]
    return max(b - a for a, b in itertools.pairwise(times))


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_FACTORS = {
    None: 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: str) -> float:
    """A Kubernetes quantity as a number (cores or bytes): `500m` -> 0.5, `1Gi` -> 1073741824."""
    match = _QUANTITY.match(value)
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    return float(match.group(1)) * _FACTORS[match.group(2)]


def cpu_limit(request: str) -> str:
    """Default CPU limit: twice the request, in millicores."""
    return f"{round(quantity(request) * 2000)}m"


def s3_arn(uri: str, partition: str = "aws") -> str:
    """`s3://bucket/some/key` -> `arn:<partition>:s3:::bucket/some/key` (an IAM resource)."""
    if not uri.startswith("s3://") or len(uri) <= len("s3://"):
        raise ValueError(f"not an S3 URI: {uri!r}")
    return f"arn:{partition}:s3:::{uri.removeprefix('s3://')}"


def arn_partition(arn: str) -> str:
    """The partition (`aws`, `aws-cn`, ...) an ARN lives in."""
    return arn.split(":", 2)[1]


def arn_account(arn: str) -> str:
    """The account id an ARN names (`arn:aws:iam::123456789012:...` -> `123456789012`)."""
    return arn.split(":", 5)[4]
