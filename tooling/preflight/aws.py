"""What AWS would refuse in planned resources: fields outside botocore's model, instance types
and AMIs EKS refuses together, RDS classes, versions and parameter groups it does not offer."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from components import aws_values
from tooling.preflight.base import UNKNOWN, Finding, Planned

NODE_GROUP = "aws:eks/nodeGroup:NodeGroup"
DB_INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
LAUNCH_TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"


def aws_findings(resources: Sequence[Planned]) -> Iterator[Finding]:
    parameter_groups = {
        str(r.outputs.get("name")): r for r in resources if r.type == PARAMETER_GROUP
    }
    for resource in resources:
        if not resource.type.startswith("aws:"):
            continue
        props = resource.inputs
        for path, value, message in aws_values.field_problems(resource.type, props):
            yield Finding(resource.type, resource.name, path, value, message)
        if resource.type == NODE_GROUP:
            yield from _node_group(resource)
        elif resource.type == DB_INSTANCE:
            yield from _database(resource, parameter_groups)
        elif resource.type == PARAMETER_GROUP:
            family = props.get("family")
            known = {
                str(m["parameterGroupFamily"])
                for m in aws_values.tables()["rds"]["majors"].values()
            }
            if _known(family) and str(family).startswith("postgres") and family not in known:
                yield Finding(
                    resource.type,
                    resource.name,
                    "family",
                    family,
                    f"a PostgreSQL parameter group family RDS offers ({', '.join(sorted(known))})",
                )
        elif resource.type == LAUNCH_TEMPLATE and _known(props.get("instanceType")):
            problem = aws_values.instance_type_problem(str(props["instanceType"]))
            if problem:
                yield Finding(
                    resource.type, resource.name, "instanceType", props["instanceType"], problem
                )


def _known(value: Any) -> bool:
    return value is not None and value not in UNKNOWN


def _node_group(resource: Planned) -> Iterator[Finding]:
    types = [t for t in resource.inputs.get("instanceTypes") or [] if _known(t)]
    ami = resource.inputs.get("amiType")
    for finding in aws_values.node_group_problems(types, ami if _known(ami) else None):
        path = "amiType" if finding.index is None else f"instanceTypes[{finding.index}]"
        yield Finding(resource.type, resource.name, path, finding.value, finding.message)


def _database(resource: Planned, parameter_groups: dict[str, Planned]) -> Iterator[Finding]:
    props = resource.inputs
    if props.get("engine") != aws_values.tables()["rds"]["engine"]:
        return
    version = props.get("engineVersion")
    if _known(version):
        problem = aws_values.rds_engine_version_problem(str(version))
        if problem:
            yield Finding(resource.type, resource.name, "engineVersion", version, problem)
    instance_class = props.get("instanceClass")
    if _known(instance_class):
        problem = aws_values.rds_instance_class_problem(
            str(instance_class), str(version) if _known(version) else None
        )
        if problem:
            yield Finding(resource.type, resource.name, "instanceClass", instance_class, problem)
    group = parameter_groups.get(str(props.get("parameterGroupName")))
    wanted = aws_values.rds_parameter_group_family(str(version)) if _known(version) else None
    family = group.inputs.get("family") if group else None
    if group and wanted and _known(family) and family != wanted:
        # RDS refuses a parameter group of another family than the instance's engine version.
        yield Finding(
            resource.type,
            resource.name,
            "parameterGroupName",
            props.get("parameterGroupName"),
            f"a parameter group of family {wanted} (PostgreSQL {version}); "
            f"{group.name!r} is {family}",
        )
