"""What AWS accepts, from what AWS publishes: botocore's service models and a small table.

- botocore (installed with boto3): the partitions' regions, EC2's instance-type enum, EKS's AMI
  and capacity types, and each API field's enum, length, range and pattern. Where the model
  only states a range in the field's documentation (KMS's deletion window: 7 to 30 days), the
  range is written here with the sentence it comes from; tests check the sentence is still there.
- `components/aws_tables.json`, for what no model says: each instance family's architecture and
  accelerator, NVIDIA GPUs per type, and what RDS offers for PostgreSQL. It names its source
  and date; `python -m tooling.refresh_aws_tables` rewrites it from the EC2 and RDS APIs.

Every check returns what is allowed, phrased to follow "should be", with the closest valid
value where there is a list. `mlops validate` runs them on the stack config, the preflight of
`mlops plan` (tooling/preflight) on every planned resource's properties.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from botocore.loaders import Loader

TABLES_FILE = Path(__file__).resolve().parent / "aws_tables.json"
REFRESH = "python -m tooling.refresh_aws_tables"


# -- the sources ----------------------------------------------------------------------------------


known: MutableMapping[str, Any] | None = None
"""What botocore said before, by what was asked (`shape ec2 InstanceType`, `regions`), where a
caller keeps it (the plan cache does, in a store of its own for each version of botocore and of
this module): botocore's service models are megabytes of JSON, parsed in most of a second for a
few shapes. None: botocore answers every time."""


def _known(question: str, answer: Callable[[], Any]) -> Any:
    if known is None:
        return answer()
    if question not in known:
        known[question] = answer()  # a KeyError (no such shape) is not remembered
    return known[question]


@functools.cache
def _loader() -> Loader:
    from botocore.loaders import Loader

    return Loader()


@functools.cache
def service_model(service: str) -> dict[str, Any]:
    """botocore's model of ``service`` (`ec2`, `rds`, ...), as shipped with the installed botocore."""
    model: dict[str, Any] = _loader().load_service_model(service, "service-2")
    return model


def shape(service: str, name: str) -> dict[str, Any]:
    """One shape of a service model (raises KeyError for a shape the model does not have)."""
    found: dict[str, Any] = _known(
        f"shape {service} {name}", lambda: service_model(service)["shapes"][name]
    )
    return found


def member_documentation(service: str, structure: str, member: str) -> str:
    """A structure member's documentation (or its shape's) as plain text (the model has HTML)."""
    found = shape(service, structure)["members"][member]
    doc = found.get("documentation") or shape(service, found["shape"]).get("documentation", "")
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", doc)).strip()


@functools.cache
def tables() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(TABLES_FILE.read_text())
    return loaded


@functools.cache
def regions() -> tuple[str, ...]:
    """Every region of every partition botocore knows (`aws`, `aws-cn`, `aws-us-gov`, ...)."""
    found: list[str] = _known(
        "regions",
        lambda: [
            region
            for partition in _loader().load_data("partitions")["partitions"]
            for region in partition["regions"]
            if not region.endswith("-global")  # the partitions' global endpoints, not regions
        ],
    )
    return tuple(sorted(found))


@functools.cache
def instance_types() -> frozenset[str]:
    """EC2's instance types: the `InstanceType` enum of botocore's EC2 model."""
    return frozenset(shape("ec2", "InstanceType")["enum"])


@functools.cache
def ami_types() -> tuple[str, ...]:
    """EKS managed node group AMI types: the `AMITypes` enum of botocore's EKS model."""
    return tuple(shape("eks", "AMITypes")["enum"])


def closest(value: str, choices: Iterable[str]) -> str | None:
    """The valid value a typo most likely meant, if one is close enough."""
    found = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def _did_you_mean(value: str, choices: Iterable[str]) -> str:
    close = closest(value, choices)
    return f"; did you mean {close!r}?" if close else ""


# -- regions --------------------------------------------------------------------------------------


def region_problem(region: str) -> str | None:
    if region in regions():
        return None
    return (
        f"an AWS region such as eu-west-1 (one of the {len(regions())} in botocore's partitions)"
        f"{_did_you_mean(region, regions())}"
    )


# -- EC2 instance types, their architecture and accelerators -------------------------------------


@dataclass(frozen=True)
class InstanceFamily:
    architecture: str
    """`x86_64`, `arm64`, or a Mac's `x86_64_mac`/`arm64_mac`."""
    accelerator: str | None
    """`nvidia`, `neuron`, another device's maker, or None."""


def family(instance_type: str) -> InstanceFamily | None:
    """What the table says of the type's family (None: a family newer than the table)."""
    entry = tables()["ec2"]["families"].get(instance_type.split(".", 1)[0])
    return InstanceFamily(entry["architecture"], entry["accelerator"]) if entry else None


def nvidia_gpus(instance_type: str) -> int | None:
    """Whole NVIDIA GPUs on one instance (0 for other types; None: not in the table)."""
    info = family(instance_type)
    if info is None:
        return None
    if info.accelerator != "nvidia":
        return 0
    count = tables()["ec2"]["nvidiaGpus"].get(instance_type)
    return None if count is None else int(count)


def instance_type_problem(instance_type: str) -> str | None:
    if instance_type in instance_types():
        return None
    return (
        f"an EC2 instance type (the {len(instance_types())} of botocore's EC2 model)"
        f"{_did_you_mean(instance_type, instance_types())}"
    )


@functools.cache
def sagemaker_instance_types() -> frozenset[str]:
    """What SageMaker hosting runs a variant on: botocore's `ProductionVariantInstanceType` enum."""
    return frozenset(shape("sagemaker", "ProductionVariantInstanceType")["enum"])


def sagemaker_instance_type_problem(instance_type: str) -> str | None:
    if instance_type in sagemaker_instance_types():
        return None
    return (
        f"an instance type SageMaker hosting offers, ml.<family>.<size> (the "
        f"{len(sagemaker_instance_types())} of botocore's ProductionVariantInstanceType)"
        f"{_did_you_mean(instance_type, sagemaker_instance_types())}"
    )


@dataclass(frozen=True)
class Finding:
    """A problem with one value of a list (``index``) or with the whole list (None)."""

    index: int | None
    value: Any
    message: str
    """What is allowed, to follow "should be"."""


def node_group_problems(types: Sequence[str], ami_type: str | None = None) -> Iterator[Finding]:
    """What EKS refuses in one managed node group's instance types (and AMI type, when given):
    unknown types, a mix of architectures or accelerators, an AMI for other hardware."""
    known: dict[str, InstanceFamily] = {}
    for index, name in enumerate(types):
        problem = instance_type_problem(name)
        if problem:
            yield Finding(index, name, problem)
        elif (info := family(name)) is not None:
            known[name] = info
    if not known:
        return
    first, info = next(iter(known.items()))
    for name, other in known.items():
        if other.architecture != info.architecture:
            yield Finding(
                types.index(name),
                name,
                f"of one CPU architecture with the group's other types ({first} is "
                f"{info.architecture}, {name} is {other.architecture}): a node group runs one AMI; "
                "put them in two node pools",
            )
            return
        if other.accelerator != info.accelerator:
            yield Finding(
                types.index(name),
                name,
                f"of one kind of accelerator with the group's other types ({first}: "
                f"{_device(info.accelerator)}, {name}: {_device(other.accelerator)}): one AMI "
                "serves the group and pods asking for a GPU would land on nodes without one; "
                "put them in two node pools",
            )
            return
    if info.architecture.endswith("_mac"):
        yield Finding(0, first, "an instance type EKS runs (Mac instances cannot join a cluster)")
    if ami_type is not None:
        problem = ami_type_problem(ami_type, info)
        if problem:
            yield Finding(None, ami_type, problem)


def ami_needs(ami_type: str) -> tuple[str | None, frozenset[str | None]]:
    """The architecture and the accelerators an EKS AMI type is built for, from its name
    (`AL2023_ARM_64_NVIDIA`: arm64, NVIDIA); None and every accelerator for CUSTOM."""
    if ami_type == "CUSTOM":
        return None, frozenset({None, "nvidia", "neuron"})
    architecture = "arm64" if "ARM_64" in ami_type else "x86_64"
    if "NVIDIA" in ami_type:
        return architecture, frozenset({"nvidia"})
    if "NEURON" in ami_type:
        return architecture, frozenset({"neuron"})
    if ami_type == "AL2_x86_64_GPU":  # the AL2 accelerated AMI: NVIDIA and Neuron drivers
        return architecture, frozenset({"nvidia", "neuron"})
    return architecture, frozenset({None})


def ami_type_problem(ami_type: str, hardware: InstanceFamily) -> str | None:
    if ami_type not in ami_types():
        return f"an EKS AMI type ({', '.join(ami_types())}){_did_you_mean(ami_type, ami_types())}"
    architecture, accelerators = ami_needs(ami_type)
    fitting = [
        ami
        for ami in ami_types()
        if ami.startswith(ami_type.split("_", 1)[0])
        and ami_needs(ami) == (hardware.architecture, frozenset({hardware.accelerator}))
    ]
    hint = f" (e.g. {fitting[0]})" if fitting else ""
    if architecture is not None and architecture != hardware.architecture:
        return f"an AMI type for {hardware.architecture} instances{hint}"
    if hardware.accelerator not in accelerators:
        return f"an AMI type for instances with {_device(hardware.accelerator)}{hint}"
    return None


def ami_hardware_problem(ami_type: str, instance_type: str) -> str | None:
    """For a node group whose AMI is fixed: an instance type that AMI runs on."""
    hardware = family(instance_type)
    if hardware is None or ami_type_problem(ami_type, hardware) is None:
        return None
    architecture, accelerators = ami_needs(ami_type)
    wanted = " or ".join(_device(a) for a in sorted(accelerators, key=str))
    return (
        f"an {architecture} instance type with {wanted}: the group runs {ami_type} "
        f"({instance_type} is {hardware.architecture} with {_device(hardware.accelerator)})"
    )


def _device(accelerator: str | None) -> str:
    return {None: "no accelerator", "nvidia": "NVIDIA GPUs", "neuron": "AWS Neuron devices"}.get(
        accelerator, f"{accelerator} devices"
    )


# -- RDS for PostgreSQL ---------------------------------------------------------------------------


def _rds() -> dict[str, Any]:
    rds: dict[str, Any] = tables()["rds"]
    return rds


def _stale() -> str:
    return f"(the table in components/aws_tables.json, {_rds()['taken']}; `{REFRESH}` refreshes it)"


def rds_engine_version_problem(version: str) -> str | None:
    """A PostgreSQL version RDS creates: a known major, and a known minor where listed."""
    majors: dict[str, Any] = _rds()["majors"]
    major = version.split(".", 1)[0]
    if major not in majors:
        return (
            f"a PostgreSQL major version RDS offers ({', '.join(majors)}) {_stale()}"
            f"{_did_you_mean(major, majors)}"
        )
    listed = majors[major].get("versions") or []
    if "." in version and listed and version not in listed:
        return (
            f"a PostgreSQL {major} version RDS offers (e.g. {listed[-1]}) {_stale()}"
            f"{_did_you_mean(version, listed)}"
        )
    return None


def rds_parameter_group_family(version: str) -> str | None:
    entry = _rds()["majors"].get(version.split(".", 1)[0])
    return str(entry["parameterGroupFamily"]) if entry else None


def rds_instance_class_problem(instance_class: str, version: str | None = None) -> str | None:
    """An instance class RDS offers for PostgreSQL (for ``version``'s major, where the table
    lists classes by major)."""
    classes: Mapping[str, list[str]] | None = _rds().get("instanceClasses")
    if classes is not None:
        majors = classes.get(instance_class)
        if majors is None:
            return f"an RDS for PostgreSQL instance class {_stale()}{_did_you_mean(instance_class, classes)}"
        major = version.split(".", 1)[0] if version else None
        if major and major not in majors:
            return f"an instance class RDS offers for PostgreSQL {major} (this one: {', '.join(majors)}) {_stale()}"
        return None
    families: list[str] = _rds()["instanceFamilies"]
    prefix, _, size = instance_class.partition(".")[2].partition(".")
    name = f"db.{prefix}"
    if not instance_class.startswith("db.") or name not in families:
        wanted = [f"{f}.{size}" for f in families] if size else families
        return (
            f"an RDS for PostgreSQL instance class of family {', '.join(families)} {_stale()}"
            f"{_did_you_mean(instance_class, wanted)}"
        )
    ec2_type = f"{prefix}.{size}"
    if ec2_type not in instance_types():
        sizes = sorted(t.split(".", 1)[1] for t in instance_types() if t.startswith(f"{prefix}."))
        return (
            f"a size of {name} ({', '.join(sizes)})"
            f"{_did_you_mean(instance_class, [f'{name}.{s}' for s in sizes])}"
        )
    return None


# -- API fields: enums, lengths, ranges, patterns -------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One API field's constraints, as botocore's model states them (or its documentation)."""

    service: str
    shape: str
    """The field's shape in the model (its min/max/pattern/enum apply)."""
    low: float | None = None
    high: float | None = None
    values: tuple[Any, ...] = ()
    documented: tuple[str, str, str] | None = None
    """(structure, member, sentence): where the model's documentation states the range."""
    meaning: str | None = None
    """The pattern in words, for the message (never a bare regex)."""

    @functools.cached_property
    def constraints(self) -> dict[str, Any]:
        found = {k: v for k, v in shape(self.service, self.shape).items() if k in _CONSTRAINTS}
        if self.low is not None:
            found["min"] = self.low
        if self.high is not None:
            found["max"] = self.high
        if self.values:
            found["enum"] = list(self.values)
        return found

    def problem(self, value: Any) -> str | None:
        """What ``value`` should be, or None when the API accepts it."""
        c = self.constraints
        kind = shape(self.service, self.shape)["type"]
        if "enum" in c and value not in c["enum"]:
            listed = ", ".join(map(str, c["enum"]))
            hint = _did_you_mean(str(value), map(str, c["enum"])) if isinstance(value, str) else ""
            return f"one of {listed}{self.source}{hint}"
        if kind == "string" and isinstance(value, str):
            if _outside(len(value), c):
                return f"{_between(c, 'characters')} long (is {len(value)}){self.source}"
            if "pattern" in c and not re.fullmatch(c["pattern"], value):
                return f"{self.meaning or 'text matching ' + repr(c['pattern'])}{self.source}"
        numeric = kind in ("integer", "long", "double", "float")
        if numeric and isinstance(value, int | float) and _outside(value, c):
            return f"{_between(c, '')}{self.source}"
        return None

    @property
    def source(self) -> str:
        where = ".".join(self.documented[:2]) if self.documented else self.shape
        return f" ({self.service} API, {where})"


_CONSTRAINTS = ("min", "max", "pattern", "enum")


def _outside(number: float, c: Mapping[str, Any]) -> bool:
    return ("min" in c and number < c["min"]) or ("max" in c and number > c["max"])


def _between(c: Mapping[str, Any], unit: str) -> str:
    unit = f" {unit}" if unit else ""
    low, high = c.get("min"), c.get("max", 0)
    if low is not None and "max" in c:
        return f"{_number(low)} to {_number(high)}{unit}"
    if low is not None:
        return f"at least {_number(low)}{unit}"
    return f"at most {_number(high)}{unit}"


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


LOG_RETENTION_DAYS: tuple[int, ...] = (
    *(1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827),
    *(2192, 2557, 2922, 3288, 3653),
)

FIELDS: dict[str, dict[str, Field]] = {
    "aws:kms/key:Key": {
        # Pulumi schedules the key's deletion with this window when the resource is deleted.
        "deletionWindowInDays": Field(
            "kms",
            "PendingWindowInDaysType",
            low=7,
            high=30,
            documented=(
                "ScheduleKeyDeletionRequest",
                "PendingWindowInDays",
                "it must be between 7 and 30, inclusive",
            ),
        ),
    },
    "aws:kms/alias:Alias": {
        "name": Field(
            "kms", "AliasNameType", meaning="letters, digits and :/_-, e.g. alias/fraud-prod-data"
        )
    },
    "aws:secretsmanager/secret:Secret": {
        "name": Field("secretsmanager", "NameType"),
        "recoveryWindowInDays": Field(
            "secretsmanager",
            "RecoveryWindowInDaysType",
            low=7,
            high=30,
            documented=(
                "DeleteSecretRequest",
                "RecoveryWindowInDays",
                "The number of days from 7 to 30",
            ),
        ),
    },
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": {
        "rules[].expiration.days": Field(
            "s3",
            "Days",
            low=1,
            documented=(
                "LifecycleExpiration",
                "Days",
                "The value must be a non-zero positive integer",
            ),
        ),
        "rules[].noncurrentVersionExpiration.noncurrentDays": Field(
            "s3",
            "Days",
            low=1,
            documented=(
                "NoncurrentVersionExpiration",
                "NoncurrentDays",
                "The value must be a non-zero positive integer",
            ),
        ),
        "rules[].transitions[].days": Field(
            "s3",
            "Days",
            low=0,
            documented=("Transition", "Days", "The value can be 0 or any positive integer"),
        ),
        "rules[].status": Field("s3", "ExpirationStatus"),
    },
    "aws:rds/instance:Instance": {
        "identifier": Field("rds", "String", high=63),
        "backupRetentionPeriod": Field(
            "rds",
            "IntegerOptional",
            low=0,
            high=35,
            documented=(
                "CreateDBInstanceMessage",
                "BackupRetentionPeriod",
                "Must be a value from 0 to 35",
            ),
        ),
        "allocatedStorage": Field(
            "rds",
            "IntegerOptional",
            low=20,
            high=65536,
            documented=(
                "CreateDBInstanceMessage",
                "AllocatedStorage",
                "General Purpose (SSD) storage (gp2, gp3): Must be an integer from 20 to 65536",
            ),
        ),
        "monitoringInterval": Field(
            "rds",
            "IntegerOptional",
            values=(0, 1, 5, 10, 15, 30, 60),
            documented=(
                "CreateDBInstanceMessage",
                "MonitoringInterval",
                "Valid Values: 0 | 1 | 5 | 10 | 15 | 30 | 60",
            ),
        ),
        "performanceInsightsRetentionPeriod": Field(
            "rds",
            "IntegerOptional",
            values=(7, *(31 * month for month in range(1, 24)), 731),
            documented=(
                "CreateDBInstanceMessage",
                "PerformanceInsightsRetentionPeriod",
                "month * 31, where month is a number of months from 1-23",
            ),
        ),
        "port": Field(
            "rds",
            "IntegerOptional",
            low=1150,
            high=65535,
            documented=("CreateDBInstanceMessage", "Port", "Valid Values: 1150-65535"),
        ),
    },
    "aws:eks/nodeGroup:NodeGroup": {
        "capacityType": Field("eks", "CapacityTypes"),
        "scalingConfig.minSize": Field("eks", "ZeroCapacity"),
        "scalingConfig.maxSize": Field("eks", "Capacity"),
        "scalingConfig.desiredSize": Field("eks", "ZeroCapacity"),
    },
    "aws:dynamodb/table:Table": {
        "name": Field(
            "dynamodb",
            "TableName",
            meaning="3-255 letters, digits and _.-, e.g. fraud.card_profile",
        ),
        "billingMode": Field("dynamodb", "BillingMode"),
    },
    "aws:iam/role:Role": {
        "name": Field("iam", "roleNameType", meaning="letters, digits and +=,.@_-"),
        "path": Field("iam", "pathType", meaning="/ or /<printable ASCII>/, e.g. /mlops/"),
        "description": Field(
            "iam", "roleDescriptionType", meaning="printable text, no newlines other than tab"
        ),
        "maxSessionDuration": Field("iam", "roleMaxSessionDurationType"),
    },
    "aws:iam/policy:Policy": {
        "name": Field("iam", "policyNameType", meaning="letters, digits and +=,.@_-"),
        "path": Field("iam", "policyPathType", meaning="/ or /<printable ASCII>/, e.g. /mlops/"),
    },
    "aws:ecr/repository:Repository": {
        "name": Field(
            "ecr",
            "RepositoryName",
            meaning="lower-case words of letters and digits joined by . _ - and /, e.g. fraud-prod/runtime",
        ),
        "imageTagMutability": Field("ecr", "ImageTagMutability"),
    },
    "aws:cloudwatch/metricAlarm:MetricAlarm": {
        "name": Field("cloudwatch", "AlarmName"),
        "alarmDescription": Field("cloudwatch", "AlarmDescription"),
        "comparisonOperator": Field("cloudwatch", "ComparisonOperator"),
        "evaluationPeriods": Field("cloudwatch", "EvaluationPeriods"),
        "datapointsToAlarm": Field("cloudwatch", "DatapointsToAlarm"),
        "period": Field("cloudwatch", "Period"),
        "statistic": Field("cloudwatch", "Statistic"),
        "namespace": Field("cloudwatch", "Namespace", meaning="a namespace not starting with ':'"),
        "metricName": Field("cloudwatch", "MetricName"),
        "metricQueries[].id": Field("cloudwatch", "MetricId"),
    },
    "aws:cloudwatch/logGroup:LogGroup": {
        "retentionInDays": Field(
            "logs",
            "Days",
            values=LOG_RETENTION_DAYS,
            documented=("PutRetentionPolicyRequest", "retentionInDays", "Possible values are"),
        ),
    },
}
"""Per Pulumi resource type, each property path (`a.b`, `list[].c`) and the API field it is sent
as. The property names are pulumi-aws's (camelCase inputs); the shapes botocore's."""


def field_values(props: Mapping[str, Any], path: str) -> Iterator[tuple[str, Any]]:
    """(concrete path, value) of every value at ``path`` (`rules[].expiration.days`)."""

    def walk(node: Any, parts: list[str], where: str) -> Iterator[tuple[str, Any]]:
        if not parts:
            yield where, node
            return
        head, *rest = parts
        many = head.endswith("[]")
        key = head.removesuffix("[]")
        if not isinstance(node, Mapping) or node.get(key) is None:
            return
        child = node[key]
        shown = f"{where}.{key}" if where else key
        if many:
            for index, item in enumerate(child if isinstance(child, list) else []):
                yield from walk(item, rest, f"{shown}[{index}]")
        else:
            yield from walk(child, rest, shown)

    yield from walk(props, path.split("."), "")


NOT_YET_KNOWN = frozenset({"[unknown]", "[secret]"})
"""How a plan shows a value computed during the update, or a secret: nothing to check yet."""


def field_problems(type_: str, props: Mapping[str, Any]) -> Iterator[tuple[str, Any, str]]:
    """(property path, value, what is allowed) for each field of a resource the API refuses."""
    for path, spec in FIELDS.get(type_, {}).items():
        for where, value in field_values(props, path):
            if isinstance(value, bool) or not isinstance(value, str | int | float):
                continue
            if value in NOT_YET_KNOWN:
                continue
            problem = spec.problem(value)
            if problem:
                yield where, value, problem
