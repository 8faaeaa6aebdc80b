"""Refresh components/aws_tables.json: what AWS offers that botocore's service models do not say.

A maintainer's script, run by hand with AWS credentials (any account; these calls are free):

    python -m tooling.refresh_aws_tables [--region us-east-1]

- EC2 `DescribeInstanceTypes`: each instance family's CPU architecture and accelerator, and the
  NVIDIA GPUs of each GPU type (node pools may not mix architectures; the AMI type must match).
- RDS `DescribeDBEngineVersions` and `DescribeOrderableDBInstanceOptions` (engine `postgres`):
  the versions RDS creates, each major's parameter group family, and the instance classes.

The file is written only when every call answered, with today's date; the tests replay answers
through botocore's Stubber and never reach the network.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

TABLES_FILE = Path(__file__).resolve().parent.parent / "components" / "aws_tables.json"
ENGINE = "postgres"
EC2_SOURCE = "EC2 DescribeInstanceTypes (tooling/refresh_aws_tables.py)"
RDS_SOURCE = (
    "RDS DescribeDBEngineVersions and DescribeOrderableDBInstanceOptions, engine postgres "
    "(tooling/refresh_aws_tables.py)"
)


def family_of(instance_type: str) -> str:
    return instance_type.split(".", 1)[0]


def architecture_of(architectures: Sequence[str]) -> str:
    """One architecture per type: the 64-bit one of `[i386, x86_64]`."""
    for preferred in ("x86_64", "arm64"):
        if preferred in architectures:
            return preferred
    return sorted(architectures)[0]


def accelerator_of(item: Mapping[str, Any]) -> str | None:
    """What an EKS AMI must drive on this type: `nvidia`, `neuron`, or another device's maker."""
    gpus = (item.get("GpuInfo") or {}).get("Gpus") or []
    if gpus:
        return str(gpus[0].get("Manufacturer", "gpu")).lower()
    if item.get("NeuronInfo"):
        return "neuron"
    inference = (item.get("InferenceAcceleratorInfo") or {}).get("Accelerators") or []
    if inference:
        return str(inference[0].get("Manufacturer", "inference")).lower()
    if item.get("FpgaInfo"):
        return "fpga"
    return None


def ec2_table(instance_types: Iterable[Mapping[str, Any]], *, taken: str) -> dict[str, Any]:
    """The EC2 part of the table from `DescribeInstanceTypes` items."""
    families: dict[str, dict[str, Any]] = {}
    gpus: dict[str, int] = {}
    for item in instance_types:
        name = str(item["InstanceType"])
        entry = {
            "architecture": architecture_of(item["ProcessorInfo"]["SupportedArchitectures"]),
            "accelerator": accelerator_of(item),
        }
        family = families.setdefault(family_of(name), entry)
        if family != entry:
            raise ValueError(f"instance family {family_of(name)} is not uniform: {name} is {entry}")
        devices = (item.get("GpuInfo") or {}).get("Gpus") or []
        if entry["accelerator"] == "nvidia":
            # A fractional GPU (g6f) is a partition of one: Kubernetes sees no whole GPU there.
            count = sum(int(d.get("Count", 0)) for d in devices)
            gpus[name] = count
    return {
        "source": EC2_SOURCE,
        "taken": taken,
        "families": dict(sorted(families.items())),
        "nvidiaGpus": dict(sorted(gpus.items())),
    }


def rds_table(
    engine_versions: Iterable[Mapping[str, Any]],
    orderable: Iterable[Mapping[str, Any]],
    *,
    taken: str,
) -> dict[str, Any]:
    """The RDS part from `DescribeDBEngineVersions` and `DescribeOrderableDBInstanceOptions`."""
    majors: dict[str, dict[str, Any]] = {}
    for version in engine_versions:
        if version.get("Status", "available") != "available":
            continue
        number = str(version["EngineVersion"])
        major = number.split(".", 1)[0]
        entry = majors.setdefault(
            major, {"parameterGroupFamily": version["DBParameterGroupFamily"], "versions": []}
        )
        entry["versions"].append(number)
    classes: dict[str, set[str]] = {}
    for option in orderable:
        major = str(option["EngineVersion"]).split(".", 1)[0]
        classes.setdefault(str(option["DBInstanceClass"]), set()).add(major)
    for entry in majors.values():
        entry["versions"] = sorted(set(entry["versions"]), key=_version_key)
    return {
        "source": RDS_SOURCE,
        "taken": taken,
        "engine": ENGINE,
        "majors": dict(sorted(majors.items(), key=lambda kv: int(kv[0]))),
        "instanceClasses": {
            name: sorted(found, key=int) for name, found in sorted(classes.items())
        },
    }


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        items += page[key]
    return items


def refresh(ec2: Any, rds: Any, *, today: datetime.date) -> dict[str, Any]:
    """Ask EC2 and RDS; the whole table (nothing is written here)."""
    taken = today.isoformat()
    instance_types = _pages(ec2, "describe_instance_types", "InstanceTypes")
    versions = _pages(rds, "describe_db_engine_versions", "DBEngineVersions", Engine=ENGINE)
    orderable = _pages(
        rds,
        "describe_orderable_db_instance_options",
        "OrderableDBInstanceOptions",
        Engine=ENGINE,
    )
    if not instance_types or not versions or not orderable:
        raise RuntimeError("an API answered nothing; the table is left as it is")
    return {
        "ec2": ec2_table(instance_types, taken=taken),
        "rds": rds_table(versions, orderable, taken=taken),
    }


def dumps(table: Mapping[str, Any]) -> str:
    return json.dumps(table, indent=1, sort_keys=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--region", default="us-east-1", help="region to ask (default us-east-1)")
    parser.add_argument("--output", type=Path, default=TABLES_FILE)
    args = parser.parse_args(argv)
    import boto3

    session = boto3.Session(region_name=args.region)
    try:
        table = refresh(session.client("ec2"), session.client("rds"), today=datetime.date.today())
    except Exception as error:  # the maintainer sees why; the file stays as it was
        print(f"not refreshed: {error}", file=sys.stderr)
        return 1
    args.output.write_text(dumps(table))
    families, classes = len(table["ec2"]["families"]), len(table["rds"]["instanceClasses"])
    print(f"wrote {args.output}: {families} instance families, {classes} RDS instance classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
